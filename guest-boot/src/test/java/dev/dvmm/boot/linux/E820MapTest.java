package dev.dvmm.boot.linux;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dvmm.boot.BootException;
import dev.dvmm.boot.Layout;
import java.util.List;
import org.junit.jupiter.api.Test;

class E820MapTest {

    /** Sorted, non-empty, non-overlapping entries. */
    static void assertOrderedAndDisjoint(List<E820Map.Entry> entries) {
        for (int i = 0; i < entries.size(); i++) {
            assertTrue(entries.get(i).size() > 0, "entry " + i + " is empty");
            if (i > 0) {
                assertTrue(entries.get(i - 1).end() <= entries.get(i).address(), "entries " + (i - 1) + " and " + i + " overlap or are out of order");
            }
        }
    }

    static int typeAt(List<E820Map.Entry> entries, long address) {
        for (E820Map.Entry e : entries) {
            if (address >= e.address() && address < e.end()) {
                return e.type();
            }
        }
        return 0;
    }

    @Test
    void smallGuestHasTheConventionalHoles() {
        long ram = 256L << 20;
        List<E820Map.Entry> e = E820Map.forRam(ram).entries();
        assertOrderedAndDisjoint(e);
        assertEquals(E820Map.RAM, typeAt(e, 0));
        assertEquals(E820Map.RAM, typeAt(e, 0x9_fbff));
        assertEquals(E820Map.RESERVED, typeAt(e, 0x9_fc00));
        assertEquals(E820Map.RESERVED, typeAt(e, 0xa_0000));
        assertEquals(E820Map.RESERVED, typeAt(e, Layout.ACPI_TABLES), "ACPI tables are reserved");
        assertEquals(E820Map.RESERVED, typeAt(e, Layout.MP_TABLE), "the MP table is reserved");
        assertEquals(E820Map.RESERVED, typeAt(e, 0xf_ffff));
        assertEquals(E820Map.RAM, typeAt(e, 0x10_0000));
        assertEquals(E820Map.RAM, typeAt(e, ram - 1));
        assertEquals(0, typeAt(e, ram), "nothing past the end of RAM");
        assertEquals(ram - (Layout.HIGH_MEMORY - Layout.EBDA_START), E820Map.forRam(ram).ramBytes());
    }

    @Test
    void ramBeyondTheGapContinuesAt4GiB() {
        long ram = 5L << 30;
        List<E820Map.Entry> e = E820Map.forRam(ram).entries();
        assertOrderedAndDisjoint(e);
        assertEquals(E820Map.RAM, typeAt(e, Layout.MMIO_GAP_START - 1));
        assertEquals(0, typeAt(e, Layout.MMIO_GAP_START));
        assertEquals(0, typeAt(e, Layout.IOAPIC));
        assertEquals(0, typeAt(e, Layout.LAPIC));
        assertEquals(E820Map.RAM, typeAt(e, 1L << 32));
        long highEnd = (1L << 32) + ram - Layout.MMIO_GAP_START;
        assertEquals(E820Map.RAM, typeAt(e, highEnd - 1));
        assertEquals(0, typeAt(e, highEnd));
        assertEquals(ram - (Layout.HIGH_MEMORY - Layout.EBDA_START), E820Map.forRam(ram).ramBytes());
    }

    @Test
    void tooLittleRamIsRefused() {
        BootException e = assertThrows(BootException.class, () -> E820Map.forRam(1 << 20));
        assertEquals(BootException.Kind.DOES_NOT_FIT, e.kind());
    }
}
