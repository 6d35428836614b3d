package dev.dvmm.dsm.transport;

/** Learns when peers come up and go down. Called on the transport's receive thread; do not block. */
public interface PeerListener {

    /** Does nothing: for users that watch no peers. */
    PeerListener NONE = new PeerListener() {
        @Override
        public void onPeerDown(int peer, TransportException cause) {
        }
    };

    /** The authenticated connection to {@code peer} is established. */
    default void onPeerUp(int peer) {
    }

    /**
     * The connection to {@code peer} is lost for good; requests to it have already failed. A peer
     * that went down is never reconnected during this transport's life.
     */
    void onPeerDown(int peer, TransportException cause);
}
