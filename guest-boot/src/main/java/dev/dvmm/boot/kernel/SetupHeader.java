package dev.dvmm.boot.kernel;

import dev.dvmm.boot.BootException;

/**
 * The real-mode setup header of a bzImage (Linux boot protocol 2.x, Documentation/arch/x86/boot.rst),
 * parsed and checked. Offsets are those of the header inside the image file, which are also its
 * offsets inside struct boot_params (the header is copied to the zero page unchanged).
 *
 * @param setupSects       512-byte sectors of real-mode setup code after the boot sector (0 read as 4)
 * @param syssize          size of the protected-mode code in 16-byte paragraphs
 * @param version          boot protocol version, major in the high byte (0x020f = 2.15)
 * @param loadflags        LOADED_HIGH etc. as the image provides them
 * @param xloadflags       XLF_KERNEL_64 etc.
 * @param kernelAlignment  alignment a relocated kernel needs
 * @param relocatable      whether the protected-mode code may be loaded at another address
 * @param cmdlineSize      longest command line the kernel takes, without the terminating NUL
 * @param initrdAddrMax    highest address the initrd's last byte may have
 * @param prefAddress      preferred load address (the address the kernel runs at if not moved)
 * @param initSize         bytes the kernel needs from its run address while it decompresses and starts
 * @param headerEnd        first file offset after the header (0x202 + the byte at 0x201)
 * @param kernelVersion    the kernel's version string, or "" when the image has none
 */
