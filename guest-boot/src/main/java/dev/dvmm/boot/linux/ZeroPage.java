package dev.dvmm.boot.linux;

import dev.dvmm.boot.BootException;
import dev.dvmm.boot.Layout;
import dev.dvmm.boot.kernel.InitrdLoader.LoadedInitrd;
import dev.dvmm.boot.kernel.LoadedKernel;
import dev.dvmm.boot.kernel.SetupHeader;
import dev.dvmm.boot.memory.GuestPhysicalMemory;
import java.util.List;
import java.util.OptionalLong;

/**
 * struct boot_params (Documentation/arch/x86/zero-page.rst) at {@link Layout#ZERO_PAGE}: the setup
 * header copied from the image and filled in as a boot loader must, the e820 map, and the RSDP.
 */
public final class ZeroPage {
    private ZeroPage() {}

    public static final int SIZE = 0x1000;
    public static final int ACPI_RSDP_ADDR = 0x070;
    public static final int EXT_RAMDISK_IMAGE = 0x0c0;
    public static final int EXT_RAMDISK_SIZE = 0x0c4;
    public static final int EXT_CMD_LINE_PTR = 0x0c8;
    public static final int E820_ENTRIES = 0x1e8;
    public static final int SENTINEL = 0x1ef;
    public static final int E820_TABLE = 0x2d0;
    public static final int E820_ENTRY_SIZE = 20;

    /** Loader id "undefined" (0xff): dvmm has no assigned boot loader id. */
    public static final int TYPE_OF_LOADER_UNDEFINED = 0xff;
    /** heap_end_ptr as a boot loader sets it for a heap up to 0xfe00 in the setup segment. */
    public static final int HEAP_END = 0xfe00;
    /** kernel_alignment written for an ELF kernel (its CONFIG_PHYSICAL_ALIGN default). */
    public static final int ELF_KERNEL_ALIGNMENT = 0x100_0000;

    /**
     * Writes the zero page for {@code kernel}, whose command line lies at {@link Layout#CMDLINE}.
     */
    public static void write(GuestPhysicalMemory memory, LoadedKernel kernel, LoadedInitrd initrd,
                             E820Map e820, OptionalLong rsdp) {
        long page = Layout.ZERO_PAGE;
        memory.zero(page, SIZE);
        byte[] header = kernel.setupHeaderBytes();
        if (header.length > 0) {
            memory.write(page + SetupHeader.SETUP_SECTS, header);
        } else {
            // An ELF kernel has no header of its own: write the fields the kernel checks.
            memory.putShort(page + SetupHeader.BOOT_FLAG, (short) SetupHeader.BOOT_FLAG_MAGIC);
            memory.putInt(page + SetupHeader.HEADER, (int) SetupHeader.HEADER_MAGIC);
            memory.putInt(page + SetupHeader.KERNEL_ALIGNMENT, ELF_KERNEL_ALIGNMENT);
        }
        memory.putByte(page + SetupHeader.TYPE_OF_LOADER, (byte) TYPE_OF_LOADER_UNDEFINED);
        int loadflags = Byte.toUnsignedInt(memory.getByte(page + SetupHeader.LOADFLAGS));
        memory.putByte(page + SetupHeader.LOADFLAGS, (byte) (loadflags | SetupHeader.CAN_USE_HEAP));
        memory.putShort(page + SetupHeader.HEAP_END_PTR, (short) HEAP_END);
        memory.putInt(page + SetupHeader.CMD_LINE_PTR, (int) Layout.CMDLINE);
        memory.putInt(page + EXT_CMD_LINE_PTR, (int) (Layout.CMDLINE >>> 32));
        if (initrd != null) {
            memory.putInt(page + SetupHeader.RAMDISK_IMAGE, (int) initrd.address());
            memory.putInt(page + SetupHeader.RAMDISK_SIZE, (int) initrd.size());
            memory.putInt(page + EXT_RAMDISK_IMAGE, (int) (initrd.address() >>> 32));
            memory.putInt(page + EXT_RAMDISK_SIZE, (int) (initrd.size() >>> 32));
        }
        if (rsdp.isPresent()) {
            memory.putLong(page + ACPI_RSDP_ADDR, rsdp.getAsLong());
        }
        List<E820Map.Entry> entries = e820.entries();
        if (entries.size() > E820Map.MAX_ENTRIES) {
            throw new BootException(BootException.Kind.DOES_NOT_FIT, "the memory map has " + entries.size() + " entries; the zero page holds 128.");
        }
        memory.putByte(page + E820_ENTRIES, (byte) entries.size());
        long at = page + E820_TABLE;
        for (E820Map.Entry e : entries) {
            memory.putLong(at, e.address());
            memory.putLong(at + 8, e.size());
            memory.putInt(at + 16, e.type());
            at += E820_ENTRY_SIZE;
        }
    }
}
