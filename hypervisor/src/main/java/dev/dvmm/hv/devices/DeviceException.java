package dev.dvmm.hv.devices;

/** A device model that cannot be built as asked (bad port, pin, size or parameter). */
public final class DeviceException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public DeviceException(String message) {
        super(message);
    }
}