public record SetupHeader(
        int setupSects,
        long syssize,
        int version,
        int loadflags,
        int xloadflags,
        long kernelAlignment,
        boolean relocatable,
        long cmdlineSize,
        long initrdAddrMax,
        long prefAddress,
        long initSize,
        int headerEnd,
        String kernelVersion) {

    // Offsets in the image (= offsets in struct boot_params).
    public static final int SETUP_SECTS = 0x1f1;
    public static final int SYSSIZE = 0x1f4;
    public static final int BOOT_FLAG = 0x1fe;
    public static final int JUMP = 0x200;
    public static final int HEADER = 0x202;
    public static final int VERSION = 0x206;
    public static final int KERNEL_VERSION = 0x20e;
    public static final int TYPE_OF_LOADER = 0x210;
    public static final int LOADFLAGS = 0x211;
    public static final int CODE32_START = 0x214;
    public static final int RAMDISK_IMAGE = 0x218;
    public static final int RAMDISK_SIZE = 0x21c;
    public static final int HEAP_END_PTR = 0x224;
    public static final int CMD_LINE_PTR = 0x228;
    public static final int INITRD_ADDR_MAX = 0x22c;
    public static final int KERNEL_ALIGNMENT = 0x230;
    public static final int RELOCATABLE_KERNEL = 0x234;
    public static final int XLOADFLAGS = 0x236;
    public static final int CMDLINE_SIZE = 0x238;
    public static final int PREF_ADDRESS = 0x258;
    public static final int INIT_SIZE = 0x260;
    /** boot_params.edd_mbr_sig_buffer follows the header: no header may reach past it. */
    public static final int HEADER_LIMIT = 0x290;

    public static final int BOOT_FLAG_MAGIC = 0xaa55;
    /** "HdrS" read as a little-endian 32-bit value. */
    public static final long HEADER_MAGIC = 0x5372_6448L;
    /** Oldest protocol with xloadflags, which says whether the 64-bit entry exists. */
    public static final int MIN_VERSION = 0x020c;

    public static final int LOADED_HIGH = 0x01;
    public static final int KEEP_SEGMENTS = 0x40;
    public static final int CAN_USE_HEAP = 0x80;
    public static final int XLF_KERNEL_64 = 0x01;
    public static final int XLF_CAN_BE_LOADED_ABOVE_4G = 0x02;

    /** Offset of the protected-mode code's 64-bit entry point from its load address. */
    public static final long ENTRY_64_OFFSET = 0x200;

    /** Whether {@code file} carries the "HdrS" magic where a bzImage has it. */
    public static boolean isPresent(KernelFile file) {
        return file.size() >= HEADER + 4 && file.u32(HEADER, "header magic") == HEADER_MAGIC;
    }

    /** Parses and validates the header of {@code file}; any inconsistency is a {@link BootException}. */
    public static SetupHeader parse(KernelFile file) {
        String name = file.name();
        file.require(0, HEADER + 4, "the bzImage setup header");
        if (file.u32(HEADER, "header magic") != HEADER_MAGIC) {
            throw new BootException(BootException.Kind.NOT_A_KERNEL, name + ": not a bzImage: the \"HdrS\" magic is missing at offset 0x202.");
        }
        if (file.u16(BOOT_FLAG, "boot_flag") != BOOT_FLAG_MAGIC) {
            throw new BootException(BootException.Kind.CORRUPT, name + ": corrupt bzImage: boot_flag at 0x1fe is not 0xAA55.");
        }
        int version = file.u16(VERSION, "version");
        if (version < MIN_VERSION) {
            throw new BootException(BootException.Kind.UNSUPPORTED, String.format(
                    "%s: boot protocol %d.%02d is too old: the 64-bit entry needs protocol 2.12 or later.",
                    name, version >> 8, version & 0xff));
        }
        int headerEnd = HEADER + file.u8(JUMP + 1, "jump offset");
        if (headerEnd < INIT_SIZE + 4 || headerEnd > HEADER_LIMIT) {
            throw new BootException(BootException.Kind.CORRUPT, String.format(
                    "%s: corrupt bzImage: the setup header would end at 0x%x, outside [0x%x, 0x%x].",
                    name, headerEnd, INIT_SIZE + 4, HEADER_LIMIT));
        }
        file.require(0, headerEnd, "the setup header");
        int loadflags = file.u8(LOADFLAGS, "loadflags");
        if ((loadflags & LOADED_HIGH) == 0) {
            throw new BootException(BootException.Kind.UNSUPPORTED, name + ": a zImage (loaded low), not a bzImage: not supported.");
        }
        int xloadflags = file.u16(XLOADFLAGS, "xloadflags");
        if ((xloadflags & XLF_KERNEL_64) == 0) {
            throw new BootException(BootException.Kind.UNSUPPORTED, name + ": the kernel has no 64-bit entry point (XLF_KERNEL_64 is clear).");
        }
        int setupSects = file.u8(SETUP_SECTS, "setup_sects");
        if (setupSects == 0) {
            setupSects = 4;
        }
        long setupBytes = (setupSects + 1L) * 512;
        long syssize = file.u32(SYSSIZE, "syssize");
        long protectedModeBytes = file.size() - setupBytes;
        if (syssize == 0 || protectedModeBytes <= 0 || syssize * 16 > protectedModeBytes + 15) {
            throw new BootException(BootException.Kind.TRUNCATED, String.format(
                    "%s: truncated bzImage: the header announces 0x%x bytes of kernel after 0x%x bytes of setup, the file has 0x%x bytes.",
                    name, syssize * 16, setupBytes, file.size()));
        }
        long kernelAlignment = file.u32(KERNEL_ALIGNMENT, "kernel_alignment");
        boolean relocatable = file.u8(RELOCATABLE_KERNEL, "relocatable_kernel") != 0;
        if (relocatable && Long.bitCount(kernelAlignment) != 1) {
            throw new BootException(BootException.Kind.CORRUPT, String.format(
                    "%s: corrupt bzImage: kernel_alignment 0x%x is not a power of two.", name, kernelAlignment));
        }
        long cmdlineSize = file.u32(CMDLINE_SIZE, "cmdline_size");
        long prefAddress = file.u64(PREF_ADDRESS, "pref_address");
        if (prefAddress < 0) {
            throw new BootException(BootException.Kind.CORRUPT, String.format(
                    "%s: corrupt bzImage: pref_address 0x%x is beyond any physical address.", name, prefAddress));
        }
        long initSize = file.u32(INIT_SIZE, "init_size");
        return new SetupHeader(setupSects, syssize, version, loadflags, xloadflags, kernelAlignment, relocatable,
                cmdlineSize, file.u32(INITRD_ADDR_MAX, "initrd_addr_max"), prefAddress, initSize, headerEnd,
                kernelVersion(file));
    }

    /** The NUL-terminated version string kernel_version points at (offset + 0x200), if sane. */
    private static String kernelVersion(KernelFile file) {
        int pointer = file.u16(KERNEL_VERSION, "kernel_version");
        if (pointer == 0) {
            return "";
        }
        long start = pointer + 0x200L;
        StringBuilder text = new StringBuilder();
        for (long at = start; at < file.size() && text.length() < 128; at++) {
            int c = file.u8(at, "kernel version string");
            if (c == 0) {
                return text.toString();
            }
            if (c < 0x20 || c > 0x7e) {
                return "";
            }
            text.append((char) c);
        }
        return "";
    }

    /** File offset where the protected-mode kernel starts. */
    public long setupBytes() {
        return (setupSects + 1L) * 512;
    }

    /** Version as "2.15". */
    public String versionText() {
        return (version >> 8) + "." + String.format("%02d", version & 0xff);
    }
}
