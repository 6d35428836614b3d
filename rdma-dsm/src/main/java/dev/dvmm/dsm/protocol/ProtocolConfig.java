package dev.dvmm.dsm.protocol;

/**
 * Cluster-wide protocol parameters; every node must use the same values.
 *
 * @param nodeCount            nodes in the cluster, 1 to 64 (the copyset is a 64-bit bitmap)
 * @param pageCount            pages of guest memory, addressed by dense index 0..pageCount-1
 * @param stripePages          consecutive pages homed on the same node; home of page p is (p / stripePages) mod nodeCount
 * @param holdNanos            minimum time an acquired page is kept before it is yielded; 0 disables the guard
 * @param requestQueueCapacity requests a home can hold queued behind busy pages, over all its pages
 * @param oneSidedReads        a home that holds no copy of a clean page lets the requester read it from the owner's
 *                             memory (GRANT_READ_REMOTE) instead of asking the owner to send it: the owner's CPU does
 *                             nothing. Only for transports with one-sided reads (RDMA).
 */
public record ProtocolConfig(int nodeCount, int pageCount, int stripePages, long holdNanos, int requestQueueCapacity,
                             boolean oneSidedReads) {
    public static final int MAX_NODES = 64;

    public ProtocolConfig {
        if (nodeCount < 1 || nodeCount > MAX_NODES) {
            throw new ProtocolException("node count " + nodeCount + " is out of range 1.." + MAX_NODES);
        }
        if (pageCount < 1) {
            throw new ProtocolException("page count " + pageCount + " must be at least 1");
        }
        if (stripePages < 1) {
            throw new ProtocolException("stripe of " + stripePages + " pages must be at least 1");
        }
        if (holdNanos < 0) {
            throw new ProtocolException("hold time " + holdNanos + " ns must not be negative");
        }
        if (requestQueueCapacity < 1) {
            throw new ProtocolException("request queue capacity " + requestQueueCapacity + " must be at least 1");
        }
    }

    /** Without one-sided reads. */
    public ProtocolConfig(int nodeCount, int pageCount, int stripePages, long holdNanos, int requestQueueCapacity) {
        this(nodeCount, pageCount, stripePages, holdNanos, requestQueueCapacity, false);
    }

    public ProtocolConfig withOneSidedReads(boolean on) {
        return new ProtocolConfig(nodeCount, pageCount, stripePages, holdNanos, requestQueueCapacity, on);
    }

    /** The node that keeps the directory entry of {@code page}. */
    public int homeOf(int page) {
        return (page / stripePages) % nodeCount;
    }
}
