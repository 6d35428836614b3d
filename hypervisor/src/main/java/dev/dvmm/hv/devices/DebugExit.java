package dev.dvmm.hv.devices;

import dev.dvmm.hv.bus.BusDevice;

/** Debug-exit port: a write stops the writing vCPU with the written value as its status. */
public final class DebugExit implements BusDevice {
    /** Told when a vCPU writes its exit status. */
    public interface Listener {
        void guestExit(int vcpu, int status);
    }

    private final Listener listener;

    public DebugExit(Listener listener) {
        this.listener = listener;
    }

    @Override
    public long read(int vcpu, long offset, int size) {
        return 0;
    }

    @Override
    public void write(int vcpu, long offset, int size, long value) {
        listener.guestExit(vcpu, (int) value);
    }
}
