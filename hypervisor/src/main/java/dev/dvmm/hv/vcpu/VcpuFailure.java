package dev.dvmm.hv.vcpu;

import dev.dvmm.hv.vstate.KvmException;

/** A vCPU stopped by something the VMM cannot continue from; carries a register dump. */
public final class VcpuFailure extends KvmException {
    private static final long serialVersionUID = 1L;
    private final int vcpu;
    private final String dump;

    public VcpuFailure(int vcpu, String reason, String dump) {
        super("vCPU " + vcpu + ": " + reason);
        this.vcpu = vcpu;
        this.dump = dump;
    }

    public int vcpu() { return vcpu; }

    /** The reason, then the dump on the following lines. */
    public String report() {
        return dump.isEmpty() ? getMessage() : getMessage() + System.lineSeparator() + dump;
    }

    @Override
    public String toString() {
        return report();
    }

    /** Registers, segments and the instruction bytes at RIP, when they could be read. */
    public String dump() { return dump; }
}
