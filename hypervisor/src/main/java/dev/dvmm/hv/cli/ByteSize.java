package dev.dvmm.hv.cli;

import dev.dvmm.hv.vstate.GuestMemory;
import java.util.Locale;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** Sizes like 512M, 2G, 65536 or 64K: binary units. Guest memory must be whole 4 KiB pages. */
public final class ByteSize implements ITypeConverter<Long> {
    public static long parse(String text) {
        String t = text.strip().toUpperCase(Locale.ROOT);
        if (t.endsWith("IB")) {
            t = t.substring(0, t.length() - 2);
        } else if (t.endsWith("B")) {
            t = t.substring(0, t.length() - 1);
        }
        long mult = 1;
        if (!t.isEmpty()) {
            switch (t.charAt(t.length() - 1)) {
                case 'K' -> mult = 1L << 10;
                case 'M' -> mult = 1L << 20;
                case 'G' -> mult = 1L << 30;
                case 'T' -> mult = 1L << 40;
                default -> mult = 1;
            }
            if (mult != 1) {
                t = t.substring(0, t.length() - 1);
            }
        }
        try {
            long v = Long.parseLong(t);
            if (v < 0 || v > Long.MAX_VALUE / mult) {
                throw new TypeConversionException("size '" + text + "' is out of range");
            }
            return v * mult;
        } catch (NumberFormatException e) {
            throw new TypeConversionException("'" + text + "' is not a size (examples: 512M, 2G, 1048576)");
        }
    }

    @Override
    public Long convert(String value) {
        return parse(value);
    }

    /** A guest memory size, or a one-sentence reason it is unusable. */
    public static final class GuestRam implements ITypeConverter<Long> {
        @Override
        public Long convert(String value) {
            long v = parse(value);
            try {
                GuestMemory.validateSize(v);
            } catch (RuntimeException e) {
                throw new TypeConversionException(e.getMessage());
            }
            return v;
        }
    }
}
