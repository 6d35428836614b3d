package dev.dvmm.hv.vstate;

/** A KVM setup or run failure, with a sentence a user can act on. */
public class KvmException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public KvmException(String message) {
        super(message);
    }

    public KvmException(String message, Throwable cause) {
        super(message, cause);
    }
}
