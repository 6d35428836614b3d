package dev.dvmm.boot.memory;

import java.lang.foreign.MemorySegment;

/**
 * Guest RAM as the loaders see it: byte-addressed by guest physical address, little-endian, every
 * access bounds-checked against the RAM that exists (an access outside it, or straddling the MMIO
 * gap, throws {@link GuestMemoryException}). This is the only way the boot code touches the guest,
 * so it works the same over a hypervisor's memfd mapping, a DSM alias mapping or a test buffer.
 */
public interface GuestPhysicalMemory {

    /** Bytes of RAM, however it is split around the MMIO gap (see {@code Layout}). */
    long size();

    /** Whether {@code [address, address + length)} is RAM that this memory holds. */
    boolean contains(long address, long length);

    /** Copies {@code length} bytes of {@code source} from {@code offset} to {@code address}. */
    void write(long address, byte[] source, int offset, int length);

    /** Copies all of {@code source} to {@code address}. */
    default void write(long address, byte[] source) {
        write(address, source, 0, source.length);
    }

    /** Copies {@code length} bytes of {@code source} from {@code offset} to {@code address}. */
    void write(long address, MemorySegment source, long offset, long length);

    /** Copies {@code length} bytes at {@code address} into {@code target} at {@code offset}. */
    void read(long address, byte[] target, int offset, int length);

    /** Returns a copy of {@code length} bytes at {@code address}. */
    default byte[] read(long address, int length) {
        if (length < 0) {
            throw new GuestMemoryException("cannot read a negative length (" + length + ") of guest memory");
        }
        byte[] bytes = new byte[length];
        read(address, bytes, 0, length);
        return bytes;
    }

    /** Sets {@code length} bytes at {@code address} to {@code value}. */
    void fill(long address, long length, byte value);

    /** Sets {@code length} bytes at {@code address} to zero. */
    default void zero(long address, long length) {
        fill(address, length, (byte) 0);
    }

    byte getByte(long address);

    void putByte(long address, byte value);

    /** Little-endian 16-bit value. */
    short getShort(long address);

    /** Little-endian 16-bit value. */
    void putShort(long address, short value);

    /** Little-endian 32-bit value. */
    int getInt(long address);

    /** Little-endian 32-bit value. */
    void putInt(long address, int value);

    /** Little-endian 64-bit value. */
    long getLong(long address);

    /** Little-endian 64-bit value. */
    void putLong(long address, long value);
}
