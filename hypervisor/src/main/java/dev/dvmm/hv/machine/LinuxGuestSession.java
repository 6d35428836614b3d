package dev.dvmm.hv.machine;

import dev.dvmm.boot.LinuxBoot;
import dev.dvmm.boot.kernel.KernelFile;
import dev.dvmm.boot.linux.KernelCommandLine;
import dev.dvmm.boot.memory.SegmentGuestMemory;
import dev.dvmm.boot.smp.MachineTopology;
import dev.dvmm.boot.smp.SmpEnumeration;
import dev.dvmm.hv.arch.BootStateLoader;
import java.io.OutputStream;
import java.time.Duration;

/**
 * A kernel booted through the 64-bit Linux boot protocol on one node: Linux (bzImage or vmlinux) or the
 * test kernel. vCPU 0 starts at the kernel entry; the others wait for INIT/SIPI from the guest.
 */
public final class LinuxGuestSession implements AutoCloseable {
    private final Machine machine;
    private final PcPlatform platform;
    private final LinuxBoot.Prepared prepared;
    private java.util.List<dev.dvmm.hv.vcpu.ExitProfile> profiles;

    private LinuxGuestSession(Machine machine, PcPlatform platform, LinuxBoot.Prepared prepared) {
        this.machine = machine;
        this.platform = platform;
        this.prepared = prepared;
    }

    /** Loads {@code kernel} (and {@code initramfs}, may be null) with {@code cmdline}, ready to run. */
    public static LinuxGuestSession boot(int vcpus, long memoryBytes, KernelFile kernel, KernelFile initramfs,
                                         KernelCommandLine cmdline, SmpEnumeration smp, OutputStream console) {
        Machine m = Machine.create(vcpus, memoryBytes);
        PcPlatform p = null;
        try {
            p = new PcPlatform(m, new MachineTopology(vcpus).ioapicId(), console);
            LinuxBoot boot = new LinuxBoot(new SegmentGuestMemory(m.memory().guestMapping()))
                    .kernel(kernel).cmdline(cmdline).vcpus(vcpus).smp(smp);
            if (initramfs != null) {
                boot.initramfs(initramfs);
            }
            LinuxBoot.Prepared prepared = boot.prepare();
            BootStateLoader.apply(m.runner(0).vcpu(), prepared.state());
            return new LinuxGuestSession(m, p, prepared);
        } catch (RuntimeException e) {
            if (p != null) {
                p.close();
            }
            m.close();
            throw e;
        }
    }

    public Machine machine() { return machine; }

    public PcPlatform platform() { return platform; }

    public LinuxBoot.Prepared prepared() { return prepared; }

    /** Runs until the guest powers off, resets or writes the debug-exit port; returns vCPU 0's status. */
    public int run(Duration timeout) throws InterruptedException {
        return run(timeout, null);
    }

    /** As {@link #run(Duration)}, calling {@code tick} (may be null) about every 100 ms while the guest runs. */
    public int run(Duration timeout, Runnable tick) throws InterruptedException {
        machine.start();
        try {
            int[] status = machine.awaitCompletion(timeout, tick);
            return status[0];
        } catch (dev.dvmm.hv.vstate.KvmException e) {
            if (!(e instanceof dev.dvmm.hv.vcpu.VcpuFailure)) {
                throw new dev.dvmm.hv.vstate.KvmException(e.getMessage() + System.lineSeparator() + diagnostics(), e);
            }
            throw e;
        }
    }

    /** Profiles every vCPU's exits (call before {@link #run}); {@link #exitReport} prints them. */
    public void profileExits() {
        profiles = new java.util.ArrayList<>();
        for (var r : machine.runners()) {
            profiles.add(r.profileExits());
        }
    }

    /** The exit profile of the whole machine and of each vCPU, or "" when not profiled. */
    public String exitReport() {
        if (profiles == null) {
            return "";
        }
        StringBuilder b = new StringBuilder();
        dev.dvmm.hv.vcpu.ExitProfile all = new dev.dvmm.hv.vcpu.ExitProfile();
        for (int i = 0; i < profiles.size(); i++) {
            all.add(profiles.get(i));
            b.append(profiles.get(i).report("dvmm: vCPU " + i));
        }
        return all.report("dvmm: all vCPUs") + b;
    }

    /** Per-vCPU state after a timeout: where each vCPU was and what its LAPIC held. */
    public String diagnostics() {
        StringBuilder b = new StringBuilder();
        for (var r : machine.runners()) {
            int i = r.vcpu().index();
            var l = platform.lapic(i);
            b.append(String.format("  vCPU %d: %s, exits %d (io %d, mmio %d), kicks %d; LAPIC %s, injectable %b, accepted %d%n",
                    i, r.state(), r.exits(), r.ioExits(), r.mmioExits(), r.kicks(), l, l.hasInjectableInterrupt(),
                    l.acceptedInterrupts()));
            try {
                b.append(dev.dvmm.hv.vcpu.VcpuDump.of(r.vcpu(), machine.memory())).append(System.lineSeparator());
            } catch (RuntimeException ex) {
                b.append("  (no register dump: ").append(ex.getMessage()).append(")").append(System.lineSeparator());
            }
        }
        return b.toString();
    }

    @Override
    public void close() {
        machine.close();
        platform.close();
    }
}
