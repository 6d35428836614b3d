package dev.dvmm.boot.smp;

import dev.dvmm.boot.BootException;
import dev.dvmm.boot.Layout;
import dev.dvmm.boot.memory.GuestPhysicalMemory;

/**
 * The ACPI tables a Linux guest needs to find its CPUs and power off, at {@link Layout#ACPI_TABLES}:
 * RSDP (revision 2) -> XSDT and RSDT -> FADT (-> FACS, DSDT) and MADT. Every checksum makes its
 * table sum to zero. The fixed hardware is in port I/O space: PM1a event block at
 * {@link Layout#PM1A_EVT_PORT}, PM1a control block at {@link Layout#PM1A_CNT_PORT}, a 24-bit PM timer at
 * {@link Layout#PM_TMR_PORT} (Linux trusts a LAPIC timer calibrated against it and skips a jiffies
 * cross-check that a slow or overcommitted host fails), SCI on
 * {@link Layout#SCI_IRQ}; SMI_CMD is 0, so the OS treats the machine as always in ACPI mode. The
 * DSDT holds only \_S5: writing SLP_TYP = {@link #SLP_TYP_S5} with SLP_EN to PM1a_CNT powers off.
 */
public final class AcpiTables {
    private AcpiTables() {}

    /** SLP_TYP value of the S5 (soft off) state, as the DSDT's \_S5 package states it. */
    public static final int SLP_TYP_S5 = 5;
    /** PM1 control: SLP_TYP field position and SLP_EN bit, for the hypervisor's PM device. */
    public static final int PM1_CNT_SLP_TYP_SHIFT = 10;
    public static final int PM1_CNT_SLP_EN = 1 << 13;
    public static final int PM1_CNT_SCI_EN = 1;

    public static final int RSDP_SIZE = 36;
    public static final int HEADER_SIZE = 36;
    public static final int FADT_SIZE = 276;
    public static final int FADT_REVISION = 6;
    public static final int FACS_SIZE = 64;
    public static final int MADT_REVISION = 4;

    public static final int MADT_LOCAL_APIC = 0;
    public static final int MADT_IOAPIC = 1;
    public static final int MADT_INTERRUPT_OVERRIDE = 2;
    public static final int MADT_LOCAL_APIC_NMI = 4;
    /** MADT flag: the machine also has dual 8259s (PC-AT compatible). */
    public static final int MADT_PCAT_COMPAT = 1;
    /** MPS INTI flags for the SCI: active high (01), level triggered (11 << 2). */
    public static final int SCI_INTI_FLAGS = 0x000d;

    // FADT Flags: WBINVD works (0), C1 supported (2), power and sleep buttons are not fixed hardware (4, 5).
    static final int FADT_FLAGS = 1 | 1 << 2 | 1 << 4 | 1 << 5;
    // IA-PC boot architecture flags: legacy devices (0), an 8042 (1), no VGA (2).
    static final int IAPC_BOOT_ARCH = 1 | 1 << 1 | 1 << 2;
    /** C2/C3 latencies above 100 / 1000 us mean "not supported". */
    static final int P_LVL2_LAT_NONE = 101;
    static final int P_LVL3_LAT_NONE = 1001;
    static final int GAS_SYSTEM_IO = 1;
    static final int GAS_ACCESS_WORD = 2;

    /**
     * DSDT body: {@code Name (_S5, Package (4) { 5, 5, Zero, Zero })} in AML.
     */
    static final byte[] DSDT_AML = {
        0x08,                   // NameOp
        '_', 'S', '5', '_',     // NameSeg "_S5_" (in the root scope: \_S5)
        0x12,                   // PackageOp
        0x08,                   // PkgLength: the package is 8 bytes from here (one-byte encoding)
        0x04,                   // NumElements
        0x0a, SLP_TYP_S5,       // BytePrefix 5: SLP_TYPa
        0x0a, SLP_TYP_S5,       // BytePrefix 5: SLP_TYPb
        0x00,                   // ZeroOp: reserved
        0x00,                   // ZeroOp: reserved
    };

    /** Where each table was placed. */
    public record Addresses(long rsdp, long xsdt, long rsdt, long fadt, long facs, long dsdt, long madt) {}

