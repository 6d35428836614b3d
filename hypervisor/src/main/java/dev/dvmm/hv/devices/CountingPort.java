package dev.dvmm.hv.devices;

import dev.dvmm.hv.bus.BusDevice;

/** Counts accesses and does nothing else: the target of the exit benchmark. */
public final class CountingPort implements BusDevice {
    private volatile long writes;

    @Override
    public long read(int vcpu, long offset, int size) {
        return 0;
    }

    @Override
    public void write(int vcpu, long offset, int size, long value) {
        writes++;
    }

    public long writes() { return writes; }
}
