package dev.dvmm.hv.vstate;

import dev.dvmm.bindings.Posix;
import dev.dvmm.bindings.abi.KvmCpuid2;
import dev.dvmm.bindings.abi.KvmCpuidEntry2;
import dev.dvmm.bindings.abi.KvmFpu;
import dev.dvmm.bindings.abi.KvmInterrupt;
import dev.dvmm.bindings.abi.KvmIoctls;
import dev.dvmm.bindings.abi.KvmMpState;
import dev.dvmm.bindings.abi.KvmMsrEntry;
import dev.dvmm.bindings.abi.KvmMsrs;
import dev.dvmm.bindings.abi.KvmRegs;
import dev.dvmm.bindings.abi.KvmSignalMask;
import dev.dvmm.bindings.abi.KvmSregs;
import dev.dvmm.bindings.abi.KvmTranslation;
import dev.dvmm.bindings.abi.KvmVcpuEvents;
import dev.dvmm.bindings.abi.PosixConstants;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A vCPU fd with its mapped {@code kvm_run} and preallocated ioctl buffers.
 *
 * <p>Only the vCPU's own thread calls {@link #run} and the register accessors while it runs; the
 * buffers are reused, so nothing is allocated per exit.
 */
public final class Vcpu implements AutoCloseable {
    private final Vm vm;
    private final int index;
    private final int fd;
    private final MemorySegment run;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment regs = arena.allocate(KvmRegs.LAYOUT);
    private final MemorySegment sregs = arena.allocate(KvmSregs.LAYOUT);
    private final MemorySegment events = arena.allocate(KvmVcpuEvents.LAYOUT);
    private final MemorySegment mpState = arena.allocate(KvmMpState.LAYOUT);
    private final MemorySegment translation = arena.allocate(KvmTranslation.LAYOUT);
    private final MemorySegment interrupt = arena.allocate(KvmInterrupt.LAYOUT);
    private final MemorySegment oneMsr = arena.allocate(KvmMsrs.SIZE + KvmMsrEntry.SIZE, 8);
    private boolean closed;

    Vcpu(Vm vm, int index, int fd, int mmapSize) {
        this.vm = vm;
        this.index = index;
        this.fd = fd;
        this.run = Posix.current().mmapChecked(0, mmapSize, PosixConstants.PROT_READ | PosixConstants.PROT_WRITE,
                PosixConstants.MAP_SHARED, fd, 0, "kvm_run of vCPU " + index);
    }

    public Vm vm() { return vm; }

    public int index() { return index; }

    public int fd() { return fd; }

    /** The shared {@code struct kvm_run}; read it in place with {@link dev.dvmm.bindings.abi.KvmRun}. */
    public MemorySegment kvmRun() { return run; }

    /** KVM_RUN with this thread's Posix; returns 0 or -errno (EINTR when kicked). Allocates nothing. */
    public int run(Posix px) {
        return px.ioctl(fd, KvmIoctls.KVM_RUN);
    }

    private void ioctl(long req, MemorySegment arg, String what) {
        int r = Posix.current().ioctl(fd, req, arg);
        if (r < 0) {
            throw new KvmException(what + " on vCPU " + index + ": " + Posix.strerror(-r));
        }
    }

    /** KVM_GET_REGS into the vCPU's buffer; returns the buffer (read with KvmRegs accessors). */
    public MemorySegment getRegs() {
        ioctl(KvmIoctls.KVM_GET_REGS, regs, "KVM_GET_REGS");
        return regs;
    }

    /** The regs buffer without an ioctl, for filling before {@link #putRegs()}. */
    public MemorySegment regsBuffer() { return regs; }

    public void putRegs() { ioctl(KvmIoctls.KVM_SET_REGS, regs, "KVM_SET_REGS"); }

    public MemorySegment getSregs() {
        ioctl(KvmIoctls.KVM_GET_SREGS, sregs, "KVM_GET_SREGS");
        return sregs;
    }

    public void putSregs() { ioctl(KvmIoctls.KVM_SET_SREGS, sregs, "KVM_SET_SREGS"); }

    public MemorySegment getEvents() {
        ioctl(KvmIoctls.KVM_GET_VCPU_EVENTS, events, "KVM_GET_VCPU_EVENTS");
        return events;
    }

    public void putEvents() { ioctl(KvmIoctls.KVM_SET_VCPU_EVENTS, events, "KVM_SET_VCPU_EVENTS"); }

    public int getMpState() {
        ioctl(KvmIoctls.KVM_GET_MP_STATE, mpState, "KVM_GET_MP_STATE");
        return KvmMpState.mpState(mpState);
    }

