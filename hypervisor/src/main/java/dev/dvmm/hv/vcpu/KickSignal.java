package dev.dvmm.hv.vcpu;

import dev.dvmm.bindings.Posix;
import dev.dvmm.bindings.abi.PosixConstants;
import dev.dvmm.bindings.abi.Sigaction;
import dev.dvmm.bindings.abi.SigsetT;
import dev.dvmm.bindings.abi.Timespec;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The real-time signal that knocks a vCPU thread out of KVM_RUN.
 *
 * <p>It stays blocked in the vCPU thread and is unblocked only inside KVM_RUN (KVM_SET_SIGNAL_MASK), so
 * it never runs a handler: KVM_RUN returns EINTR, and the pending signal is drained with a zero-timeout
 * sigtimedwait. A kick sent while the thread is outside KVM_RUN stays pending and makes the next KVM_RUN
 * return at once, so no kick is lost. SIGRTMIN+4 avoids the signals HotSpot owns.
 *
 * <p>The signal still gets a handler, a harmless libc function ({@code getpid}, async-signal-safe, its
 * result ignored): when a Java thread ends, HotSpot restores the signal mask the thread started with,
 * which unblocks the kick; a kick still pending then would otherwise kill the process with the default
 * action (seen: a vCPU thread exiting while another vCPU's IPI kick was in flight).
 */
final class KickSignal {
    static final int SIGNAL = Posix.sigrtmin() + 4;

    static {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment act = a.allocate(Sigaction.LAYOUT);
            // SAFETY: the kernel calls this code address as void handler(int); getpid ignores the argument.
            Sigaction.saHandler(act, Posix.libcSymbol("getpid").address());
            Sigaction.saFlags(act, 0);
            Posix.check(Posix.current().sigaction(SIGNAL, act, MemorySegment.NULL), "sigaction for the vCPU kick signal");
        }
    }

    private final MemorySegment set;
    private final MemorySegment zeroTimeout;
    private final MemorySegment oldMask;

    /** Per vCPU thread: preallocates the sets used to drain. */
    KickSignal(Arena arena) {
        set = arena.allocate(SigsetT.LAYOUT);
        Posix.sigaddset(set, SIGNAL);
        zeroTimeout = arena.allocate(Timespec.LAYOUT);
        oldMask = arena.allocate(SigsetT.LAYOUT);
    }

    /** Blocks the kick in the calling thread; returns the 8-byte kernel mask for inside KVM_RUN. */
    MemorySegment blockInThisThread(Arena arena) {
        int r = Posix.pthreadSigmask(PosixConstants.SIG_BLOCK, set, oldMask);
        Posix.check(r, "pthread_sigmask");
        MemorySegment inRun = arena.allocate(8, 8);
        MemorySegment.copy(oldMask, 0, inRun, 0, 8);
        Posix.sigdelset(inRun, SIGNAL);
        return inRun;
    }

    /** Consumes pending kicks; returns how many were pending (real-time signals queue, so all are taken). */
    int drain(Posix px) {
        int n = 0;
        while (px.sigtimedwait(set, MemorySegment.NULL, zeroTimeout) == SIGNAL) {
            n++;
        }
        return n;
    }

    static int send(Posix px, int tid) {
        return px.tgkill(Posix.getpid(), tid, SIGNAL);
    }
}
