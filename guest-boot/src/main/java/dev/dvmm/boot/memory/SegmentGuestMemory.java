package dev.dvmm.boot.memory;

import dev.dvmm.boot.Layout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Guest RAM held in one {@link MemorySegment} (the hypervisor's memfd mapping, or a test buffer).
 * The segment holds RAM in order: segment offset {@code o < Layout.MMIO_GAP_START} is guest
 * physical address {@code o}; the rest, if any, is guest RAM from 4 GiB up, as {@link Layout}
 * places it, so the hypervisor registers the same two ranges as memslots.
 */
public final class SegmentGuestMemory implements GuestPhysicalMemory {
    private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final MemorySegment ram;
    private final long lowEnd;
    private final long highEnd;

    /** Wraps {@code ram}; its byte size is the guest's RAM size. */
    public SegmentGuestMemory(MemorySegment ram) {
        this.ram = ram;
        this.lowEnd = Layout.lowRamEnd(ram.byteSize());
        this.highEnd = Layout.MMIO_GAP_END + Layout.highRamSize(ram.byteSize());
    }

    @Override
    public long size() {
        return ram.byteSize();
    }

    @Override
    public boolean contains(long address, long length) {
        if (address < 0 || length < 0 || address > Long.MAX_VALUE - length) {
            return false;
        }
        long end = address + length;
        if (end <= lowEnd) {
            return true;
        }
        return address >= Layout.MMIO_GAP_END && end <= highEnd;
    }

    /** Segment offset of {@code [address, address + length)}, after checking it is all RAM. */
    private long offset(long address, long length) {
        if (!contains(address, length)) {
            throw new GuestMemoryException(describe(address, length));
        }
        return address < lowEnd || length == 0 && address == lowEnd
                ? address
                : address - Layout.MMIO_GAP_END + lowEnd;
    }

    private String describe(long address, long length) {
        String ranges = highEnd > Layout.MMIO_GAP_END
                ? String.format("[0x0, 0x%x) and [0x%x, 0x%x)", lowEnd, Layout.MMIO_GAP_END, highEnd)
                : String.format("[0x0, 0x%x)", lowEnd);
        if (length < 0) {
            return String.format("guest memory access at 0x%x has a negative length %d", address, length);
        }
        return String.format("guest physical range [0x%x, +0x%x) is not all RAM; RAM is %s", address, length, ranges);
    }

    @Override
    public void write(long address, byte[] source, int offset, int length) {
        checkArray(source.length, offset, length);
        MemorySegment.copy(source, offset, ram, ValueLayout.JAVA_BYTE, offset(address, length), length);
    }

    @Override
    public void write(long address, MemorySegment source, long offset, long length) {
        if (offset < 0 || length < 0 || offset > source.byteSize() - length) {
            throw new GuestMemoryException(String.format(
                    "source range [0x%x, +0x%x) is outside its %d-byte segment", offset, length, source.byteSize()));
        }
        MemorySegment.copy(source, offset, ram, offset(address, length), length);
    }

    @Override
    public void read(long address, byte[] target, int offset, int length) {
        checkArray(target.length, offset, length);
        MemorySegment.copy(ram, ValueLayout.JAVA_BYTE, offset(address, length), target, offset, length);
    }

    private static void checkArray(int arrayLength, int offset, int length) {
        if (offset < 0 || length < 0 || offset > arrayLength - length) {
            throw new GuestMemoryException(String.format(
                    "array range [%d, +%d) is outside its %d-byte array", offset, length, arrayLength));
        }
    }

    @Override
    public void fill(long address, long length, byte value) {
        ram.asSlice(offset(address, length), length).fill(value);
    }

    @Override
    public byte getByte(long address) {
        return ram.get(ValueLayout.JAVA_BYTE, offset(address, 1));
    }

    @Override
    public void putByte(long address, byte value) {
        ram.set(ValueLayout.JAVA_BYTE, offset(address, 1), value);
    }

    @Override
    public short getShort(long address) {
        return ram.get(SHORT, offset(address, 2));
    }

    @Override
    public void putShort(long address, short value) {
        ram.set(SHORT, offset(address, 2), value);
    }

    @Override
    public int getInt(long address) {
        return ram.get(INT, offset(address, 4));
    }

    @Override
    public void putInt(long address, int value) {
        ram.set(INT, offset(address, 4), value);
    }

    @Override
    public long getLong(long address) {
        return ram.get(LONG, offset(address, 8));
    }

    @Override
    public void putLong(long address, long value) {
        ram.set(LONG, offset(address, 8), value);
    }
}
