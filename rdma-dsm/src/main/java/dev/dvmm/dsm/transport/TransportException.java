package dev.dvmm.dsm.transport;

/** A transport operation failed; {@link #reason()} says why, the message says it in a sentence. */
public final class TransportException extends Exception {

    /** Why a transport operation failed. */
    public enum Reason {
        /** No connection to the peer could be established (refused, unreachable, not yet connected). */
        PEER_UNREACHABLE,
        /** The connection to the peer was lost after it had been established. */
        PEER_DIED,
        /** The peer sent bytes that are not a valid frame; the connection was dropped. */
        MALFORMED_FRAME,
        /** This transport is closed. */
        CLOSED,
        /** The peer failed the cluster-secret challenge or refused ours. */
        AUTHENTICATION_FAILED,
        /** No reply within the request's timeout, or the send could not drain in time. */
        TIMEOUT,
        /** All request slots are in use, or the send backlog to a peer is at its limit. */
        OVERLOADED,
        /** A reply payload does not fit the caller's reply buffer. */
        PAYLOAD_TOO_LARGE,
        /** The caller's reply buffer could not be written (e.g. its memory is closed or confined to one thread). */
        REPLY_BUFFER_UNUSABLE,
        /** The waiting thread was interrupted; its request was abandoned. */
        INTERRUPTED,
        /** The transport cannot do this (e.g. one-sided reads over TCP, or the peer exposed no memory). */
        UNSUPPORTED
    }

    private final Reason reason;
    private final int peer;

    public TransportException(Reason reason, int peer, String message) {
        super(message);
        this.reason = reason;
        this.peer = peer;
    }

    public TransportException(Reason reason, int peer, String message, Throwable cause) {
        super(message, cause);
        this.reason = reason;
        this.peer = peer;
    }

    public Reason reason() {
        return reason;
    }

    /** The peer rank concerned, or -1 when the failure is not about one peer. */
    public int peer() {
        return peer;
    }
}
