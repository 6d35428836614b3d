package dev.dvmm.boot.smp;

import dev.dvmm.boot.memory.GuestPhysicalMemory;
import java.util.Optional;
import java.util.OptionalLong;

/** Writes the SMP enumeration tables a guest is configured for. */
public final class FirmwareTables {
    private FirmwareTables() {}

    /** What was written: the MP floating pointer and the ACPI tables, each if selected. */
    public record Written(OptionalLong mpFloatingPointer, Optional<AcpiTables.Addresses> acpi) {
        /** The RSDP address for boot_params.acpi_rsdp_addr, if ACPI tables exist. */
        public OptionalLong rsdp() {
            return acpi.map(a -> OptionalLong.of(a.rsdp())).orElse(OptionalLong.empty());
        }
    }

    public static Written write(GuestPhysicalMemory memory, MachineTopology topology, SmpEnumeration enumeration) {
        OptionalLong mp = enumeration.mpTable
                ? OptionalLong.of(MpTable.write(memory, topology))
                : OptionalLong.empty();
        Optional<AcpiTables.Addresses> acpi = enumeration.acpi
                ? Optional.of(AcpiTables.write(memory, topology))
                : Optional.empty();
        return new Written(mp, acpi);
    }
}
