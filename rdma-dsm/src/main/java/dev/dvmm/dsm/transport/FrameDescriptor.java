package dev.dvmm.dsm.transport;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Layout of the fixed 56-byte frame header that precedes every message on the wire (and that a
 * UCX transport carries as its active-message header). All fields are little-endian.
 *
 * <pre>
 *  offset size field
 *   0     4    magic            0x464D5644, the bytes "DVMF"
 *   4     1    version          {@link #VERSION}
 *   5     1    kind             message, request, reply or handshake
 *   6     2    type             protocol message type, chosen by the layer above
 *   8     2    flags            protocol flags, opaque to the transport
 *  10     2    reserved         must be zero
 *  12     4    payload length   bytes that follow the header, 0..max payload
 *  16     8    correlation id   non-zero for requests and replies, zero otherwise
 *  24     8    arg0             four argument words for the protocol above
 *  32     8    arg1
 *  40     8    arg2
 *  48     8    arg3
 * </pre>
 */
public final class FrameDescriptor {
    public static final int MAGIC = 0x464D5644;
    public static final byte VERSION = 1;
    public static final int HEADER_LENGTH = 56;

    public static final int MAGIC_OFFSET = 0;
    public static final int VERSION_OFFSET = 4;
    public static final int KIND_OFFSET = 5;
    public static final int TYPE_OFFSET = 6;
    public static final int FLAGS_OFFSET = 8;
    public static final int RESERVED_OFFSET = 10;
    public static final int PAYLOAD_LENGTH_OFFSET = 12;
    public static final int CORRELATION_ID_OFFSET = 16;
    public static final int ARG0_OFFSET = 24;
    public static final int ARG1_OFFSET = 32;
    public static final int ARG2_OFFSET = 40;
    public static final int ARG3_OFFSET = 48;

    /** One-way message: no reply expected, correlation id zero. */
    public static final byte KIND_MESSAGE = 1;
    /** Request: the receiver answers with a reply carrying the same correlation id. */
    public static final byte KIND_REQUEST = 2;
    /** Reply to a request. */
    public static final byte KIND_REPLY = 3;
    /** Connection setup (authentication); never delivered to handlers. */
    public static final byte KIND_HANDSHAKE = 4;

    /** Result codes of {@link #check}; zero means the header is acceptable. */
    public static final int OK = 0;
    public static final int BAD_MAGIC = 1;
    public static final int BAD_VERSION = 2;
    public static final int BAD_KIND = 3;
    public static final int BAD_RESERVED = 4;
    public static final int BAD_LENGTH = 5;
    public static final int BAD_CORRELATION = 6;

    static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private FrameDescriptor() {
    }

    /**
     * Checks the header at {@code offset}: magic, version, kind, reserved bits, the payload length
     * against {@code maxPayload}, and that the correlation id agrees with the kind. Allocates nothing.
     */
    public static int check(MemorySegment frame, long offset, int maxPayload) {
        if (frame.get(INT, offset + MAGIC_OFFSET) != MAGIC) {
            return BAD_MAGIC;
        }
        if (frame.get(ValueLayout.JAVA_BYTE, offset + VERSION_OFFSET) != VERSION) {
            return BAD_VERSION;
        }
        byte kind = frame.get(ValueLayout.JAVA_BYTE, offset + KIND_OFFSET);
        if (kind < KIND_MESSAGE || kind > KIND_HANDSHAKE) {
            return BAD_KIND;
        }
        if (frame.get(SHORT, offset + RESERVED_OFFSET) != 0) {
            return BAD_RESERVED;
        }
        int length = frame.get(INT, offset + PAYLOAD_LENGTH_OFFSET);
        if (length < 0 || length > maxPayload) {
            return BAD_LENGTH;
        }
        long correlationId = frame.get(LONG, offset + CORRELATION_ID_OFFSET);
        boolean correlated = kind == KIND_REQUEST || kind == KIND_REPLY;
        if (correlated != (correlationId != 0)) {
            return BAD_CORRELATION;
        }
        return OK;
    }

    /** A readable sentence for a {@link #check} result, for the one log line of a rejected frame. */
    public static String describe(int checkResult, MemorySegment frame, long offset, int maxPayload) {
        return switch (checkResult) {
            case OK -> "valid header";
            case BAD_MAGIC -> "bad frame magic 0x" + Integer.toHexString(frame.get(INT, offset + MAGIC_OFFSET))
                    + " (expected 0x" + Integer.toHexString(MAGIC) + ")";
            case BAD_VERSION -> "unsupported frame version " + frame.get(ValueLayout.JAVA_BYTE, offset + VERSION_OFFSET)
                    + " (expected " + VERSION + ")";
            case BAD_KIND -> "unknown frame kind " + frame.get(ValueLayout.JAVA_BYTE, offset + KIND_OFFSET);
            case BAD_RESERVED -> "non-zero reserved header bits";
            case BAD_LENGTH -> "payload length " + Integer.toUnsignedString(frame.get(INT, offset + PAYLOAD_LENGTH_OFFSET))
                    + " outside 0.." + maxPayload;
            case BAD_CORRELATION -> "correlation id " + frame.get(LONG, offset + CORRELATION_ID_OFFSET)
                    + " does not fit frame kind " + frame.get(ValueLayout.JAVA_BYTE, offset + KIND_OFFSET);
            default -> "unknown check result " + checkResult;
        };
    }

    /** Writes a complete header. Allocates nothing. */
    public static void encode(MemorySegment frame, long offset, byte kind, short type, short flags, int payloadLength,
                              long correlationId, long arg0, long arg1, long arg2, long arg3) {
        frame.set(INT, offset + MAGIC_OFFSET, MAGIC);
        frame.set(ValueLayout.JAVA_BYTE, offset + VERSION_OFFSET, VERSION);
        frame.set(ValueLayout.JAVA_BYTE, offset + KIND_OFFSET, kind);
        frame.set(SHORT, offset + TYPE_OFFSET, type);
        frame.set(SHORT, offset + FLAGS_OFFSET, flags);
        frame.set(SHORT, offset + RESERVED_OFFSET, (short) 0);
        frame.set(INT, offset + PAYLOAD_LENGTH_OFFSET, payloadLength);
        frame.set(LONG, offset + CORRELATION_ID_OFFSET, correlationId);
        frame.set(LONG, offset + ARG0_OFFSET, arg0);
        frame.set(LONG, offset + ARG1_OFFSET, arg1);
        frame.set(LONG, offset + ARG2_OFFSET, arg2);
        frame.set(LONG, offset + ARG3_OFFSET, arg3);
    }

    public static byte kind(MemorySegment frame, long offset) {
        return frame.get(ValueLayout.JAVA_BYTE, offset + KIND_OFFSET);
    }

    public static short type(MemorySegment frame, long offset) {
        return frame.get(SHORT, offset + TYPE_OFFSET);
    }

    public static short flags(MemorySegment frame, long offset) {
        return frame.get(SHORT, offset + FLAGS_OFFSET);
    }

    public static int payloadLength(MemorySegment frame, long offset) {
        return frame.get(INT, offset + PAYLOAD_LENGTH_OFFSET);
    }

    public static long correlationId(MemorySegment frame, long offset) {
        return frame.get(LONG, offset + CORRELATION_ID_OFFSET);
    }

    public static long arg(MemorySegment frame, long offset, int index) {
        return frame.get(LONG, offset + ARG0_OFFSET + 8L * index);
    }
}
