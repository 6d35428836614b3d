package dev.dvmm.hv.devices;

/**
 * Host timers for device models (PIT, LAPIC timer, RTC): the VMM provides one service, devices create
 * their timers once at construction and re-arm them as the guest programs them.
 */
public interface TimerService {
    /** The clock deadlines are expressed in. */
    NanoClock clock();

    /** A new disarmed timer that runs {@code onExpiry} when it fires. */
    DeviceTimer newTimer(String name, Runnable onExpiry);
}
