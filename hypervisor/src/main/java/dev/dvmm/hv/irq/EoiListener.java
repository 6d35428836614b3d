package dev.dvmm.hv.irq;

/** Told when a LAPIC ends a level-triggered interrupt (the EOI broadcast IOAPICs use to clear remote IRR). */
@FunctionalInterface
public interface EoiListener {
    EoiListener NONE = vector -> { };

    void eoi(int vector);
}
