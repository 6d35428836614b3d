package dev.dvmm.hv.lab;

/** A lab failure; the message is one readable sentence for the user. */
public final class LabException extends RuntimeException {
    public LabException(String message) {
        super(message);
    }

    public LabException(String message, Throwable cause) {
        super(message, cause);
    }
}
