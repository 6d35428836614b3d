package dev.dvmm.boot.smp;

import dev.dvmm.boot.BootException;

/**
 * What the firmware tables describe: {@code vcpus} CPUs with APIC ids 0..vcpus-1 (vCPU 0 is the
 * boot processor) and one IOAPIC with 24 pins whose id follows the last CPU's.
 */
public record MachineTopology(int vcpus) {
    /** xAPIC ids are 8 bits, 0xff is broadcast, and the IOAPIC needs an id of its own. */
    public static final int MAX_VCPUS = 254;
    public static final int IOAPIC_PINS = 24;
    /** Value of the local APIC version register (integrated APIC). */
    public static final int LAPIC_VERSION = 0x14;
    /** Value of the IOAPIC version register. */
    public static final int IOAPIC_VERSION = 0x11;

    public MachineTopology {
        if (vcpus < 1 || vcpus > MAX_VCPUS) {
            throw new BootException(BootException.Kind.INVALID_ARGUMENT, "a guest has 1 to " + MAX_VCPUS + " vCPUs, not " + vcpus + ".");
        }
    }

    public int ioapicId() {
        return vcpus;
    }
}
