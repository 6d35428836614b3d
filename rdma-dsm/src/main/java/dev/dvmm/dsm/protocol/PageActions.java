package dev.dvmm.dsm.protocol;

/**
 * What the engine asks of the node's memory (userfaultfd and memfd in the runtime). Every call completes before it
 * returns; none may call back into the engine.
 */
public interface PageActions {
    /** Map a zero page (the page was never written anywhere); read-only unless {@code writable}. */
    void installZero(int page, boolean writable);

    /** Map the 4 KiB carried by the message being handled right now; read-only unless {@code writable}. */
    void installFromMessage(int page, boolean writable);

    /**
     * Start a one-sided read of {@code page} from {@code source}'s memory (which holds a clean copy until this node's
     * DONE); when it has finished, the runtime calls {@link ProtocolEngine#onRemoteReadDone}. Must not wait for it.
     */
    void readRemote(int page, int source);

    /** Map the 4 KiB that the finished one-sided read of {@code page} fetched, read-only. */
    void installFromRemoteRead(int page);

    /** A read-only copy becomes writable (clear write protection). */
    void makeWritable(int page);

    /** A writable copy becomes read-only (set write protection). */
    void makeReadOnly(int page);

    /** Drop the local copy (punch a hole) so the next access faults. */
    void invalidate(int page);

    /** The fault on {@code page} is resolved: wake the vCPUs waiting on it (they retry the access). */
    void faultResolved(int page);
}