    /** Writes all tables and returns their addresses (the RSDP's goes into the zero page). */
    public static Addresses write(GuestPhysicalMemory memory, MachineTopology topology) {
        int cpus = topology.vcpus();
        int madtSize = HEADER_SIZE + 8 + cpus * 8 + 12 + 2 * 10 + 6;
        int dsdtSize = HEADER_SIZE + DSDT_AML.length;
        int xsdtSize = HEADER_SIZE + 2 * 8;
        int rsdtSize = HEADER_SIZE + 2 * 4;

        long rsdp = Layout.ACPI_TABLES;
        long xsdt = align(rsdp + RSDP_SIZE, 16);
        long rsdt = align(xsdt + xsdtSize, 16);
        long fadt = align(rsdt + rsdtSize, 16);
        long facs = align(fadt + FADT_SIZE, 64); // FACS must be 64-byte aligned
        long dsdt = align(facs + FACS_SIZE, 16);
        long madt = align(dsdt + dsdtSize, 16);
        if (madt + madtSize > Layout.ACPI_TABLES + Layout.ACPI_TABLES_SIZE) {
            throw new BootException(BootException.Kind.DOES_NOT_FIT, "the ACPI tables for " + cpus + " vCPUs do not fit their reserved area.");
        }

        memory.zero(Layout.ACPI_TABLES, Layout.ACPI_TABLES_SIZE);
        memory.write(rsdp, rsdp(xsdt, rsdt));
        memory.write(xsdt, sdt("XSDT", 1, xsdtSize, t -> t.u64(fadt).u64(madt)));
        memory.write(rsdt, sdt("RSDT", 1, rsdtSize, t -> t.u32(fadt).u32(madt)));
        memory.write(fadt, fadt(facs, dsdt));
        memory.write(facs, facs());
        memory.write(dsdt, sdt("DSDT", 2, dsdtSize, t -> t.bytes(DSDT_AML)));
        memory.write(madt, sdt("APIC", MADT_REVISION, madtSize, t -> madtBody(t, topology)));
        return new Addresses(rsdp, xsdt, rsdt, fadt, facs, dsdt, madt);
    }

    private static long align(long address, int alignment) {
        return (address + alignment - 1) & -alignment;
    }

    private static byte[] rsdp(long xsdt, long rsdt) {
        TableBuffer t = new TableBuffer(RSDP_SIZE);
        t.ascii("RSD PTR ", 8).u8(0).ascii("DVMM", 6).u8(2).u32(rsdt).u32(RSDP_SIZE).u64(xsdt).u8(0).zeros(3);
        t.checksum(0, 20, 8);              // ACPI 1.0 checksum: first 20 bytes
        t.checksum(0, RSDP_SIZE, 32);      // extended checksum: the whole structure
        return t.array();
    }

    private interface Body {
        void write(TableBuffer t);
    }

    /** A system description table: the 36-byte header, {@code body}, checksum at offset 9. */
    private static byte[] sdt(String signature, int revision, int length, Body body) {
        TableBuffer t = new TableBuffer(length);
        t.ascii(signature, 4).u32(length).u8(revision).u8(0)
                .ascii("DVMM", 6).ascii("DVMM" + signature, 8).u32(1)
                .ascii("DVMM", 4).u32(1);
        body.write(t);
        if (t.position() != length) {
            throw new IllegalStateException(signature + " body is " + t.position() + " bytes, expected " + length);
        }
        t.checksum(0, length, 9);
        return t.array();
    }

