package dev.dvmm.hv.devices;

/** A monotonic time source in nanoseconds, injected into time-keeping devices so tests control time. */
@FunctionalInterface
public interface NanoClock {
    /** The host's monotonic clock. */
    NanoClock SYSTEM = System::nanoTime;

    long nanoTime();
}
