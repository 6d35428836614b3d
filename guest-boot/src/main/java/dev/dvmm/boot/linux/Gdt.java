package dev.dvmm.boot.linux;

import dev.dvmm.boot.Layout;
import dev.dvmm.boot.memory.GuestPhysicalMemory;

/**
 * The boot GDT written at {@link Layout#GDT}: the selectors the 64-bit boot protocol requires
 * (__BOOT_CS = 0x10 flat 64-bit code, __BOOT_DS = 0x18 flat data) and a 64-bit TSS descriptor
 * at 0x20, because a VM entry into long mode needs a usable task register.
 */
public final class Gdt {
    private Gdt() {}

    public static final int BOOT_CS = 0x10;
    public static final int BOOT_DS = 0x18;
    public static final int TSS_SELECTOR = 0x20;
    /** null, unused, code, data, TSS (two slots). */
    public static final int ENTRIES = 6;
    public static final int LIMIT = ENTRIES * 8 - 1;
    /** Bytes of a 64-bit TSS; the descriptor limit is this minus one. */
    public static final int TSS_SIZE = 0x68;

    // Access byte: P(0x80) DPL S(0x10) type; flags nibble: G(0x8) D/B(0x4) L(0x2) AVL(0x1).
    private static final int CODE_ACCESS = 0x9b; // present, code, execute/read, accessed
    private static final int DATA_ACCESS = 0x93; // present, data, read/write, accessed
    private static final int TSS_ACCESS = 0x8b;  // present, system, 64-bit TSS (busy)
    private static final int FLAGS_LONG_CODE = 0xa; // G + L
    private static final int FLAGS_DATA = 0xc;      // G + D/B

    /** Code descriptor for __BOOT_CS: base 0, 4 GiB limit, 64-bit. */
    public static final long CODE64 = descriptor(0, 0xf_ffff, CODE_ACCESS, FLAGS_LONG_CODE);
    /** Data descriptor for __BOOT_DS and the other data selectors: base 0, 4 GiB limit. */
    public static final long DATA = descriptor(0, 0xf_ffff, DATA_ACCESS, FLAGS_DATA);
    /** Low quadword of the TSS descriptor; the high quadword holds base bits 63:32 (zero here). */
    public static final long TSS_LOW = descriptor(Layout.TSS, TSS_SIZE - 1, TSS_ACCESS, 0);

    /** Encodes an 8-byte segment descriptor. */
    public static long descriptor(long base, long limit, int access, int flags) {
        return (limit & 0xffff)
                | (base & 0xff_ffffL) << 16
                | (long) (access & 0xff) << 40
                | (limit & 0xf_0000L) << 32
                | (long) (flags & 0xf) << 52
                | (base & 0xff00_0000L) << 32;
    }

    /** Writes the GDT and zeroes the TSS it points at. */
    public static void write(GuestPhysicalMemory memory) {
        memory.zero(Layout.GDT, (long) ENTRIES * 8);
        memory.putLong(Layout.GDT + BOOT_CS, CODE64);
        memory.putLong(Layout.GDT + BOOT_DS, DATA);
        memory.putLong(Layout.GDT + TSS_SELECTOR, TSS_LOW);
        memory.putLong(Layout.GDT + TSS_SELECTOR + 8, Layout.TSS >>> 32);
        memory.zero(Layout.TSS, TSS_SIZE);
    }

    public static Segment codeSegment() {
        return Segment.fromDescriptor(BOOT_CS, CODE64, 0);
    }

    public static Segment dataSegment() {
        return Segment.fromDescriptor(BOOT_DS, DATA, 0);
    }

    public static Segment taskSegment() {
        return Segment.fromDescriptor(TSS_SELECTOR, TSS_LOW, Layout.TSS >>> 32);
    }
}
