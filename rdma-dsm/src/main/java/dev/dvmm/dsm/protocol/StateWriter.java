package dev.dvmm.dsm.protocol;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;

/** A growable byte buffer for canonical state encodings (zigzag varints), reused across encodings. */
public final class StateWriter {
    private static final VarHandle LONGS = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

    private byte[] bytes = new byte[256];
    private int size;

    public void reset() {
        size = 0;
    }

    public void writeLong(long value) {
        long v = (value << 1) ^ (value >> 63);
        while ((v & ~0x7FL) != 0) {
            put((byte) ((v & 0x7F) | 0x80));
            v >>>= 7;
        }
        put((byte) v);
    }

    public void writeInt(int value) {
        writeLong(value);
    }

    public int size() {
        return size;
    }

    /** Copies the bytes written so far into {@code target} at {@code offset}. */
    public void copyTo(byte[] target, int offset) {
        System.arraycopy(bytes, 0, target, offset, size);
    }

    public byte[] toByteArray() {
        return Arrays.copyOf(bytes, size);
    }

    /** A 64-bit hash of the bytes written so far (eight bytes per step, then a final avalanche). */
    public long fingerprint() {
        long h = 0x9E3779B97F4A7C15L ^ size;
        int i = 0;
        for (; i + 8 <= size; i += 8) {
            h = Long.rotateLeft(h ^ mix((long) LONGS.get(bytes, i)), 27) * 0x9E3779B97F4A7C15L;
        }
        long tail = 0;
        for (; i < size; i++) {
            tail = tail << 8 | (bytes[i] & 0xFF);
        }
        return mix(h ^ mix(tail ^ 0x632BE59BD9B4E019L));
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    private void put(byte b) {
        if (size == bytes.length) {
            bytes = Arrays.copyOf(bytes, size * 2);
        }
        bytes[size++] = b;
    }
}
