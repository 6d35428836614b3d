package dev.dvmm.dsm.transport;

/**
 * Completion of a one-sided read started with {@link Transport#readRemote}. Called exactly once per read, on the
 * transport's receive thread (or on the thread that closes the transport). {@code token} is the caller's context
 * given with the read, so one preallocated handler serves every read without a capturing lambda.
 */
public interface RemoteReadHandler {

    /**
     * The read finished: {@code failure} is null when the destination now holds the peer's bytes, else why it failed
     * (peer died, transport closed); the destination's contents are then undefined.
     */
    void onRemoteRead(int peer, long token, TransportException failure);
}
