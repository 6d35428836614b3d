package dev.dvmm.boot.smp;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dvmm.boot.BootException;
import dev.dvmm.boot.Layout;
import dev.dvmm.boot.TestMemory;
import dev.dvmm.boot.memory.GuestPhysicalMemory;
import dev.dvmm.boot.memory.SegmentGuestMemory;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.TreeMap;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/**
 * Reads the tables back the way a guest kernel finds them (signature scans in the BIOS areas),
 * checks every checksum and decodes every entry with a parser written from the MP 1.4 and ACPI
 * specifications, independent of the writer.
 */
class FirmwareTablesTest {

    static String ascii(GuestPhysicalMemory m, long at, int length) {
        return new String(m.read(at, length), StandardCharsets.US_ASCII);
    }

    static int u8(GuestPhysicalMemory m, long at) {
        return Byte.toUnsignedInt(m.getByte(at));
    }

    static int u16(GuestPhysicalMemory m, long at) {
        return Short.toUnsignedInt(m.getShort(at));
    }

    static long u32(GuestPhysicalMemory m, long at) {
        return Integer.toUnsignedLong(m.getInt(at));
    }

    static void assertChecksum(GuestPhysicalMemory m, long at, int length, String what) {
        int sum = 0;
        for (byte b : m.read(at, length)) {
            sum += b;
        }
        assertEquals(0, sum & 0xff, what + " checksum");
    }

    /** Linux's scan order for the MP floating pointer: 16-byte steps in the given ranges. */
    static OptionalLong scan(GuestPhysicalMemory m, String signature, long[][] ranges) {
        for (long[] r : ranges) {
            for (long at = r[0]; at + 16 <= r[0] + r[1]; at += 16) {
                if (ascii(m, at, signature.length()).equals(signature)) {
                    return OptionalLong.of(at);
                }
            }
        }
        return OptionalLong.empty();
    }

    static OptionalLong findMp(GuestPhysicalMemory m) {
        return scan(m, "_MP_", new long[][] {{0, 0x400}, {0x9_fc00, 0x400}, {0xf_0000, 0x1_0000}});
    }

    static OptionalLong findRsdp(GuestPhysicalMemory m) {
        return scan(m, "RSD PTR ", new long[][] {{0xe_0000, 0x2_0000}});
    }

    // ---------------------------------------------------------------- MP table

    record MpProcessor(int apicId, int flags) {}

    record MpInterrupt(int entryType, int type, int flags, int bus, int irq, int dest, int pin) {}

    record MpConfig(List<MpProcessor> cpus, Map<Integer, String> buses, int ioapicId, long ioapicAddress,
                    List<MpInterrupt> interrupts, long lapic) {}

