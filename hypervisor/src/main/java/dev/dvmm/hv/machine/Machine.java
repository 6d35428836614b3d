package dev.dvmm.hv.machine;

import dev.dvmm.hv.arch.Cpuid;
import dev.dvmm.hv.bus.IoBus;
import dev.dvmm.hv.vcpu.VcpuFailure;
import dev.dvmm.hv.vcpu.VcpuRunner;
import dev.dvmm.hv.vstate.GuestMemory;
import dev.dvmm.hv.vstate.Kvm;
import dev.dvmm.hv.vstate.KvmException;
import dev.dvmm.hv.vstate.Vcpu;
import dev.dvmm.hv.vstate.Vm;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * One node's VM: KVM handles, guest memory, the two buses and a runner per vCPU. Built in one place,
 * torn down in reverse order by {@link #close()}.
 */
public final class Machine implements AutoCloseable {
    private final Kvm kvm;
    private final Vm vm;
    private final GuestMemory memory;
    private final IoBus pio = new IoBus("port I/O");
    private final IoBus mmio = new IoBus("MMIO");
    private final List<VcpuRunner> runners = new ArrayList<>();
    private VcpuRunner[] byIndex = new VcpuRunner[0];
    private final Arena arena = Arena.ofShared();

    private Machine(Kvm kvm, Vm vm, GuestMemory memory) {
        this.kvm = kvm;
        this.vm = vm;
        this.memory = memory;
    }

    /** Opens KVM, creates the VM with {@code memoryBytes} of RAM and {@code vcpus} vCPUs. */
    public static Machine create(int vcpus, long memoryBytes) {
        if (vcpus < 1 || vcpus > 254) {
            throw new KvmException("vCPU count must be between 1 and 254 (xAPIC ids), got " + vcpus);
        }
        int[] all = new int[vcpus];
        for (int i = 0; i < vcpus; i++) {
            all[i] = i;
        }
        return create(all, memoryBytes);
    }

    /**
     * A VM holding only the vCPUs {@code vcpuIndices} of a larger guest (one node of a cluster): each
     * keeps its global index as KVM vCPU id and APIC id.
     */
    public static Machine create(int[] vcpuIndices, long memoryBytes) {
        if (vcpuIndices.length == 0) {
            throw new KvmException("a node needs at least one vCPU");
        }
        for (int v : vcpuIndices) {
            if (v < 0 || v > 253) {
                throw new KvmException("vCPU index " + v + " is outside 0..253 (xAPIC ids)");
            }
        }
        GuestMemory.validateSize(memoryBytes);
        Kvm kvm = Kvm.open();
        Vm vm = null;
        GuestMemory mem = null;
        try {
            vm = kvm.createVm();
            mem = GuestMemory.create(memoryBytes, "dvmm-guest-ram");
            vm.mapMemory(mem);
            Machine m = new Machine(kvm, vm, mem);
            MemorySegment supported = kvm.supportedCpuid(m.arena);
            int max = 0;
            for (int i : vcpuIndices) {
                max = Math.max(max, i);
            }
            m.byIndex = new VcpuRunner[max + 1];
            for (int i : vcpuIndices) {
                if (m.byIndex[i] != null) {
                    throw new KvmException("vCPU " + i + " listed twice");
                }
                Vcpu v = vm.createVcpu(i);
                v.setCpuid(Cpuid.forVcpu(supported, i, m.arena));
                VcpuRunner r = new VcpuRunner(v, mem, m.pio, m.mmio);
                m.runners.add(r);
                m.byIndex[i] = r;
            }
            return m;
        } catch (RuntimeException e) {
            if (mem != null) {
                mem.close();
            }
            if (vm != null) {
                vm.close();
            }
            kvm.close();
            throw e;
        }
    }

    public Kvm kvm() { return kvm; }

    public Vm vm() { return vm; }

    public GuestMemory memory() { return memory; }

    public IoBus pio() { return pio; }

    public IoBus mmio() { return mmio; }

    public List<VcpuRunner> runners() { return List.copyOf(runners); }

    /** The runner of the vCPU with global index {@code vcpu} (must live on this machine). */
    public VcpuRunner runner(int vcpu) {
        VcpuRunner r = vcpu >= 0 && vcpu < byIndex.length ? byIndex[vcpu] : null;
        if (r == null) {
            throw new KvmException("vCPU " + vcpu + " does not run on this node");
        }
        return r;
    }

    public void start() {
        for (VcpuRunner r : runners) {
            r.start();
        }
    }

    /**
     * Waits until every vCPU has stopped. On a vCPU failure the others are stopped and the failure is
     * thrown; on timeout every vCPU is stopped and a KvmException says which were still running.
     */
    public int[] awaitCompletion(Duration timeout) throws InterruptedException {
        return awaitCompletion(timeout, null);
    }

    /** As {@link #awaitCompletion(Duration)}, calling {@code tick} (if not null) about every 100 ms meanwhile. */
    public int[] awaitCompletion(Duration timeout, Runnable tick) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        long nextTick = System.nanoTime();
        for (VcpuRunner r : runners) {
            while (!r.awaitStop(10, TimeUnit.MILLISECONDS)) {
                if (tick != null && System.nanoTime() - nextTick >= 0) {
                    nextTick = System.nanoTime() + 100_000_000L;
                    tick.run();
                }
                VcpuFailure f = firstFailure();
                if (f != null) {
                    stopAll(-1);
                    throw f;
                }
                if (System.nanoTime() > deadline) {
                    List<Integer> running = new ArrayList<>();
                    for (VcpuRunner x : runners) {
                        if (x.state() != VcpuRunner.State.STOPPED) {
                            running.add(x.vcpu().index());
                        }
                    }
                    stopAll(-1);
                    throw new KvmException("guest did not finish within " + timeout.toMillis() + " ms; vCPUs still "
                            + "running: " + running);
                }
            }
        }
        VcpuFailure f = firstFailure();
        if (f != null) {
            throw f;
        }
        int[] status = new int[runners.size()];
        for (int i = 0; i < status.length; i++) {
            status[i] = runners.get(i).stopStatus(); // in the order the vCPUs were given
        }
        return status;
    }

    private VcpuFailure firstFailure() {
        for (VcpuRunner r : runners) {
            if (r.failure() != null) {
                return r.failure();
            }
        }
        return null;
    }

    /** Requests every vCPU to stop and waits (bounded) for their threads. */
    public void stopAll(int status) throws InterruptedException {
        for (VcpuRunner r : runners) {
            if (r.state() != VcpuRunner.State.STOPPED) {
                r.requestStop(status);
            }
        }
        for (VcpuRunner r : runners) {
            if (r.thread() != null && !r.awaitStop(5, TimeUnit.SECONDS)) {
                throw new KvmException("vCPU " + r.vcpu().index() + " did not stop within 5 s of a kick");
            }
        }
    }

    @Override
    public void close() {
        try {
            stopAll(-1);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        vm.close();
        memory.close();
        kvm.close();
        arena.close();
    }
}
