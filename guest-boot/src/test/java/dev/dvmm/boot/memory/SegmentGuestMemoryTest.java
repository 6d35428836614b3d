package dev.dvmm.boot.memory;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dvmm.boot.Layout;
import dev.dvmm.boot.TestMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

class SegmentGuestMemoryTest {

    @Test
    void valuesAreLittleEndian() {
        MemorySegment backing = Arena.ofAuto().allocate(4096);
        SegmentGuestMemory m = new SegmentGuestMemory(backing);
        m.putLong(8, 0x0102_0304_0506_0708L);
        assertEquals(0x08, backing.get(ValueLayout.JAVA_BYTE, 8));
        assertEquals(0x01, backing.get(ValueLayout.JAVA_BYTE, 15));
        assertEquals(0x0506_0708, m.getInt(8));
        assertEquals((short) 0x0708, m.getShort(8));
        m.putInt(100, 0xdead_beef);
        assertEquals((byte) 0xef, m.getByte(100));
        m.putShort(3, (short) 0xabcd); // unaligned is fine
        assertEquals((short) 0xabcd, m.getShort(3));
        assertEquals(0x0102_0304_0506_0708L, m.getLong(8));
    }

    @Test
    void bytesAndSegmentsRoundTrip() {
        SegmentGuestMemory m = TestMemory.allocate(8192);
        m.write(10, new byte[] {1, 2, 3, 4, 5}, 1, 3);
        assertArrayEquals(new byte[] {0, 2, 3, 4, 0}, m.read(9, 5));
        MemorySegment source = MemorySegment.ofArray(new byte[] {9, 8, 7, 6});
        m.write(4000, source, 2, 2);
        assertArrayEquals(new byte[] {7, 6}, m.read(4000, 2));
        m.fill(50, 10, (byte) 0x33);
        assertEquals(0x33, m.getByte(59));
        assertEquals(0, m.getByte(60));
        m.zero(50, 5);
        assertEquals(0, m.getByte(54));
        assertEquals(0x33, m.getByte(55));
    }

    @Test
    void accessesOutsideRamThrowWithTheRangeInTheMessage() {
        SegmentGuestMemory m = TestMemory.allocate(4096);
        GuestMemoryException e = assertThrows(GuestMemoryException.class, () -> m.putLong(4092, 1));
        assertTrue(e.getMessage().contains("0xffc"), e.getMessage());
        assertTrue(e.getMessage().contains("[0x0, 0x1000)"), e.getMessage());
        assertThrows(GuestMemoryException.class, () -> m.getByte(-1));
        assertThrows(GuestMemoryException.class, () -> m.read(4000, 200));
        assertThrows(GuestMemoryException.class, () -> m.fill(0, 4097, (byte) 1));
        assertThrows(GuestMemoryException.class, () -> m.write(Long.MAX_VALUE - 1, new byte[4]));
        assertThrows(GuestMemoryException.class, () -> m.write(0, new byte[4], 2, 3));
        assertThrows(GuestMemoryException.class, () -> m.write(0, MemorySegment.ofArray(new byte[4]), 1, 4));
        assertThrows(GuestMemoryException.class, () -> m.read(0, -1));
        assertEquals(0, m.getByte(4095));
    }

    @Test
    void ramBeyondTheMmioGapAppearsAbove4GiB() {
        long size = Layout.MMIO_GAP_START + 2 * Layout.PAGE_SIZE;
        SegmentGuestMemory m = TestMemory.sparse(size);
        assertEquals(size, m.size());
        assertTrue(m.contains(Layout.MMIO_GAP_START - 8, 8));
        assertFalse(m.contains(Layout.MMIO_GAP_START - 8, 16), "a range into the gap is not RAM");
        assertFalse(m.contains(Layout.IOAPIC, 4));
        assertTrue(m.contains(Layout.MMIO_GAP_END, 2 * Layout.PAGE_SIZE));
        assertFalse(m.contains(Layout.MMIO_GAP_END, 2 * Layout.PAGE_SIZE + 1));

        m.putLong(Layout.MMIO_GAP_END, 0x1122_3344_5566_7788L);
        m.putLong(Layout.MMIO_GAP_START - 8, 0x0aL);
        assertEquals(0x1122_3344_5566_7788L, m.getLong(Layout.MMIO_GAP_END));
        assertEquals(0x0aL, m.getLong(Layout.MMIO_GAP_START - 8), "the low and high ranges do not alias");
        assertThrows(GuestMemoryException.class, () -> m.getInt(Layout.LAPIC));
    }
}
