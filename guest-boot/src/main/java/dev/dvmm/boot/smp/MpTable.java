package dev.dvmm.boot.smp;

import dev.dvmm.boot.BootException;
import dev.dvmm.boot.Layout;
import dev.dvmm.boot.memory.GuestPhysicalMemory;

/**
 * Intel MultiProcessor Specification 1.4 tables at {@link Layout#MP_TABLE}: the 16-byte floating
 * pointer ("_MP_") followed by the configuration table ("PCMP") with, in the order the spec
 * requires, one processor entry per vCPU, one ISA bus, the IOAPIC, ISA IRQ routing (IRQ0 to pin 2,
 * IRQ2 the cascade left out, IRQ n to pin n otherwise) and the local interrupts (ExtINT to LINT0,
 * NMI to LINT1 of every CPU). Both checksums make their structure sum to zero.
 */
public final class MpTable {
    private MpTable() {}

    public static final int FLOATING_POINTER_SIZE = 16;
    public static final int HEADER_SIZE = 44;
    public static final int PROCESSOR_ENTRY_SIZE = 20;
    public static final int SMALL_ENTRY_SIZE = 8;
    public static final int SPEC_REVISION = 4; // 1.4

    public static final int ENTRY_PROCESSOR = 0;
    public static final int ENTRY_BUS = 1;
    public static final int ENTRY_IOAPIC = 2;
    public static final int ENTRY_IO_INTERRUPT = 3;
    public static final int ENTRY_LOCAL_INTERRUPT = 4;

    public static final int INT_TYPE_INT = 0;
    public static final int INT_TYPE_NMI = 1;
    public static final int INT_TYPE_EXTINT = 3;

    public static final int CPU_ENABLED = 1;
    public static final int CPU_BOOT_PROCESSOR = 2;
    public static final int ISA_BUS_ID = 0;
    /** CPUID signature written for every CPU: family 6; Linux only prints it. */
    static final int CPU_SIGNATURE = 0x600;
    /** CPUID.1:EDX features written for every CPU: FPU and APIC. */
    static final int CPU_FEATURES = 0x201;

    /** ISA IRQs routed to the IOAPIC: all but 2, the cascade input. */
    static final int ISA_IRQS = 16;

    /** Writes the tables and returns the floating pointer's address. */
    public static long write(GuestPhysicalMemory memory, MachineTopology topology) {
        int cpus = topology.vcpus();
        int ioInterrupts = ISA_IRQS - 1;
        int entries = cpus + 1 + 1 + ioInterrupts + 2;
        int tableSize = HEADER_SIZE + cpus * PROCESSOR_ENTRY_SIZE + (entries - cpus) * SMALL_ENTRY_SIZE;
        if (FLOATING_POINTER_SIZE + tableSize > Layout.MP_TABLE_SIZE) {
            throw new BootException(BootException.Kind.DOES_NOT_FIT, "the MP table for " + cpus + " vCPUs does not fit its reserved area.");
        }
        long pointerAddress = Layout.MP_TABLE;
        long tableAddress = Layout.MP_TABLE + FLOATING_POINTER_SIZE;

        TableBuffer t = new TableBuffer(tableSize);
        t.ascii("PCMP", 4).u16(tableSize).u8(SPEC_REVISION).u8(0)
                .ascii("DVMM", 8).ascii("DVMM MP", 12)
                .u32(0).u16(0) // no OEM table
                .u16(entries).u32(Layout.LAPIC)
                .u16(0).u8(0).u8(0); // no extended table
        for (int cpu = 0; cpu < cpus; cpu++) {
            t.u8(ENTRY_PROCESSOR).u8(cpu).u8(MachineTopology.LAPIC_VERSION)
                    .u8(CPU_ENABLED | (cpu == 0 ? CPU_BOOT_PROCESSOR : 0))
                    .u32(CPU_SIGNATURE).u32(CPU_FEATURES).zeros(8);
        }
        t.u8(ENTRY_BUS).u8(ISA_BUS_ID).ascii("ISA", 6);
        int ioapic = topology.ioapicId();
        t.u8(ENTRY_IOAPIC).u8(ioapic).u8(MachineTopology.IOAPIC_VERSION).u8(1).u32(Layout.IOAPIC);
        for (int irq = 0; irq < ISA_IRQS; irq++) {
            if (irq == 2) {
                continue;
            }
            int pin = irq == 0 ? 2 : irq;
            // Flags 0: polarity and trigger conform to the ISA bus (active high, edge).
            t.u8(ENTRY_IO_INTERRUPT).u8(INT_TYPE_INT).u16(0).u8(ISA_BUS_ID).u8(irq).u8(ioapic).u8(pin);
        }
        t.u8(ENTRY_LOCAL_INTERRUPT).u8(INT_TYPE_EXTINT).u16(0).u8(ISA_BUS_ID).u8(0).u8(0xff).u8(0);
        t.u8(ENTRY_LOCAL_INTERRUPT).u8(INT_TYPE_NMI).u16(0).u8(ISA_BUS_ID).u8(0).u8(0xff).u8(1);
        t.checksum(0, tableSize, 7);

        TableBuffer p = new TableBuffer(FLOATING_POINTER_SIZE);
        p.ascii("_MP_", 4).u32(tableAddress).u8(1).u8(SPEC_REVISION).u8(0)
                .u8(0)  // feature 1: 0 = the configuration table is present
                .u8(0)  // feature 2: IMCR absent, virtual wire mode
                .zeros(3);
        p.checksum(0, FLOATING_POINTER_SIZE, 10);

        memory.zero(Layout.MP_TABLE, Layout.MP_TABLE_SIZE);
        memory.write(pointerAddress, p.array());
        memory.write(tableAddress, t.array());
        return pointerAddress;
    }
}
