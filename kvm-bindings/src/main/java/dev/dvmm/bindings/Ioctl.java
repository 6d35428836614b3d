package dev.dvmm.bindings;

/**
 * The kernel's {@code _IOC} request encoding for x86-64 (asm-generic/ioctl.h): 8 bits nr, 8 bits type,
 * 14 bits size, 2 bits direction. Used to cross-check the probed numbers and for requests whose size
 * depends on a runtime length.
 */
public final class Ioctl {
    private Ioctl() {}

    public static final int NONE = 0;
    public static final int WRITE = 1;
    public static final int READ = 2;

    private static final int NR_SHIFT = 0;
    private static final int TYPE_SHIFT = 8;
    private static final int SIZE_SHIFT = 16;
    private static final int DIR_SHIFT = 30;
    private static final long SIZE_LIMIT = 1L << 14;

    public static long encode(int dir, int type, int nr, long size) {
        if (size < 0 || size >= SIZE_LIMIT) {
            throw new IllegalArgumentException("ioctl argument size " + size + " does not fit in 14 bits");
        }
        if ((type & ~0xFF) != 0 || (nr & ~0xFF) != 0 || (dir & ~3) != 0) {
            throw new IllegalArgumentException("ioctl field out of range");
        }
        return ((long) dir << DIR_SHIFT) | ((long) type << TYPE_SHIFT) | ((long) nr << NR_SHIFT)
                | (size << SIZE_SHIFT);
    }

    public static long io(int type, int nr) { return encode(NONE, type, nr, 0); }
    public static long ior(int type, int nr, long size) { return encode(READ, type, nr, size); }
    public static long iow(int type, int nr, long size) { return encode(WRITE, type, nr, size); }
    public static long iowr(int type, int nr, long size) { return encode(READ | WRITE, type, nr, size); }
}
