package dev.dvmm.boot.smp;

/**
 * How the guest learns its CPUs and interrupt routing. Debian's kernel reads both (ACPI wins when
 * present); a tiny kernel may have only CONFIG_X86_MPPARSE.
 */
public enum SmpEnumeration {
    MP_TABLE(true, false),
    ACPI(false, true),
    BOTH(true, true);

    public final boolean mpTable;
    public final boolean acpi;

    SmpEnumeration(boolean mpTable, boolean acpi) {
        this.mpTable = mpTable;
        this.acpi = acpi;
    }
}
