package dev.dvmm.dsm.transport;

import java.time.Duration;
import java.util.function.Supplier;

/**
 * What every transport keeps about the link to one remote rank (its own per-peer state extends this), and the
 * wait until all links are up that {@link Transport#awaitConnected} promises.
 */
abstract class PeerLink {
    static final int NEW = 0;
    static final int UP = 1;
    static final int DOWN = 2;

    final int rank;
    volatile int state = NEW;
    volatile TransportException downCause;
    /** Why the last attempt to connect failed (for the timeout message), or null. */
    volatile String lastError;

    PeerLink(int rank) {
        this.rank = rank;
    }

    /**
     * Waits on {@code lifecycle}'s monitor (held by the caller, notified when a link changes) until every
     * non-null link is up. Throws {@code PEER_DIED} if one went down, what {@code closed} returns once the
     * transport is closed (it returns null while open), {@code PEER_UNREACHABLE} naming the missing ranks, and
     * {@code noLink} (e.g. "no UCX endpoint to"), after {@code timeout}.
     */
    static void awaitAll(Object lifecycle, PeerLink[] links, int self, Duration timeout, String noLink,
                         Supplier<TransportException> closed) throws TransportException {
        long deadline = System.nanoTime() + timeout.toNanos();
        for (;;) {
            TransportException closedNow = closed.get();
            if (closedNow != null) {
                throw closedNow;
            }
            StringBuilder missing = null;
            for (PeerLink link : links) {
                if (link == null) {
                    continue;
                }
                int state = link.state;
                if (state == DOWN) {
                    TransportException cause = link.downCause;
                    throw new TransportException(TransportException.Reason.PEER_DIED, link.rank,
                            "rank " + link.rank + " went down while connecting: " + cause.getMessage(), cause);
                }
                if (state == NEW) {
                    missing = missing == null ? new StringBuilder() : missing.append(", ");
                    missing.append(link.rank);
                    String error = link.lastError;
                    if (error != null) {
                        missing.append(" (").append(error).append(')');
                    }
                }
            }
            if (missing == null) {
                return;
            }
            long remaining = deadline - System.nanoTime();
            if (remaining <= 0) {
                throw new TransportException(TransportException.Reason.PEER_UNREACHABLE, -1, "rank " + self
                        + " has " + noLink + " rank(s) " + missing + " after " + timeout.toMillis() + " ms");
            }
            try {
                lifecycle.wait(Math.max(1, remaining / 1_000_000));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new TransportException(TransportException.Reason.INTERRUPTED, -1,
                        "interrupted while waiting for peers");
            }
        }
    }
}
