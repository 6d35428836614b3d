package dev.dvmm.dsm.transport;

import java.lang.foreign.MemorySegment;

/**
 * A message to send, filled by the caller and reused: one instance per sending thread, set its
 * fields, pass it to {@link Transport#send}, {@link Transport#request} or {@link Transport#reply}.
 * The transport reads it only during that call and never keeps it, so sending allocates nothing.
 * Not thread-safe.
 *
 * <p>The payload is a window {@code (segment, offset, length)} of memory the caller owns, e.g. a
 * page of the guest-memory alias mapping; it goes to the wire without an intermediate copy on the
 * fast path. For the transport to reuse its buffer view, pass the same (whole) segment with an
 * offset rather than a fresh {@code asSlice} per message.
 */
public final class OutboundMessage {
    private short type;
    private short flags;
    private long arg0;
    private long arg1;
    private long arg2;
    private long arg3;
    private MemorySegment payload;
    private long payloadOffset;
    private int payloadLength;

    /** Resets every field to zero and drops the payload. */
    public OutboundMessage clear() {
        type = 0;
        flags = 0;
        arg0 = 0;
        arg1 = 0;
        arg2 = 0;
        arg3 = 0;
        return noPayload();
    }

    public OutboundMessage type(short type) {
        this.type = type;
        return this;
    }

    public OutboundMessage flags(short flags) {
        this.flags = flags;
        return this;
    }

    public OutboundMessage arg0(long value) {
        this.arg0 = value;
        return this;
    }

    public OutboundMessage arg1(long value) {
        this.arg1 = value;
        return this;
    }

    public OutboundMessage arg2(long value) {
        this.arg2 = value;
        return this;
    }

    public OutboundMessage arg3(long value) {
        this.arg3 = value;
        return this;
    }

    /** Attaches {@code length} bytes of {@code segment} starting at {@code offset}; checked here. */
    public OutboundMessage payload(MemorySegment segment, long offset, int length) {
        if (length < 0 || offset < 0 || offset > segment.byteSize() - length) {
            throw new IndexOutOfBoundsException("payload window offset " + offset + " length " + length
                    + " is outside a segment of " + segment.byteSize() + " bytes");
        }
        this.payload = segment;
        this.payloadOffset = offset;
        this.payloadLength = length;
        return this;
    }

    public OutboundMessage noPayload() {
        this.payload = null;
        this.payloadOffset = 0;
        this.payloadLength = 0;
        return this;
    }

    public short type() {
        return type;
    }

    public short flags() {
        return flags;
    }

    public long arg0() {
        return arg0;
    }

    public long arg1() {
        return arg1;
    }

    public long arg2() {
        return arg2;
    }

    public long arg3() {
        return arg3;
    }

    /** The payload segment, or null without payload. */
    public MemorySegment payloadSegment() {
        return payload;
    }

    public long payloadOffset() {
        return payloadOffset;
    }

    public int payloadLength() {
        return payloadLength;
    }
}
