package dev.dvmm.hv.bus;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class IoBusTest {
    /** Remembers the last access: offset, size, value, vcpu. */
    static final class Probe implements BusDevice {
        long offset = -1;
        int size;
        long value;
        int vcpu = -1;

        @Override
        public long read(int vcpu, long offset, int size) {
            this.vcpu = vcpu;
            this.offset = offset;
            this.size = size;
            return 0xAB00 + offset;
        }

        @Override
        public void write(int vcpu, long offset, int size, long value) {
            this.vcpu = vcpu;
            this.offset = offset;
            this.size = size;
            this.value = value;
        }
    }

    @Test
    void dispatchesToTheDeviceWithOffsetsRelativeToItsBase() {
        IoBus bus = new IoBus("pio");
        Probe a = new Probe();
        Probe b = new Probe();
        bus.register("a", 0x3f8, 8, a);
        bus.register("b", 0x60, 1, b);
        bus.write(3, 0x3fd, 1, 0x41);
        assertEquals(5, a.offset);
        assertEquals(0x41, a.value);
        assertEquals(3, a.vcpu);
        assertEquals(0xAB00, bus.read(0, 0x60, 1));
        assertEquals(0, b.offset);
        assertEquals("a", bus.deviceAt(0x3ff));
        assertNull(bus.deviceAt(0x400));
    }

    @Test
    void unclaimedAccessesReadAllOnesAndAreCounted() {
        IoBus bus = new IoBus("pio");
        bus.register("a", 0x10, 4, new Probe());
        assertEquals(0xFF, bus.read(0, 0x14, 1));
        assertEquals(0xFFFF, bus.read(0, 0x0f, 2));
        assertEquals(0xFFFF_FFFFL, bus.read(0, 0x100, 4));
        assertEquals(-1L, bus.read(0, 0x100, 8));
        bus.write(0, 0x9, 1, 1);
        assertEquals(5, bus.unclaimedAccesses());
    }

    @Test
    void rejectsOverlappingEmptyAndWrappingRanges() {
        IoBus bus = new IoBus("mmio");
        bus.register("lapic", 0xFEE00000L, 0x1000, new Probe());
        BusException e = assertThrows(BusException.class, () -> bus.register("x", 0xFEE00FFFL, 2, new Probe()));
        assertTrue(e.getMessage().contains("overlaps lapic"), e.getMessage());
        assertThrows(BusException.class, () -> bus.register("y", 0xFEDFFFFFL, 2, new Probe()));
        assertThrows(BusException.class, () -> bus.register("z", 0xFEE00000L, 0x1000, new Probe()));
        assertThrows(BusException.class, () -> bus.register("empty", 0x1000, 0, new Probe()));
        assertThrows(BusException.class, () -> bus.register("wrap", Long.MAX_VALUE - 1, 4, new Probe()));
        bus.register("adjacent-below", 0xFEDFF000L, 0x1000, new Probe());
        bus.register("adjacent-above", 0xFEE01000L, 0x1000, new Probe());
        assertEquals("adjacent-below", bus.deviceAt(0xFEDFFFFFL));
        assertEquals("lapic", bus.deviceAt(0xFEE00000L));
        assertEquals("adjacent-above", bus.deviceAt(0xFEE01000L));
    }

    @Test
    void manyDevicesAreFoundByBinarySearch() {
        IoBus bus = new IoBus("pio");
        Probe[] p = new Probe[100];
        for (int i = 99; i >= 0; i--) {
            p[i] = new Probe();
            bus.register("d" + i, i * 16L, 8, p[i]);
        }
        for (int i = 0; i < 100; i++) {
            bus.write(0, i * 16L + 7, 1, i);
            assertEquals(i, p[i].value);
            assertEquals(7, p[i].offset);
            assertEquals(0xFF, bus.read(0, i * 16L + 8, 1), "gap after d" + i);
        }
    }
}
