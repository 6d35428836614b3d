package dev.dvmm.hv.bus;

/** A device range that cannot be registered. */
public final class BusException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public BusException(String message) {
        super(message);
    }
}