    static MpConfig parseMp(GuestPhysicalMemory m, long pointer) {
        assertChecksum(m, pointer, 16, "MP floating pointer");
        assertEquals(1, u8(m, pointer + 8), "floating pointer length in paragraphs");
        assertEquals(4, u8(m, pointer + 9), "spec revision 1.4");
        assertEquals(0, u8(m, pointer + 11), "feature 1: a configuration table follows");
        long table = u32(m, pointer + 4);
        assertEquals("PCMP", ascii(m, table, 4));
        int length = u16(m, table + 4);
        assertChecksum(m, table, length, "MP configuration table");
        assertEquals(0, u16(m, table + 40), "no extended table");
        int count = u16(m, table + 34);
        List<MpProcessor> cpus = new ArrayList<>();
        Map<Integer, String> buses = new TreeMap<>();
        List<MpInterrupt> ints = new ArrayList<>();
        int ioapicId = -1;
        long ioapicAddress = -1;
        long at = table + 44;
        int lastType = 0;
        for (int i = 0; i < count; i++) {
            int type = u8(m, at);
            assertTrue(type >= lastType, "entries sorted by type");
            lastType = type;
            switch (type) {
                case 0 -> {
                    cpus.add(new MpProcessor(u8(m, at + 1), u8(m, at + 3)));
                    at += 20;
                }
                case 1 -> {
                    buses.put(u8(m, at + 1), ascii(m, at + 2, 6).trim());
                    at += 8;
                }
                case 2 -> {
                    ioapicId = u8(m, at + 1);
                    assertEquals(1, u8(m, at + 3) & 1, "IOAPIC enabled");
                    ioapicAddress = u32(m, at + 4);
                    at += 8;
                }
                case 3, 4 -> {
                    ints.add(new MpInterrupt(type, u8(m, at + 1), u16(m, at + 2), u8(m, at + 4), u8(m, at + 5),
                            u8(m, at + 6), u8(m, at + 7)));
                    at += 8;
                }
                default -> throw new AssertionError("unknown MP entry type " + type);
            }
        }
        assertEquals(table + length, at, "entries fill the base table exactly");
        return new MpConfig(cpus, buses, ioapicId, ioapicAddress, ints, u32(m, table + 36));
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 7, 64, MachineTopology.MAX_VCPUS})
    void mpTableDescribesEveryCpuAndTheIsaRouting(int vcpus) {
        SegmentGuestMemory m = TestMemory.allocate(4 * TestMemory.MIB);
        FirmwareTables.Written w = FirmwareTables.write(m, new MachineTopology(vcpus), SmpEnumeration.MP_TABLE);
        long pointer = findMp(m).orElseThrow();
        assertEquals(w.mpFloatingPointer().getAsLong(), pointer);
        assertFalse(findRsdp(m).isPresent(), "MP only: no ACPI");
        MpConfig c = parseMp(m, pointer);

        assertEquals(Layout.LAPIC, c.lapic());
        assertEquals(vcpus, c.cpus().size());
        for (int i = 0; i < vcpus; i++) {
            assertEquals(i, c.cpus().get(i).apicId());
            assertEquals(i == 0 ? 3 : 1, c.cpus().get(i).flags(), "enabled, BSP only for vCPU 0");
        }
        assertEquals(Map.of(0, "ISA"), c.buses());
        assertEquals(Layout.IOAPIC, c.ioapicAddress());
        assertTrue(c.ioapicId() >= vcpus && c.ioapicId() < 255, "IOAPIC id distinct from every APIC id");

        Map<Integer, Integer> pinOfIrq = new TreeMap<>();
        for (MpInterrupt i : c.interrupts()) {
            if (i.entryType() == 3) {
                assertEquals(0, i.type(), "vectored interrupt");
                assertEquals(0, i.bus());
                assertEquals(c.ioapicId(), i.dest());
                assertTrue(pinOfIrq.put(i.irq(), i.pin()) == null, "IRQ " + i.irq() + " listed once");
            }
        }
        assertEquals(2, pinOfIrq.get(0), "IRQ0 (PIT) on pin 2");
        assertFalse(pinOfIrq.containsKey(2), "IRQ2 is the cascade");
        for (int irq = 1; irq < 16; irq++) {
            if (irq != 2) {
                assertEquals(irq, pinOfIrq.get(irq), "ISA IRQ " + irq);
            }
        }
        List<MpInterrupt> local = c.interrupts().stream().filter(i -> i.entryType() == 4).toList();
        assertEquals(2, local.size());
        assertEquals(new MpInterrupt(4, 3, 0, 0, 0, 0xff, 0), local.get(0), "ExtINT on LINT0 of all CPUs");
        assertEquals(new MpInterrupt(4, 1, 0, 0, 0, 0xff, 1), local.get(1), "NMI on LINT1 of all CPUs");
    }

    // ---------------------------------------------------------------- ACPI

    /** Validates an SDT header and checksum and returns its length. */
    static int sdt(GuestPhysicalMemory m, long at, String signature) {
        assertEquals(signature, ascii(m, at, 4));
        int length = (int) u32(m, at + 4);
        assertTrue(length >= 36, signature + " length");
        assertChecksum(m, at, length, signature);
        return length;
    }

    record Madt(List<int[]> lapics, int ioapicId, long ioapicAddress, long gsiBase, Map<Integer, long[]> overrides,
                List<int[]> nmis, long lapicAddress, long flags) {}

    static Madt parseMadt(GuestPhysicalMemory m, long at) {
        int length = sdt(m, at, "APIC");
        List<int[]> lapics = new ArrayList<>();
        Map<Integer, long[]> overrides = new TreeMap<>();
        List<int[]> nmis = new ArrayList<>();
        int ioapicId = -1;
        long ioapicAddress = -1;
        long gsiBase = -1;
        long p = at + 44;
        while (p < at + length) {
            int type = u8(m, p);
            int len = u8(m, p + 1);
            assertTrue(len >= 2 && p + len <= at + length, "MADT entry fits the table");
            switch (type) {
                case 0 -> lapics.add(new int[] {u8(m, p + 2), u8(m, p + 3), (int) u32(m, p + 4)});
                case 1 -> {
                    ioapicId = u8(m, p + 2);
                    ioapicAddress = u32(m, p + 4);
                    gsiBase = u32(m, p + 8);
                }
                case 2 -> overrides.put(u8(m, p + 3), new long[] {u8(m, p + 2), u32(m, p + 4), u16(m, p + 8)});
                case 4 -> nmis.add(new int[] {u8(m, p + 2), u16(m, p + 3), u8(m, p + 5)});
                default -> throw new AssertionError("unexpected MADT entry type " + type);
            }
            p += len;
        }
        assertEquals(at + length, p, "entries fill the MADT exactly");
        return new Madt(lapics, ioapicId, ioapicAddress, gsiBase, overrides, nmis, u32(m, at + 36), u32(m, at + 40));
    }

    /** RSDP -> XSDT (and RSDT) -> tables by signature. */
    static Map<String, Long> walkAcpi(GuestPhysicalMemory m, long rsdp) {
        assertChecksum(m, rsdp, 20, "RSDP (1.0 part)");
        assertEquals(2, u8(m, rsdp + 15), "RSDP revision 2");
        int rsdpLength = (int) u32(m, rsdp + 20);
        assertEquals(36, rsdpLength);
        assertChecksum(m, rsdp, rsdpLength, "RSDP extended");
        long xsdt = m.getLong(rsdp + 24);
        long rsdt = u32(m, rsdp + 16);
        int xLength = sdt(m, xsdt, "XSDT");
        int rLength = sdt(m, rsdt, "RSDT");
        assertEquals(1, u8(m, xsdt + 8), "XSDT revision");
        assertEquals(1, u8(m, rsdt + 8), "RSDT revision");
        assertEquals((xLength - 36) / 8, (rLength - 36) / 4, "RSDT and XSDT list the same number of tables");
        Map<String, Long> tables = new TreeMap<>();
        for (int i = 0; i < (xLength - 36) / 8; i++) {
            long table = m.getLong(xsdt + 36 + i * 8L);
            assertEquals(table, u32(m, rsdt + 36 + i * 4L), "RSDT entry " + i + " matches XSDT");
            String signature = ascii(m, table, 4);
            sdt(m, table, signature);
            tables.put(signature, table);
        }
        return tables;
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 7, 64, MachineTopology.MAX_VCPUS})
    void acpiTablesDescribeEveryCpuAndTheIoapic(int vcpus) {
        SegmentGuestMemory m = TestMemory.allocate(4 * TestMemory.MIB);
        FirmwareTables.Written w = FirmwareTables.write(m, new MachineTopology(vcpus), SmpEnumeration.ACPI);
        long rsdp = findRsdp(m).orElseThrow();
        assertEquals(w.rsdp().getAsLong(), rsdp);
        assertFalse(findMp(m).isPresent(), "ACPI only: no MP table");
        Map<String, Long> tables = walkAcpi(m, rsdp);
        assertEquals(List.of("APIC", "FACP"), List.copyOf(tables.keySet()));

        Madt madt = parseMadt(m, tables.get("APIC"));
        assertEquals(AcpiTables.MADT_REVISION, u8(m, tables.get("APIC") + 8));
        assertEquals(1, madt.flags() & 1, "PC-AT compatible flag");
        assertEquals(Layout.LAPIC, madt.lapicAddress());
        assertEquals(vcpus, madt.lapics().size());
        for (int i = 0; i < vcpus; i++) {
            assertArrayEquals(new int[] {i, i, 1}, madt.lapics().get(i), "processor UID, APIC id, enabled");
        }
        assertEquals(Layout.IOAPIC, madt.ioapicAddress());
        assertEquals(0, madt.gsiBase());
        assertTrue(madt.ioapicId() >= vcpus && madt.ioapicId() < 255);
        assertArrayEquals(new long[] {0, 2, 0}, madt.overrides().get(0), "ISA IRQ0 -> GSI 2");
        assertArrayEquals(new long[] {0, Layout.SCI_IRQ, 0xd}, madt.overrides().get(Layout.SCI_IRQ), "SCI level, high");
        assertEquals(1, madt.nmis().size());
        assertArrayEquals(new int[] {0xff, 0, 1}, madt.nmis().get(0), "NMI on LINT1 of all processors");
    }

    @Test
    void fadtPointsAtThePmBlocksAndTheDsdtCanPowerOff() {
        SegmentGuestMemory m = TestMemory.allocate(4 * TestMemory.MIB);
        FirmwareTables.write(m, new MachineTopology(4), SmpEnumeration.BOTH);
        assertTrue(findMp(m).isPresent(), "both: MP table too");
        Map<String, Long> tables = walkAcpi(m, findRsdp(m).orElseThrow());
        long fadt = tables.get("FACP");
        assertEquals(276, sdt(m, fadt, "FACP"));
        assertEquals(6, u8(m, fadt + 8), "FADT revision 6 (ACPI 6.0 layout)");
        assertEquals(Layout.SCI_IRQ, u16(m, fadt + 46));
        assertEquals(0, u32(m, fadt + 48), "no SMI_CMD: always in ACPI mode");
        assertEquals(Layout.PM1A_EVT_PORT, u32(m, fadt + 56));
        assertEquals(Layout.PM1A_CNT_PORT, u32(m, fadt + 64));
        assertEquals(4, u8(m, fadt + 88), "PM1_EVT_LEN");
        assertEquals(2, u8(m, fadt + 89), "PM1_CNT_LEN");
        assertEquals(Layout.PM_TMR_PORT, u32(m, fadt + 76), "PM timer");
        assertEquals(4, u8(m, fadt + 91), "PM_TMR_LEN");
        assertEquals(0, u32(m, fadt + 112) & (1 << 8), "TMR_VAL_EXT clear: 24-bit timer");
        assertEquals(0x2, u16(m, fadt + 109) & 0x2, "8042 present");
        assertEquals(0, u32(m, fadt + 112) & (1 << 20), "not hardware-reduced");
        // 64-bit fields agree with the 32-bit ones.
        long dsdt = u32(m, fadt + 40);
        assertEquals(dsdt, m.getLong(fadt + 140), "X_DSDT");
        long facs = u32(m, fadt + 36);
        assertEquals(facs, m.getLong(fadt + 132), "X_FIRMWARE_CTRL");
        assertGas(m, fadt + 148, Layout.PM1A_EVT_PORT, 32);
        assertGas(m, fadt + 172, Layout.PM1A_CNT_PORT, 16);
        assertGas(m, fadt + 208, Layout.PM_TMR_PORT, 32);

        assertEquals("FACS", ascii(m, facs, 4));
        assertEquals(64, u32(m, facs + 4));
        assertEquals(0, facs % 64, "FACS is 64-byte aligned");

        int dsdtLength = sdt(m, dsdt, "DSDT");
        assertEquals(2, u8(m, dsdt + 8), "DSDT revision 2: 64-bit AML integers");
        assertEquals(AcpiTables.SLP_TYP_S5, s5SleepType(m.read(dsdt + 36, dsdtLength - 36)));
    }

    private static void assertGas(GuestPhysicalMemory m, long at, int port, int bits) {
        assertEquals(1, u8(m, at), "system I/O space");
        assertEquals(bits, u8(m, at + 1), "bit width");
        assertEquals(0, u8(m, at + 2), "bit offset");
        assertEquals(port, m.getLong(at + 4), "port");
    }

    /** Finds Name(_S5_, Package) in AML and decodes SLP_TYPa, the way ACPICA evaluates \_S5. */
    static int s5SleepType(byte[] aml) {
        for (int i = 0; i + 5 < aml.length; i++) {
            if (aml[i] == 0x08 && new String(aml, i + 1, 4, StandardCharsets.US_ASCII).equals("_S5_")) {
                int p = i + 5;
                assertEquals(0x12, aml[p], "PackageOp");
                int lead = aml[p + 1] & 0xff;
                assertEquals(0, lead >> 6, "one-byte PkgLength");
                int end = p + 1 + (lead & 0x3f);
                assertEquals(aml.length, end, "the package ends the AML");
                int elements = aml[p + 2];
                assertTrue(elements >= 2, "SLP_TYPa and SLP_TYPb");
                int q = p + 3;
                return switch (aml[q]) {
                    case 0x00 -> 0;                 // ZeroOp
                    case 0x01 -> 1;                 // OneOp
                    case 0x0a -> aml[q + 1] & 0xff; // BytePrefix
                    default -> throw new AssertionError("unexpected AML opcode " + aml[q]);
                };
            }
        }
        throw new AssertionError("no _S5_ in the DSDT");
    }

    @Test
    void vcpuCountOutsideTheXapicRangeIsRefused() {
        assertEquals(BootException.Kind.INVALID_ARGUMENT, assertThrows(BootException.class, () -> new MachineTopology(0)).kind());
        assertThrows(BootException.class, () -> new MachineTopology(255));
    }
}
