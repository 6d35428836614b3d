package dev.dvmm.boot.linux;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dvmm.boot.Layout;
import dev.dvmm.boot.TestMemory;
import dev.dvmm.boot.memory.GuestPhysicalMemory;
import dev.dvmm.boot.memory.SegmentGuestMemory;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

class PageTablesAndGdtTest {
    private static final long ADDRESS_MASK = 0x000f_ffff_ffff_f000L;
    private static final long NOT_MAPPED = -1;

    /** A 4-level x86-64 walk as the MMU does it; every level must be present and writable. */
    static long translate(GuestPhysicalMemory m, long cr3, long va) {
        long table = cr3 & ADDRESS_MASK;
        int[] shifts = {39, 30, 21, 12};
        for (int level = 0; level < 4; level++) {
            long entry = m.getLong(table + ((va >>> shifts[level]) & 511) * 8);
            if ((entry & 1) == 0) {
                return NOT_MAPPED;
            }
            assertTrue((entry & 2) != 0, "writable at level " + level);
            boolean large = (entry & 0x80) != 0;
            if (level == 0) {
                assertFalse(large, "PML4 entries cannot map pages");
            }
            if (large || level == 3) {
                long pageMask = (1L << shifts[level]) - 1;
                return (entry & ADDRESS_MASK & ~pageMask) | (va & pageMask);
            }
            table = entry & ADDRESS_MASK;
        }
        throw new AssertionError("unreachable");
    }

    @ParameterizedTest
    @EnumSource(PageTables.PageSize.class)
    void everyAddressBelow4GiBTranslatesToItself(PageTables.PageSize size) {
        SegmentGuestMemory m = TestMemory.allocate(16 * TestMemory.MIB);
        m.fill(Layout.PML4, 6 * Layout.PAGE_SIZE, (byte) 0xff); // stale garbage must not survive
        long cr3 = PageTables.writeIdentityMap(m, size);
        assertEquals(Layout.PML4, cr3);
        Random random = new Random(1);
        for (long page = 0; page < Layout.IDENTITY_MAP_LIMIT; page += 1L << 21) {
            long inside = page + (random.nextLong() & ((1L << 21) - 1));
            for (long va : new long[] {page, inside, page + (1L << 21) - 1}) {
                assertEquals(va, translate(m, cr3, va), () -> "address 0x" + Long.toHexString(va));
            }
        }
        assertEquals(NOT_MAPPED, translate(m, cr3, Layout.IDENTITY_MAP_LIMIT));
        assertEquals(NOT_MAPPED, translate(m, cr3, 1L << 39));
    }

    @Test
    void gdtHoldsFlatLongModeCodeDataAndATss() {
        SegmentGuestMemory m = TestMemory.allocate(4 * TestMemory.MIB);
        m.fill(Layout.TSS, Gdt.TSS_SIZE, (byte) 0x77);
        Gdt.write(m);
        assertEquals(0, m.getLong(Layout.GDT), "null descriptor");

        long cs = m.getLong(Layout.GDT + Gdt.BOOT_CS);
        assertEquals(0xffff, cs & 0xffff, "limit 15:0");
        assertEquals(0xf, (cs >>> 48) & 0xf, "limit 19:16");
        assertEquals(0, (cs >>> 16) & 0xff_ffff, "base 23:0");
        assertEquals(0, cs >>> 56, "base 31:24");
        assertEquals(1, (cs >>> 47) & 1, "present");
        assertEquals(1, (cs >>> 44) & 1, "code/data, not system");
        assertEquals(0, (cs >>> 45) & 3, "ring 0");
        assertEquals(1, (cs >>> 43) & 1, "executable");
        assertEquals(1, (cs >>> 41) & 1, "readable");
        assertEquals(1, (cs >>> 53) & 1, "L: 64-bit code");
        assertEquals(0, (cs >>> 54) & 1, "D must be clear with L");
        assertEquals(1, (cs >>> 55) & 1, "4 KiB granularity");

        long ds = m.getLong(Layout.GDT + Gdt.BOOT_DS);
        assertEquals(0, (ds >>> 43) & 1, "data");
        assertEquals(1, (ds >>> 41) & 1, "writable");
        assertEquals(1, (ds >>> 47) & 1, "present");
        assertEquals(1, (ds >>> 54) & 1, "32-bit stack");
        assertEquals(1, (ds >>> 55) & 1, "4 KiB granularity");

        long tssLow = m.getLong(Layout.GDT + Gdt.TSS_SELECTOR);
        long tssHigh = m.getLong(Layout.GDT + Gdt.TSS_SELECTOR + 8);
        long tssBase = ((tssLow >>> 16) & 0xff_ffff) | ((tssLow >>> 56) << 24) | (tssHigh << 32);
        assertEquals(Layout.TSS, tssBase);
        assertEquals(Gdt.TSS_SIZE - 1, tssLow & 0xffff);
        assertEquals(0xb, (tssLow >>> 40) & 0xf, "busy 64-bit TSS");
        assertEquals(0, (tssLow >>> 44) & 1, "system descriptor");
        assertEquals(1, (tssLow >>> 47) & 1, "present");
        assertEquals(0, m.getLong(Layout.TSS), "TSS zeroed");

        // The register state the hypervisor loads agrees with the descriptors in memory.
        Segment code = Gdt.codeSegment();
        assertEquals(0xffff_ffffL, code.limit());
        assertTrue(code.l() && !code.db() && code.s() && code.present() && code.g());
        assertEquals(0xb, code.type());
        Segment data = Gdt.dataSegment();
        assertEquals(0xffff_ffffL, data.limit());
        assertTrue(data.db() && !data.l() && data.present());
        assertEquals(0x3, data.type());
        Segment tr = Gdt.taskSegment();
        assertEquals(Layout.TSS, tr.base());
        assertEquals(Gdt.TSS_SIZE - 1, tr.limit());
        assertEquals(0xb, tr.type());
        assertFalse(tr.s());
    }
}
