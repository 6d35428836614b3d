package dev.dvmm.hv.devices;

/**
 * An interrupt request wire from a device to an interrupt controller input.
 *
 * <p>{@code set(true)} means the device asserts its request; the controller decides what an edge or a
 * level means for it. Implementations must be safe to call from any thread and must not allocate.
 */
@FunctionalInterface
public interface IrqLine {
    /** A line connected to nothing. */
    IrqLine NONE = level -> { };

    void set(boolean asserted);

    /** A rising then falling edge: how an ISA device signals one event on an edge-triggered input. */
    default void pulse() {
        set(true);
        set(false);
    }
}