    private static byte[] fadt(long facs, long dsdt) {
        return sdt("FACP", FADT_REVISION, FADT_SIZE, t -> {
            t.u32(facs).u32(dsdt)                       // 36 FIRMWARE_CTRL, 40 DSDT
                    .u8(0).u8(0)                        // 44 reserved, 45 preferred PM profile: unspecified
                    .u16(Layout.SCI_IRQ)                // 46 SCI_INT
                    .u32(0).u8(0).u8(0).u8(0).u8(0)     // 48 SMI_CMD none, ACPI_ENABLE/DISABLE, S4BIOS_REQ, PSTATE_CNT
                    .u32(Layout.PM1A_EVT_PORT).u32(0)   // 56 PM1a_EVT_BLK, 60 PM1b_EVT_BLK
                    .u32(Layout.PM1A_CNT_PORT).u32(0)   // 64 PM1a_CNT_BLK, 68 PM1b_CNT_BLK
                    .u32(0).u32(Layout.PM_TMR_PORT)     // 72 PM2_CNT: none, 76 PM_TMR_BLK
                    .u32(0).u32(0)                      // 80 GPE0, 84 GPE1: none
                    .u8(Layout.PM1A_EVT_LEN).u8(Layout.PM1A_CNT_LEN) // 88 PM1_EVT_LEN, 89 PM1_CNT_LEN
                    .u8(0).u8(Layout.PM_TMR_LEN)        // 90 PM2_CNT_LEN, 91 PM_TMR_LEN
                    .u8(0).u8(0).u8(0).u8(0)            // 92 GPE0_BLK_LEN .. 95 CST_CNT
                    .u16(P_LVL2_LAT_NONE).u16(P_LVL3_LAT_NONE) // 96, 98
                    .u16(0).u16(0).u8(0).u8(0)          // 100 FLUSH_SIZE, FLUSH_STRIDE, DUTY_OFFSET, DUTY_WIDTH
                    .u8(0).u8(0).u8(0)                  // 106 DAY_ALRM, MON_ALRM, CENTURY: none
                    .u16(IAPC_BOOT_ARCH).u8(0)          // 109 IAPC_BOOT_ARCH, 111 reserved
                    .u32(FADT_FLAGS)                    // 112 Flags
                    .zeros(12).u8(0)                    // 116 RESET_REG: none, 128 RESET_VALUE
                    .u16(0).u8(0)                       // 129 ARM_BOOT_ARCH, 131 minor version
                    .u64(facs).u64(dsdt);               // 132 X_FIRMWARE_CTRL, 140 X_DSDT
            gas(t, Layout.PM1A_EVT_PORT, Layout.PM1A_EVT_LEN);  // 148 X_PM1a_EVT_BLK
            t.zeros(12);                                        // 160 X_PM1b_EVT_BLK
            gas(t, Layout.PM1A_CNT_PORT, Layout.PM1A_CNT_LEN);  // 172 X_PM1a_CNT_BLK
            t.zeros(12 * 2);    // 184 X_PM1b_CNT_BLK, 196 X_PM2_CNT_BLK: none
            gas(t, Layout.PM_TMR_PORT, Layout.PM_TMR_LEN);      // 208 X_PM_TMR_BLK
            t.zeros(12 * 2)     // 220 X_GPE0_BLK, 232 X_GPE1_BLK: none
                    .zeros(12 * 2)  // 244 SLEEP_CONTROL_REG, SLEEP_STATUS_REG: none
                    .u64(0);        // 268 hypervisor vendor identity
        });
    }

    /** A generic address structure for a block of {@code length} bytes at I/O port {@code port}. */
    private static void gas(TableBuffer t, int port, int length) {
        t.u8(GAS_SYSTEM_IO).u8(length * 8).u8(0).u8(GAS_ACCESS_WORD).u64(port);
    }

    private static byte[] facs() {
        TableBuffer t = new TableBuffer(FACS_SIZE);
        t.ascii("FACS", 4).u32(FACS_SIZE)
                .u32(0)         // hardware signature
                .u32(0)         // firmware waking vector: no S3
                .u32(0)         // global lock
                .u32(0)         // flags
                .u64(0)         // X firmware waking vector
                .u8(2)          // version
                .zeros(3).u32(0).zeros(24);
        return t.array();
    }

    private static void madtBody(TableBuffer t, MachineTopology topology) {
        t.u32(Layout.LAPIC).u32(MADT_PCAT_COMPAT);
        for (int cpu = 0; cpu < topology.vcpus(); cpu++) {
            // Processor local APIC: UID = APIC id = vCPU index, enabled.
            t.u8(MADT_LOCAL_APIC).u8(8).u8(cpu).u8(cpu).u32(1);
        }
        t.u8(MADT_IOAPIC).u8(12).u8(topology.ioapicId()).u8(0).u32(Layout.IOAPIC).u32(0);
        // ISA IRQ 0 (PIT) arrives on GSI 2; flags 0 = conforms to the ISA bus.
        t.u8(MADT_INTERRUPT_OVERRIDE).u8(10).u8(0).u8(0).u32(2).u16(0);
        t.u8(MADT_INTERRUPT_OVERRIDE).u8(10).u8(0).u8(Layout.SCI_IRQ).u32(Layout.SCI_IRQ).u16(SCI_INTI_FLAGS);
        // NMI on LINT1 of every processor (UID 0xff).
        t.u8(MADT_LOCAL_APIC_NMI).u8(6).u8(0xff).u16(0).u8(1);
    }
}