    public void setMpState(int state) {
        KvmMpState.mpState(mpState, state);
        ioctl(KvmIoctls.KVM_SET_MP_STATE, mpState, "KVM_SET_MP_STATE");
    }

    public void setCpuid(MemorySegment cpuid2) {
        ioctl(KvmIoctls.KVM_SET_CPUID2, cpuid2, "KVM_SET_CPUID2 (" + KvmCpuid2.nent(cpuid2) + " entries)");
    }

    public void setFpu(MemorySegment fpu) {
        if (fpu.byteSize() < KvmFpu.SIZE) {
            throw new IllegalArgumentException("kvm_fpu buffer too small");
        }
        ioctl(KvmIoctls.KVM_SET_FPU, fpu, "KVM_SET_FPU");
    }

    /** Injects an external interrupt (only when the guest is ready: see kvm_run's ready flag). */
    public int injectInterrupt(int vector) {
        KvmInterrupt.irq(interrupt, vector);
        return Posix.current().ioctl(fd, KvmIoctls.KVM_INTERRUPT, interrupt);
    }

    public int injectNmi() {
        return Posix.current().ioctl(fd, KvmIoctls.KVM_NMI);
    }

    /**
     * Queues exception {@code vector} (no error code) for delivery at the next KVM_RUN, at the current
     * RIP: for a trap such as #BP, KVM pushes the address after the instruction itself.
     */
    public void injectException(int vector) {
        MemorySegment e = getEvents();
        KvmVcpuEvents.exceptionInjected(e, 1);
        KvmVcpuEvents.exceptionNr(e, vector);
        KvmVcpuEvents.exceptionHasErrorCode(e, 0);
        KvmVcpuEvents.exceptionPending(e, 0);
        KvmVcpuEvents.exceptionErrorCode(e, 0);
        KvmVcpuEvents.flags(e, 0); // leave NMI, SIPI, shadow and SMM state as they are
        putEvents();
    }

    /** Guest-virtual to guest-physical with the vCPU's current page tables, or -1. */
    public long translate(long gva) {
        KvmTranslation.linearAddress(translation, gva);
        int r = Posix.current().ioctl(fd, KvmIoctls.KVM_TRANSLATE, translation);
        if (r < 0 || KvmTranslation.valid(translation) == 0) {
            return -1;
        }
        return KvmTranslation.physicalAddress(translation);
    }

    public long getMsr(int msr) {
        KvmMsrs.nmsrs(oneMsr, 1);
        KvmMsrEntry.index(oneMsr.asSlice(KvmMsrs.ENTRIES_OFFSET), msr);
        int r = Posix.current().ioctl(fd, KvmIoctls.KVM_GET_MSRS, oneMsr);
        if (r != 1) {
            throw new KvmException("KVM_GET_MSRS 0x" + Integer.toHexString(msr) + " on vCPU " + index + " failed");
        }
        return KvmMsrEntry.data(oneMsr.asSlice(KvmMsrs.ENTRIES_OFFSET));
    }

    public void setMsr(int msr, long value) {
        KvmMsrs.nmsrs(oneMsr, 1);
        MemorySegment e = oneMsr.asSlice(KvmMsrs.ENTRIES_OFFSET);
        KvmMsrEntry.index(e, msr);
        KvmMsrEntry.data(e, value);
        int r = Posix.current().ioctl(fd, KvmIoctls.KVM_SET_MSRS, oneMsr);
        if (r != 1) {
            throw new KvmException("KVM_SET_MSRS 0x" + Integer.toHexString(msr) + " on vCPU " + index + " was refused");
        }
    }

    /** Sets the signal mask in force while this vCPU is inside KVM_RUN (kernel sigset: 8 bytes). */
    public void setSignalMask(MemorySegment kernelSigset8) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment m = a.allocate(KvmSignalMask.SIGSET_OFFSET + 8, 8);
            KvmSignalMask.len(m, 8);
            MemorySegment.copy(kernelSigset8, 0, m, KvmSignalMask.SIGSET_OFFSET, 8);
            ioctl(KvmIoctls.KVM_SET_SIGNAL_MASK, m, "KVM_SET_SIGNAL_MASK");
        }
    }

    /** Copies entry {@code i} of a kvm_cpuid2 buffer. */
    public static MemorySegment cpuidEntry(MemorySegment cpuid2, int i) {
        return cpuid2.asSlice(KvmCpuid2.ENTRIES_OFFSET + i * KvmCpuidEntry2.SIZE, KvmCpuidEntry2.SIZE);
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            Posix px = Posix.current();
            px.munmap(run);
            px.close(fd);
            arena.close();
        }
    }
}
