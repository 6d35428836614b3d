package dev.dvmm.boot.smp;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/** A little-endian byte buffer for building one firmware table, with the checksum rule they share. */
final class TableBuffer {
    private final ByteBuffer buffer;

    TableBuffer(int size) {
        buffer = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    }

    TableBuffer u8(int value) {
        buffer.put((byte) value);
        return this;
    }

    TableBuffer u16(int value) {
        buffer.putShort((short) value);
        return this;
    }

    TableBuffer u32(long value) {
        buffer.putInt((int) value);
        return this;
    }

    TableBuffer u64(long value) {
        buffer.putLong(value);
        return this;
    }

    /** Writes {@code text} as ASCII, space-padded (or cut) to exactly {@code width} bytes. */
    TableBuffer ascii(String text, int width) {
        byte[] b = text.getBytes(StandardCharsets.US_ASCII);
        for (int i = 0; i < width; i++) {
            buffer.put(i < b.length ? b[i] : (byte) ' ');
        }
        return this;
    }

    TableBuffer bytes(byte[] b) {
        buffer.put(b);
        return this;
    }

    TableBuffer zeros(int count) {
        for (int i = 0; i < count; i++) {
            buffer.put((byte) 0);
        }
        return this;
    }

    int position() {
        return buffer.position();
    }

    void put8(int offset, int value) {
        buffer.put(offset, (byte) value);
    }

    void put16(int offset, int value) {
        buffer.putShort(offset, (short) value);
    }

    void put32(int offset, long value) {
        buffer.putInt(offset, (int) value);
    }

    /** Stores at {@code at} the byte that makes {@code [from, from + length)} sum to zero mod 256. */
    void checksum(int from, int length, int at) {
        buffer.put(at, (byte) 0);
        buffer.put(at, (byte) -sum(buffer.array(), from, length));
    }

    byte[] array() {
        return buffer.array();
    }

    static int sum(byte[] bytes, int from, int length) {
        int s = 0;
        for (int i = from; i < from + length; i++) {
            s += bytes[i];
        }
        return s & 0xff;
    }
}
