package dev.dvmm.hv.devices;

/** An IRQ line that remembers its level and counts rising edges. */
public final class RecordingLine implements IrqLine {
    public boolean level;
    public int rises;
    public int changes;

    @Override
    public void set(boolean asserted) {
        if (asserted && !level) {
            rises++;
        }
        if (asserted != level) {
            changes++;
        }
        level = asserted;
    }
}
