package dev.dvmm.dsm.transport;

import java.lang.foreign.MemorySegment;

/**
 * Where a blocking {@link Transport#request} puts its reply: the header fields, and the payload
 * copied into a caller-chosen window (e.g. the page frame in the guest-memory alias mapping that
 * the fetched page belongs in). Reused across requests by one thread; not thread-safe.
 */
public final class ReplyBuffer {
    private MemorySegment target;
    private long targetOffset;
    private int capacity;

    private int peer;
    private short type;
    private short flags;
    private long arg0;
    private long arg1;
    private long arg2;
    private long arg3;
    private int payloadLength;

    /** A reply buffer that accepts header-only replies until {@link #target} is set. */
    public ReplyBuffer() {
        this.target = MemorySegment.NULL;
    }

    /** A reply buffer whose payload goes to {@code [offset, offset + capacity)} of {@code segment}. */
    public ReplyBuffer(MemorySegment segment, long offset, int capacity) {
        target(segment, offset, capacity);
    }

    /** Redirects the next reply's payload; a larger reply fails with {@code PAYLOAD_TOO_LARGE}. */
    public ReplyBuffer target(MemorySegment segment, long offset, int capacity) {
        if (capacity < 0 || offset < 0 || offset > segment.byteSize() - capacity) {
            throw new IndexOutOfBoundsException("reply window offset " + offset + " capacity " + capacity
                    + " is outside a segment of " + segment.byteSize() + " bytes");
        }
        this.target = segment;
        this.targetOffset = offset;
        this.capacity = capacity;
        return this;
    }

    /** Fills this buffer from a reply; false (and nothing copied) if the payload does not fit. */
    boolean fill(InboundMessage reply) {
        int length = reply.payloadLength();
        if (length > capacity) {
            payloadLength = length;
            return false;
        }
        peer = reply.peer();
        type = reply.type();
        flags = reply.flags();
        arg0 = reply.arg0();
        arg1 = reply.arg1();
        arg2 = reply.arg2();
        arg3 = reply.arg3();
        payloadLength = length;
        if (length > 0) {
            reply.copyPayloadTo(target, targetOffset);
        }
        return true;
    }

    int capacity() {
        return capacity;
    }

    public int peer() {
        return peer;
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

    /** Bytes of payload the last reply carried, now at {@link #targetOffset()} of {@link #targetSegment()}. */
    public int payloadLength() {
        return payloadLength;
    }

    public MemorySegment targetSegment() {
        return target;
    }

    public long targetOffset() {
        return targetOffset;
    }
}
