package dev.dvmm.hv.irq;

import dev.dvmm.hv.bus.BusDevice;

/**
 * The xAPIC register page at 0xFEE00000 as one MMIO device: every vCPU sees its own LAPIC at the same
 * address, so accesses go to the LAPIC of the accessing vCPU index. Indexes without a LAPIC on this node
 * read as zero and ignore writes (they cannot happen: a vCPU runs where its LAPIC lives).
 */
public final class LapicPage implements BusDevice {
    private final Lapic[] byVcpu;

    /** @param byVcpu LAPICs indexed by vCPU index; null where the vCPU lives on another node */
    public LapicPage(Lapic[] byVcpu) {
        this.byVcpu = byVcpu.clone();
    }

    @Override
    public long read(int vcpu, long offset, int size) {
        Lapic l = vcpu >= 0 && vcpu < byVcpu.length ? byVcpu[vcpu] : null;
        return l == null ? 0 : l.read(vcpu, offset, size);
    }

    @Override
    public void write(int vcpu, long offset, int size, long value) {
        Lapic l = vcpu >= 0 && vcpu < byVcpu.length ? byVcpu[vcpu] : null;
        if (l != null) {
            l.write(vcpu, offset, size, value);
        }
    }
}
