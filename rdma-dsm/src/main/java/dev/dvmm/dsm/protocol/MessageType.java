package dev.dvmm.dsm.protocol;

/** Wire message types of the page coherence protocol (see rdma-dsm/PROTOCOL.md). */
public final class MessageType {
    /** Requester to home: read miss. */
    public static final int READ_REQUEST = 1;
    /** Requester to home: write miss, or upgrade of a read-only copy. */
    public static final int WRITE_REQUEST = 2;
    /** Home to a read-only holder: drop your copy and acknowledge. */
    public static final int INVALIDATE = 3;
    /** Holder to home: copy dropped. */
    public static final int INVALIDATE_ACK = 4;
    /** Home to owner: send your copy to the requester, keep a read-only copy. */
    public static final int FORWARD_READ = 5;
    /** Home to owner: send your copy to the requester and drop yours. */
    public static final int FORWARD_WRITE = 6;
    /** Home to requester: never-written page, install zeros read-only. */
    public static final int GRANT_READ_ZERO = 7;
    /** Home to requester: never-written page, install zeros writable. */
    public static final int GRANT_WRITE_ZERO = 8;
    /** Home to requester: your read-only copy is current and now the only one; make it writable. */
    public static final int GRANT_UPGRADE = 9;
    /** Owner to requester, carries the page: install read-only. */
    public static final int DATA_READ = 10;
    /** Owner to requester, carries the page: install writable. */
    public static final int DATA_WRITE = 11;
    /** Requester to home: data installed, the transaction is over. */
    public static final int DONE = 12;
    /**
     * Home to requester: read the page (this version) straight from the memory of the node named in the requester
     * field, which holds a clean copy, then send DONE. Only with one-sided reads.
     */
    public static final int GRANT_READ_REMOTE = 13;

    static final int MAX = GRANT_READ_REMOTE;

    private static final String[] NAMES = {
        "?", "READ_REQUEST", "WRITE_REQUEST", "INVALIDATE", "INVALIDATE_ACK", "FORWARD_READ", "FORWARD_WRITE",
        "GRANT_READ_ZERO", "GRANT_WRITE_ZERO", "GRANT_UPGRADE", "DATA_READ", "DATA_WRITE", "DONE",
        "GRANT_READ_REMOTE"
    };

    private MessageType() {
    }

    public static boolean isValid(int type) {
        return type >= READ_REQUEST && type <= MAX;
    }

    /** Whether a message of this type carries the page's 4 KiB contents. */
    public static boolean carriesPage(int type) {
        return type == DATA_READ || type == DATA_WRITE;
    }

    /** Whether a message of this type may carry a count of invalidation acks for the writer to collect. */
    public static boolean carriesAckCount(int type) {
        return type == GRANT_WRITE_ZERO || type == GRANT_UPGRADE || type == FORWARD_WRITE || type == DATA_WRITE;
    }

    /** The type's name, or "unknown type N" (allocates only for unknown types). */
    public static String name(int type) {
        return isValid(type) ? NAMES[type] : "unknown type " + type;
    }
}
