package dev.dvmm.boot.testguest;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;

/**
 * The hand-written test guests (src/main/asm), assembled at build time into flat binaries.
 * Addresses and ports here must match {@code ports.h}.
 */
public enum TestGuest {
    REAL_MODE("realmode.bin", 0x7c00),
    LONG_MODE("longmode.bin", 0x100000);

    public static final int CONSOLE_PORT = 0x3f8;
    public static final int EXIT_PORT = 0x501;
    public static final int BENCH_PORT = 0x510;
    /** MMIO twin of EXIT_PORT, for ring-3 code (IOPL is not honoured on nested PVM hosts). */
    public static final long MMIO_EXIT = 0xfe000000L;
    public static final long RESULTS = 0x7000;
    public static final long RESULTS_PER_VCPU = 64;
    public static final long DATA = 0x200000;
    public static final long PATTERN = 0x300000;
    public static final long KSTACK_TOP = 0x70000;
    public static final long IDT_BASE = 0x2000;

    /** Long-mode test ids (RDI at entry). */
    public static final int T_HELLO = 0;
    public static final int T_COUNTERS = 1;
    public static final int T_EXCEPTIONS = 2;
    public static final int T_SPIN = 3;
    public static final int T_PATTERN = 4;
    public static final int T_PIO_LOOP = 5;
    public static final int T_USER_INT = 6;
    public static final int T_HANDOFF = 7;

    private final String resource;
    private final long loadAddress;

    TestGuest(String resource, long loadAddress) {
        this.resource = resource;
        this.loadAddress = loadAddress;
    }

    public long loadAddress() { return loadAddress; }

    public byte[] image() {
        try (InputStream in = TestGuest.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("test guest " + resource + " is missing from the build "
                        + "(guest-boot/src/main/asm/build.sh did not run?)");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
