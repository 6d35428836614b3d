package dev.dvmm.dsm.protocol;

/** Reads what a {@link StateWriter} wrote. */
public final class StateReader {
    private byte[] bytes;
    private int length;
    private int position;

    public StateReader(byte[] bytes) {
        reset(bytes, bytes.length);
    }

    /** Reads the first {@code newLength} bytes of {@code newBytes}. */
    public void reset(byte[] newBytes, int newLength) {
        if (newLength < 0 || newLength > newBytes.length) {
            throw new ProtocolException("state length " + newLength + " exceeds its buffer of " + newBytes.length);
        }
        bytes = newBytes;
        length = newLength;
        position = 0;
    }

    public long readLong() {
        long v = 0;
        int shift = 0;
        while (true) {
            if (position >= length) {
                throw new ProtocolException("state encoding ends inside a value at byte " + position);
            }
            byte b = bytes[position++];
            v |= (long) (b & 0x7F) << shift;
            if (b >= 0) {
                break;
            }
            shift += 7;
            if (shift > 63) {
                throw new ProtocolException("state encoding has an over-long value at byte " + position);
            }
        }
        return (v >>> 1) ^ -(v & 1);
    }

    public int readInt() {
        return (int) readLong();
    }

    public boolean atEnd() {
        return position == length;
    }
}
