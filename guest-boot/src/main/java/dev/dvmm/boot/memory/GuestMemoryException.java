package dev.dvmm.boot.memory;

/** An access to guest physical memory that falls outside guest RAM, or has a negative length. */
public final class GuestMemoryException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public GuestMemoryException(String message) {
        super(message);
    }
}
