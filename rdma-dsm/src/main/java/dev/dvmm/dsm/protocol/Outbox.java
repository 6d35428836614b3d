package dev.dvmm.dsm.protocol;

/**
 * Where an engine puts the messages it sends to other nodes. Implementations copy the primitive fields (and, for
 * {@link #sendWithPage}, the page contents) before returning; the engine never sends to its own node.
 */
public interface Outbox {
    /** {@code acks}: invalidation acks the requester of a write collects itself (see MessageType.carriesAckCount). */
    void send(int dstNode, int type, int page, int requester, int version, int acks);

    /**
     * Like {@link #send}, and the message carries this node's current 4 KiB copy of {@code page}: read it before
     * returning, because the engine may invalidate or hand the page on right after this call.
     */
    void sendWithPage(int dstNode, int type, int page, int requester, int version, int acks);
}
