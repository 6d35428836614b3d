package dev.dvmm.hv.vcpu;

import dev.dvmm.bindings.Posix;
import dev.dvmm.bindings.abi.KvmConstants;
import dev.dvmm.bindings.abi.KvmRun;
import dev.dvmm.bindings.abi.PosixConstants;
import dev.dvmm.bindings.abi.KvmRegs;
import dev.dvmm.bindings.abi.KvmSegment;
import dev.dvmm.bindings.abi.KvmSregs;
import dev.dvmm.hv.bus.IoBus;
import dev.dvmm.hv.irq.Lapic;
import dev.dvmm.hv.vstate.GuestMemory;
import dev.dvmm.hv.vstate.Vcpu;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * The run loop of one vCPU on its own platform thread: a run-state machine fed by a mailbox, and one
 * switch over KVM exit reasons.
 *
 * <p>Other threads never touch the vCPU's state: they post a request (pause, resume, stop) and
 * {@link #kick()} the thread out of KVM_RUN. The loop allocates nothing per exit: {@code kvm_run} is
 * read in place, the buses take primitive arguments, and the Posix instance is this thread's.
 */
public final class VcpuRunner implements Runnable {
    public enum State { CREATED, RUNNING, PAUSED, STOPPED }

    private static final int REQ_PAUSE = 1;
    private static final int REQ_STOP = 2;
    private static final int REQ_SAMPLE = 4;

    private final Vcpu vcpu;
    private final GuestMemory memory;
    private final IoBus pio;
    private final IoBus mmio;
    private final CountDownLatch stopped = new CountDownLatch(1);
    // The vCPU's userspace local APIC, or null for guests that run without interrupts.
    private Lapic lapic;
    // Exit profiling (dvmm run --exit-stats), or null: the loop then reads no clock.
    private ExitProfile profile;

    // Mailbox: written by any thread, read by the vCPU thread after each exit. volatile orders the
    // request (and the stop status written before it) before the kick that makes the vCPU look.
    private volatile int requests;
    private volatile int stopStatus;
    private volatile State state = State.CREATED;
    private volatile int tid;
    private volatile Thread thread;
    private volatile VcpuFailure failure;

    // Statistics, written only by the vCPU thread; volatile so that readers see recent values.
    private volatile long exits;
    private volatile long ioExits;
    private volatile long mmioExits;
    private volatile long kicks;
    private volatile long emulatedInt3;
    private volatile long loopAllocatedBytes = -1;
    private volatile long loopNanos;
    // Guest RIP read by the vCPU thread on request (progress reports), and how many samples were taken.
    private volatile long sampledRip;
    private volatile int samples;

    public VcpuRunner(Vcpu vcpu, GuestMemory memory, IoBus pio, IoBus mmio) {
        this.vcpu = vcpu;
        this.memory = memory;
        this.pio = pio;
        this.mmio = mmio;
    }

    public Vcpu vcpu() { return vcpu; }

    /**
     * Connects the vCPU's local APIC (before {@link #start}): the loop then injects its interrupts and
     * NMIs, holds the vCPU out of KVM_RUN while it waits for a SIPI, and sleeps in HLT until there is work.
     */
    public void attachLapic(Lapic l) {
        this.lapic = l;
    }

    public Lapic lapic() { return lapic; }

    /** Profiles this vCPU's exits from {@link #start} on (before start; read it after the vCPU stopped). */
    public ExitProfile profileExits() {
        ExitProfile p = new ExitProfile();
        this.profile = p;
        return p;
    }

    /** Told when a vCPU executes HLT with interrupts disabled. */
    public interface HaltListener {
        void haltedWithInterruptsOff(int vcpu);
    }

    private volatile HaltListener haltListener;

    public void setHaltListener(HaltListener listener) {
        this.haltListener = listener;
    }

    public State state() { return state; }

    /** Starts the vCPU thread. */
    public Thread start() {
        Thread t = Thread.ofPlatform().name("vcpu-" + vcpu.index()).daemon(true).unstarted(this);
        thread = t;
        t.start();
        return t;
    }

    @Override
    public void run() {
        thread = Thread.currentThread();
        Posix px = Posix.current();
        try (Arena arena = Arena.ofConfined()) {
            KickSignal kick = new KickSignal(arena);
            vcpu.setSignalMask(kick.blockInThisThread(arena));
            tid = Posix.gettid();
            state = State.RUNNING;
            long allocatedBefore = allocatedByThisThread();
            long t0 = System.nanoTime();
            try {
                loop(px, kick);
            } finally {
                tid = 0;
                kicks += kick.drain(px);
                loopNanos = System.nanoTime() - t0;
                if (profile != null) {
                    profile.totalNanos = loopNanos;
                }
                // Allocation of the run loop itself, for the zero-allocation check (two reads per thread life).
                loopAllocatedBytes = allocatedByThisThread() - allocatedBefore;
            }
        } catch (VcpuFailure f) {
            failure = f;
        } catch (RuntimeException e) {
            failure = new VcpuFailure(vcpu.index(), "run loop failed: " + e.getMessage(), "");
        } finally {
            tid = 0;
            state = State.STOPPED;
            stopped.countDown();
        }
    }

    private void loop(Posix px, KickSignal kick) {
        final MemorySegment run = vcpu.kvmRun();
        final int index = vcpu.index();
        while (true) {
            int req = requests;
            if ((req & REQ_STOP) != 0) {
                return;
            }
            if ((req & REQ_SAMPLE) != 0) {
                synchronized (this) {
                    requests &= ~REQ_SAMPLE;
                }
                sampledRip = KvmRegs.rip(vcpu.getRegs());
                samples++;
                continue;
            }
            if ((req & REQ_PAUSE) != 0) {
                state = State.PAUSED;
                while ((requests & (REQ_PAUSE | REQ_STOP)) == REQ_PAUSE) {
                    LockSupport.park(this);
                }
                state = State.RUNNING;
                continue;
            }
            if (lapic != null && !deliverInterrupts(run)) {
                continue;
            }
            final ExitProfile prof = profile;
            final long entered = prof != null ? System.nanoTime() : 0;
            if (prof != null) {
                prof.entering(entered);
            }
            int r = vcpu.run(px);
            final long left = prof != null ? System.nanoTime() : 0;
            if (prof != null) {
                prof.runNanos += left - entered;
            }
            if (r < 0) {
                if (r == -PosixConstants.EINTR || r == -PosixConstants.EAGAIN) {
                    kicks += kick.drain(px);
                    continue;
                }
                throw new VcpuFailure(index, "KVM_RUN failed: " + Posix.strerror(-r), VcpuDump.of(vcpu, memory));
            }
            exits++;
            int reason = KvmRun.exitReason(run);
            if (prof != null) {
                prof.reason(reason, left);
            }
            switch (reason) {
                case KvmConstants.KVM_EXIT_IO -> handleIo(run, index);
                case KvmConstants.KVM_EXIT_MMIO -> handleMmio(run, index);
                case KvmConstants.KVM_EXIT_INTR -> kicks += kick.drain(px);
                case KvmConstants.KVM_EXIT_HLT -> {
                    if (KvmRun.ifFlag(run) == 0 && lapic != null) {
                        // HLT with interrupts off: only NMI/INIT can wake it. Tell the platform (a guest
                        // that halts every CPU this way has halted the machine), then wait as usual.
                        HaltListener h = haltListener;
                        if (h != null) {
                            h.haltedWithInterruptsOff(index);
                        }
                    }
                    long halted = prof != null ? System.nanoTime() : 0;
                    waitForWork();
                    if (prof != null) {
                        prof.halted(System.nanoTime() - halted);
                    }
                }
                case KvmConstants.KVM_EXIT_IRQ_WINDOW_OPEN -> KvmRun.requestInterruptWindow(run, 0);
                // On AMD hosts KVM has already reset the vCPU when it reports SHUTDOWN: the dump then
                // shows the reset state, not the faulting one.
                case KvmConstants.KVM_EXIT_SHUTDOWN ->
                        throw fail("the guest shut down the CPU (triple fault)");
                case KvmConstants.KVM_EXIT_INTERNAL_ERROR -> {
                    if (!workAroundEmulationFailure(run)) {
                        throw fail(internalError(run));
                    }
                }
                case KvmConstants.KVM_EXIT_FAIL_ENTRY -> throw fail(String.format(
                        "VM entry failed: hardware reason 0x%x on CPU %d",
                        KvmRun.failEntryHardwareEntryFailureReason(run), KvmRun.failEntryCpu(run)));
                case KvmConstants.KVM_EXIT_SYSTEM_EVENT -> throw fail("system event type "
                        + KvmRun.systemEventType(run) + " (shutdown/reset/crash) requested by the guest");
                default -> throw fail("unhandled KVM exit reason " + reason);
            }
        }
    }

    private static long allocatedByThisThread() {
        java.lang.management.ThreadMXBean mx = java.lang.management.ManagementFactory.getThreadMXBean();
        return mx instanceof com.sun.management.ThreadMXBean sun ? sun.getCurrentThreadAllocatedBytes() : 0;
    }

    private VcpuFailure fail(String reason) {
        return new VcpuFailure(vcpu.index(), reason, VcpuDump.of(vcpu, memory));
    }

    private static final int INT3 = 0xCC;
    private static final int BP_VECTOR = 3;
    // KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES: data[1] holds the length and the first 7 bytes.
    private static final long EMULATION_FLAG_INSTRUCTION_BYTES = 1;

    /**
     * Some nested hosts (PVM) cannot emulate instructions that hardware would just execute and end
     * KVM_RUN with an emulation failure instead. For the one a Linux boot meets, {@code int3} (live code
     * patching plants it while other CPUs run), deliver what the CPU would: #BP with the address after
     * the int3 on the stack (RIP is advanced first: PVM pushes the RIP it is given, tested by the
     * exceptions test guest). Hardware KVM executes int3 itself and never comes here. Others stay fatal.
     */
    private boolean workAroundEmulationFailure(MemorySegment run) {
        if (KvmRun.internalSuberror(run) != KvmConstants.KVM_INTERNAL_ERROR_EMULATION) {
            return false;
        }
        int first;
        if (KvmRun.internalNdata(run) >= 2 && (KvmRun.internalData(run, 0) & EMULATION_FLAG_INSTRUCTION_BYTES) != 0
                && (KvmRun.internalData(run, 1) & 0xFF) >= 1) {
            first = (int) (KvmRun.internalData(run, 1) >>> 8) & 0xFF;
        } else {
            first = firstCodeByte();
        }
        if (first != INT3) {
            return false;
        }
        MemorySegment regs = vcpu.getRegs();
        KvmRegs.rip(regs, KvmRegs.rip(regs) + 1);
        vcpu.putRegs();
        vcpu.injectException(BP_VECTOR);
        emulatedInt3++;
        return true;
    }

    /** The byte at the guest's RIP, or -1 when it cannot be read. */
    private int firstCodeByte() {
        byte[] one = new byte[1];
        return VcpuDump.readCode(vcpu, memory, KvmRegs.rip(vcpu.getRegs()), one) == 1 ? Byte.toUnsignedInt(one[0]) : -1;
    }

    private static String internalError(MemorySegment run) {
        int sub = KvmRun.internalSuberror(run);
        String what = switch (sub) {
            case KvmConstants.KVM_INTERNAL_ERROR_EMULATION -> "instruction emulation failed";
            case KvmConstants.KVM_INTERNAL_ERROR_SIMUL_EX -> "exception while delivering an exception";
            case KvmConstants.KVM_INTERNAL_ERROR_DELIVERY_EV -> "event delivery failed";
            case KvmConstants.KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON -> "unexpected hardware exit reason";
            default -> "suberror " + sub;
        };
        StringBuilder b = new StringBuilder("KVM internal error: ").append(what);
        int n = Math.min(KvmRun.internalNdata(run), KvmRun.INTERNAL_DATA_LENGTH);
        for (int i = 0; i < n; i++) {
            b.append(i == 0 ? " data=" : ",").append(Long.toHexString(KvmRun.internalData(run, i)));
        }
        return b.toString();
    }

    private void handleIo(MemorySegment run, int index) {
        ioExits++;
        final int size = KvmRun.ioSize(run);
        final int port = KvmRun.ioPort(run);
        if (profile != null) {
            profile.port(port);
        }
        final int count = KvmRun.ioCount(run);
        final long data = KvmRun.ioDataOffset(run);
        if (KvmRun.ioDirection(run) == KvmConstants.KVM_EXIT_IO_OUT) {
            for (int i = 0; i < count; i++) {
                pio.write(index, port, size, load(run, data + (long) i * size, size));
            }
        } else {
            for (int i = 0; i < count; i++) {
                store(run, data + (long) i * size, size, pio.read(index, port, size));
            }
        }
    }

    private void handleMmio(MemorySegment run, int index) {
        mmioExits++;
        final long addr = KvmRun.mmioPhysAddr(run);
        if (profile != null) {
            profile.mmio(addr);
        }
        final int len = KvmRun.mmioLen(run);
        if (KvmRun.mmioIsWrite(run) != 0) {
            mmio.write(index, addr, len, load(run, KvmRun.MMIO_DATA_OFFSET, len));
        } else {
            store(run, KvmRun.MMIO_DATA_OFFSET, len, mmio.read(index, addr, len));
        }
    }

    private static long load(MemorySegment s, long off, int size) {
        return switch (size) {
            case 1 -> Byte.toUnsignedLong(s.get(ValueLayout.JAVA_BYTE, off));
            case 2 -> Short.toUnsignedLong(s.get(ValueLayout.JAVA_SHORT_UNALIGNED, off));
            case 4 -> Integer.toUnsignedLong(s.get(ValueLayout.JAVA_INT_UNALIGNED, off));
            default -> s.get(ValueLayout.JAVA_LONG_UNALIGNED, off);
        };
    }

    private static void store(MemorySegment s, long off, int size, long v) {
        switch (size) {
            case 1 -> s.set(ValueLayout.JAVA_BYTE, off, (byte) v);
            case 2 -> s.set(ValueLayout.JAVA_SHORT_UNALIGNED, off, (short) v);
            case 4 -> s.set(ValueLayout.JAVA_INT_UNALIGNED, off, (int) v);
            default -> s.set(ValueLayout.JAVA_LONG_UNALIGNED, off, v);
        }
    }

    /**
     * Before KVM_RUN: INIT/SIPI, NMI and external interrupt delivery from the userspace LAPIC. Returns
     * false when the vCPU must not run now (waiting for a SIPI); the caller loops to read its mailbox.
     */
    private boolean deliverInterrupts(MemorySegment run) {
        Lapic l = lapic;
        // INIT: the LAPIC reset itself and now waits for a SIPI; the CPU stays out of KVM_RUN. (A CPU
        // INITed after it ran keeps its registers until the SIPI reloads CS:IP; Linux only INITs APs
        // that never ran.)
        l.takeInit();
        if (l.waitingForSipi()) {
            int vector = l.takeSipi();
            if (vector < 0) {
                state = State.PAUSED;
                long waited = profile != null ? System.nanoTime() : 0;
                LockSupport.parkNanos(this, 50_000_000L);
                if (profile != null) {
                    profile.halted(System.nanoTime() - waited); // waiting for a SIPI counts as halted
                }
                state = State.RUNNING;
                return false;
            }
            startAt(vector);
        }
        if (l.takeNmi()) {
            vcpu.injectNmi();
        }
        if (l.hasInjectableInterrupt()) {
            if (KvmRun.readyForInterruptInjection(run) != 0 && KvmRun.ifFlag(run) != 0) {
                int v = l.acceptInterrupt();
                if (v >= 0) {
                    vcpu.injectInterrupt(v);
                }
            } else {
                KvmRun.requestInterruptWindow(run, 1);
            }
        }
        return true;
    }

    /** Real mode at vector:0000 after a SIPI (CS selector vector << 8, base vector << 12). */
    private void startAt(int vector) {
        MemorySegment s = vcpu.getSregs();
        MemorySegment cs = s.asSlice(KvmSregs.CS_OFFSET, KvmSegment.SIZE);
        KvmSegment.selector(cs, vector << 8);
        KvmSegment.base(cs, (long) vector << 12);
        vcpu.putSregs();
        MemorySegment r = vcpu.getRegs();
        KvmRegs.rip(r, 0);
        vcpu.putRegs();
    }

    /** HLT: sleep until the LAPIC has something to deliver or another thread posts a request. */
    private void waitForWork() {
        int before = requests;
        Lapic l = lapic;
        while (requests == before) {
            if (l != null && (l.hasInjectableInterrupt() || l.nmiPending() || l.pendingInit()
                    || l.pendingSipiVector() >= 0)) {
                return;
            }
            // A timed park: the wake hook unparks at once; the bound only limits a missed wake-up.
            LockSupport.parkNanos(this, 10_000_000L);
        }
    }

    // ------------------------------------------------------------------ mailbox (any thread)

    /** Asks the vCPU to stop with a status; returns at once (see {@link #awaitStop}). */
    public void requestStop(int status) {
        stopStatus = status;
        post(REQ_STOP);
    }

    /**
     * Asks the vCPU thread to read its guest RIP at its next exit (a kick forces one); see
     * {@link #sampledRip}. For progress reports: cheap, and the guest does not notice.
     */
    public void requestRipSample() {
        post(REQ_SAMPLE);
    }

    /** The guest RIP at the last sample (0 before any). */
    public long sampledRip() { return sampledRip; }

    /** How many RIP samples the vCPU thread has taken. */
    public int ripSamples() { return samples; }

    public void requestPause() {
        post(REQ_PAUSE);
    }

    public void resume() {
        int r;
        synchronized (this) {
            r = requests & ~REQ_PAUSE;
            requests = r;
        }
        Thread t = thread;
        if (t != null) {
            LockSupport.unpark(t);
        }
    }

    private void post(int bit) {
        synchronized (this) {
            requests = requests | bit;
        }
        if (Thread.currentThread() != thread) {
            kick();
        }
    }

    /** Forces the vCPU out of KVM_RUN (and out of a HLT/pause wait) so it reads its mailbox. */
    public void kick() {
        Thread t = thread;
        if (t != null) {
            LockSupport.unpark(t);
        }
        int id = tid;
        if (id != 0) {
            KickSignal.send(Posix.current(), id);
        }
    }

    public boolean awaitStop(long timeout, TimeUnit unit) throws InterruptedException {
        return stopped.await(timeout, unit);
    }

    public int stopStatus() { return stopStatus; }

    /** Why the vCPU stopped on its own, or null if it stopped on request. */
    public VcpuFailure failure() { return failure; }

    public long exits() { return exits; }

    public long ioExits() { return ioExits; }

    public long mmioExits() { return mmioExits; }

    public long kicks() { return kicks; }

    /** {@code int3}s the host could not emulate and the loop delivered as #BP. */
    public long emulatedInt3() { return emulatedInt3; }

    /** Bytes the vCPU thread allocated inside its run loop (set when it stops; -1 before). */
    public long loopAllocatedBytes() { return loopAllocatedBytes; }

    /** Time the vCPU thread spent in its run loop (set when it stops). */
    public long loopNanos() { return loopNanos; }

    /** The vCPU thread, once started. */
    public Thread thread() { return thread; }
}
