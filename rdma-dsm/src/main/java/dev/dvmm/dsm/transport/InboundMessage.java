package dev.dvmm.dsm.transport;

import java.lang.foreign.MemorySegment;

/**
 * Flyweight over a received frame: reads the header fields in place (see {@link FrameDescriptor})
 * from the transport's receive buffer, and points at the payload without copying it. One instance
 * per transport is rewrapped for every frame, so it is valid only during the handler call that
 * receives it; copy what you need (e.g. with {@link #copyPayloadTo}) before returning.
 */
public final class InboundMessage {
    private int peer;
    private MemorySegment header;
    private long headerOffset;
    private MemorySegment payload;
    private long payloadOffset;
    private int payloadLength;

    /**
     * Points this flyweight at a frame. For transport implementations: the header is the 56-byte
     * {@link FrameDescriptor} layout at {@code headerOffset}; the payload may live elsewhere.
     */
    public InboundMessage wrap(int peer, MemorySegment header, long headerOffset,
                               MemorySegment payload, long payloadOffset, int payloadLength) {
        this.peer = peer;
        this.header = header;
        this.headerOffset = headerOffset;
        this.payload = payload;
        this.payloadOffset = payloadOffset;
        this.payloadLength = payloadLength;
        return this;
    }

    /** Rank of the sender. */
    public int peer() {
        return peer;
    }

    public short type() {
        return FrameDescriptor.type(header, headerOffset);
    }

    public short flags() {
        return FrameDescriptor.flags(header, headerOffset);
    }

    /** Non-zero for requests and replies; pass it to {@link Transport#reply} to answer a request. */
    public long correlationId() {
        return FrameDescriptor.correlationId(header, headerOffset);
    }

    /** True if the sender waits for a {@link Transport#reply}. */
    public boolean isRequest() {
        return FrameDescriptor.kind(header, headerOffset) == FrameDescriptor.KIND_REQUEST;
    }

    public long arg0() {
        return FrameDescriptor.arg(header, headerOffset, 0);
    }

    public long arg1() {
        return FrameDescriptor.arg(header, headerOffset, 1);
    }

    public long arg2() {
        return FrameDescriptor.arg(header, headerOffset, 2);
    }

    public long arg3() {
        return FrameDescriptor.arg(header, headerOffset, 3);
    }

    /** The segment holding the payload (the whole receive buffer, not a slice: use the offset). */
    public MemorySegment payloadSegment() {
        return payload;
    }

    public long payloadOffset() {
        return payloadOffset;
    }

    public int payloadLength() {
        return payloadLength;
    }

    /** Copies the whole payload to {@code destination} at {@code destinationOffset}. Allocates nothing. */
    public void copyPayloadTo(MemorySegment destination, long destinationOffset) {
        MemorySegment.copy(payload, payloadOffset, destination, destinationOffset, payloadLength);
    }
}
