package dev.dvmm.dsm.protocol;

/** A protocol input that is impossible in the current state, out of range, or malformed; the engine's state is unchanged. */
public final class ProtocolException extends RuntimeException {
    public ProtocolException(String reason) {
        super(reason);
    }
}
