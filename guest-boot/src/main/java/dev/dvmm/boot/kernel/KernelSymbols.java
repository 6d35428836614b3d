package dev.dvmm.boot.kernel;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * A kernel's text symbols (System.map format: {@code address type name}), to name the function a vCPU
 * is in when a boot goes quiet. Found beside the kernel: {@code System.map}, {@code System.map-<version>}
 * for {@code vmlinuz-<version>}, or read from {@code vmlinux} with {@code nm -n}.
 */
public final class KernelSymbols {
    private final long[] addresses;
    private final String[] names;

    private KernelSymbols(long[] addresses, String[] names) {
        this.addresses = addresses;
        this.names = names;
    }

    /** Parses System.map text; lines that are not {@code hex type name} are skipped. */
    public static KernelSymbols parse(Reader in) throws IOException {
        long[] a = new long[1 << 14];
        String[] n = new String[a.length];
        int count = 0;
        BufferedReader r = new BufferedReader(in);
        for (String line; (line = r.readLine()) != null; ) {
            String[] f = line.trim().split("\\s+");
            if (f.length < 3 || f[1].length() != 1 || "tTwW".indexOf(f[1].charAt(0)) < 0) {
                continue; // text symbols only
            }
            long addr;
            try {
                addr = Long.parseUnsignedLong(f[0], 16);
            } catch (NumberFormatException e) {
                continue;
            }
            if (count == a.length) {
                a = Arrays.copyOf(a, count * 2);
                n = Arrays.copyOf(n, count * 2);
            }
            a[count] = addr;
            n[count] = f[2];
            count++;
        }
        Integer[] order = new Integer[count];
        for (int i = 0; i < count; i++) {
            order[i] = i;
        }
        final long[] fa = a;
        Arrays.sort(order, (x, y) -> Long.compareUnsigned(fa[x], fa[y]));
        long[] sa = new long[count];
        String[] sn = new String[count];
        for (int i = 0; i < count; i++) {
            sa[i] = a[order[i]];
            sn[i] = n[order[i]];
        }
        return new KernelSymbols(sa, sn);
    }

    /** The symbols of the kernel at {@code kernel}, when a map or a vmlinux lies beside it. */
    public static Optional<KernelSymbols> besideKernel(Path kernel) {
        Path dir = kernel.toAbsolutePath().getParent();
        if (dir == null) {
            return Optional.empty();
        }
        String name = kernel.getFileName().toString();
        try {
            for (Path map : new Path[] {dir.resolve("System.map"),
                    dir.resolve("System.map" + (name.startsWith("vmlinuz") ? name.substring("vmlinuz".length()) : ""))}) {
                if (Files.isRegularFile(map)) {
                    try (Reader r = Files.newBufferedReader(map, StandardCharsets.ISO_8859_1)) {
                        KernelSymbols s = parse(r);
                        // Debian ships a one-line stub that points at the -dbg package: no names then.
                        return s.size() > 0 ? Optional.of(s) : Optional.empty();
                    }
                }
            }
            Path vmlinux = name.equals("vmlinux") ? kernel : dir.resolve("vmlinux");
            if (Files.isRegularFile(vmlinux)) {
                Process p = new ProcessBuilder("nm", "-n", vmlinux.toString())
                        .redirectError(ProcessBuilder.Redirect.DISCARD).start();
                KernelSymbols s = parse(new InputStreamReader(p.getInputStream(), StandardCharsets.ISO_8859_1));
                if (p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0 && s.size() > 0) {
                    return Optional.of(s);
                }
                p.destroyForcibly();
            }
        } catch (IOException e) {
            return Optional.empty(); // no names in progress lines; nothing else depends on them
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return Optional.empty();
    }

    public int size() { return addresses.length; }

    /** The lowest symbol address (as a signed long: negative for a kernel linked in the top half). */
    public long lowest() { return addresses[0]; }

    /** {@code name+0xoff} for {@code address}, or its hex value when it precedes every symbol. */
    public String describe(long address) {
        int lo = 0;
        int hi = addresses.length - 1;
        int found = -1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (Long.compareUnsigned(addresses[mid], address) <= 0) {
                found = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        if (found < 0) {
            return "0x" + Long.toHexString(address);
        }
        return names[found] + "+0x" + Long.toHexString(address - addresses[found]);
    }
}
