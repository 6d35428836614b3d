package dev.dvmm.dsm.protocol;

/** A node's local state of one page: stable states and the transient states of its own outstanding request. */
public final class PageState {
    /** No copy; any access faults. */
    public static final byte INVALID = 0;
    /** Read-only copy (write-protected). */
    public static final byte SHARED = 1;
    /** The only copy, writable. */
    public static final byte MODIFIED = 2;
    /** No copy, read request outstanding. */
    public static final byte READ_PENDING = 3;
    /** No copy, write request outstanding. */
    public static final byte WRITE_PENDING = 4;
    /** Read-only copy, write request (upgrade) outstanding. */
    public static final byte UPGRADE_PENDING = 5;
    /** No copy, read granted: a one-sided read of the page from another node's memory is in flight. */
    public static final byte READ_FETCHING = 6;
    /** Write granted with a read-only current copy; invalidation acks of other sharers still to come. */
    public static final byte ACKS_PENDING = 7;

    private static final String[] NAMES = {
        "INVALID", "SHARED", "MODIFIED", "READ_PENDING", "WRITE_PENDING", "UPGRADE_PENDING", "READ_FETCHING",
        "ACKS_PENDING"
    };

    private PageState() {
    }

    public static String name(int state) {
        return state >= 0 && state < NAMES.length ? NAMES[state] : "unknown state " + state;
    }

    /** Whether a node in this state holds a valid (at least readable) copy. */
    public static boolean holdsCopy(int state) {
        return state == SHARED || state == MODIFIED || state == UPGRADE_PENDING || state == ACKS_PENDING;
    }
}
