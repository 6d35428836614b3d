package dev.dvmm.hv.devices;

/**
 * A one-shot host timer owned by one device. Arming replaces any earlier deadline; the expiry action
 * runs on the timer service's thread, at most once per arming. Arming and cancelling allocate nothing.
 */
public interface DeviceTimer {
    /** Fires the expiry action once the service's clock reaches {@code deadlineNanos} (same clock as the device's). */
    void arm(long deadlineNanos);

    /** Drops the pending deadline, if any; an expiry already running is not stopped. */
    void cancel();
}
