package dev.dvmm.boot;

/**
 * Where everything sits in guest physical memory when dvmm boots Linux/x86-64. Every address the
 * loaders, the boot configuration and the firmware tables use is defined here and nowhere else, so
 * the hypervisor (memslots, device ranges) and the guest image agree by construction.
 *
 * <pre>
 * 0x0000_0000 - 0x0000_04ff  real-mode IVT and BIOS data area (left zero)
 * 0x0000_1000                GDT (boot code/data descriptors, TSS descriptor)
 * 0x0000_2000                TSS (zeroed; KVM wants a valid task register in long mode)
 * 0x0000_6000 - 0x0000_6fff  boot stack (RSP starts at its top)
 * 0x0000_7000                zero page: struct boot_params
 * 0x0000_9000                PML4
 * 0x0000_a000                PDPT
 * 0x0000_b000 - 0x0000_efff  four page directories (2 MiB pages for the first 4 GiB)
 * 0x0002_0000 - 0x0002_ffff  kernel command line
 * 0x0009_fc00 - 0x0009_ffff  EBDA (reserved in e820, empty)
 * 0x000a_0000 - 0x000f_ffff  legacy VGA/ROM hole (reserved in e820):
 *   0x000e_0000              ACPI tables (RSDP first; Linux scans 0xe0000-0xfffff for it)
 *   0x000f_0000              MP floating pointer + MP configuration table
 * 0x0010_0000                protected-mode kernel (bzImage) unless its pref_address is used
 * ...                        initramfs: top of low RAM, below the kernel's initrd_addr_max
 * 0xc000_0000 - 0xffff_ffff  32-bit MMIO gap, no RAM: IOAPIC 0xfec0_0000, LAPIC 0xfee0_0000
 * 0x1_0000_0000              RAM beyond the first 3 GiB continues here
 * </pre>
 */
public final class Layout {
    private Layout() {}

    /** Guest page size used for alignment of everything the loader places. */
    public static final long PAGE_SIZE = 0x1000;

    // --- boot structures below 1 MiB ---------------------------------------------------------

    /** Global descriptor table read by the CPU at entry (GDTR base). */
    public static final long GDT = 0x1000;
    /** 104-byte 64-bit TSS the TR descriptor points at; never used by Linux, must only be valid. */
    public static final long TSS = 0x2000;
    /** Initial RSP: the top of a page left free for the kernel's first pushes. */
    public static final long BOOT_STACK_TOP = 0x7000;
    /** struct boot_params, passed to the kernel in RSI. */
    public static final long ZERO_PAGE = 0x7000;
    /** Level-4 page table root (CR3). */
    public static final long PML4 = 0x9000;
    /** Page directory pointer table under PML4[0]. */
    public static final long PDPT = 0xa000;
    /** First of {@link #PD_COUNT} page directories, consecutive pages. */
    public static final long PD = 0xb000;
    /** Page directories reserved for the 2 MiB identity map: one per GiB. */
    public static final int PD_COUNT = 4;
    /** End of the identity map the boot page tables provide: the first 4 GiB. */
    public static final long IDENTITY_MAP_LIMIT = 1L << 32;
    /** NUL-terminated kernel command line (cmd_line_ptr). */
    public static final long CMDLINE = 0x2_0000;
    /** Space reserved for the command line, including its NUL. */
    public static final long CMDLINE_MAX = 0x1_0000;

    // --- the PC's legacy holes ---------------------------------------------------------------

    /** Start of the extended BIOS data area: usable RAM ends here (639 KiB). */
    public static final long EBDA_START = 0x9_fc00;
    /** Start of the VGA/ROM hole; reserved up to {@link #HIGH_MEMORY}. */
    public static final long LEGACY_HOLE_START = 0xa_0000;
    /** ACPI tables, RSDP first (16-byte aligned inside the 0xe0000-0xfffff scan range). */
    public static final long ACPI_TABLES = 0xe_0000;
    /** Bytes reserved for the ACPI tables. */
    public static final long ACPI_TABLES_SIZE = 0x1_0000;
    /** MP floating pointer, followed by the configuration table (inside Linux's 0xf0000 scan). */
    public static final long MP_TABLE = 0xf_0000;
    /** Bytes reserved for the MP floating pointer and configuration table. */
    public static final long MP_TABLE_SIZE = 0x1_0000;
    /** First byte above the legacy hole: 1 MiB, the default bzImage load address. */
    public static final long HIGH_MEMORY = 0x10_0000;

    // --- MMIO ---------------------------------------------------------------------------------

    /** RAM above this address is moved above 4 GiB to leave room for MMIO below 4 GiB. */
    public static final long MMIO_GAP_START = 0xc000_0000L;
    /** End of the 32-bit MMIO gap: the high RAM block starts here. */
    public static final long MMIO_GAP_END = 1L << 32;
    /** The IOAPIC's register window (MP table, MADT). */
    public static final long IOAPIC = 0xfec0_0000L;
    /** The local APICs' register window, the same address on every vCPU (xAPIC). */
    public static final long LAPIC = 0xfee0_0000L;

    // --- I/O ports of the ACPI fixed hardware (FADT) -------------------------------------------

    /** PM1a event block: status (2 bytes) at +0, enable (2 bytes) at +2. */
    public static final int PM1A_EVT_PORT = 0x600;
    /** Length of the PM1a event block in bytes. */
    public static final int PM1A_EVT_LEN = 4;
    /** PM1a control block (2 bytes): SCI_EN bit 0, SLP_TYP bits 10-12, SLP_EN bit 13. */
    public static final int PM1A_CNT_PORT = 0x604;
    /** Length of the PM1a control block in bytes. */
    public static final int PM1A_CNT_LEN = 2;
    /** PM timer (4 bytes, 24-bit counter at 3.579545 MHz): Linux calibrates the LAPIC timer against it. */
    public static final int PM_TMR_PORT = 0x608;
    /** Length of the PM timer block in bytes. */
    public static final int PM_TMR_LEN = 4;
    /** ISA IRQ of the ACPI system control interrupt. */
    public static final int SCI_IRQ = 9;

    /** End of RAM below the MMIO gap for a machine with {@code ramSize} bytes. */
    public static long lowRamEnd(long ramSize) {
        return Math.min(ramSize, MMIO_GAP_START);
    }

    /** Bytes of RAM that live above 4 GiB for a machine with {@code ramSize} bytes. */
    public static long highRamSize(long ramSize) {
        return Math.max(0, ramSize - MMIO_GAP_START);
    }
}
