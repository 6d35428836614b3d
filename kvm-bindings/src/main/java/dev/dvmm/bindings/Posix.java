package dev.dvmm.bindings;

import dev.dvmm.bindings.abi.PosixConstants;
import java.lang.foreign.AddressLayout;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The libc calls a VMM needs, with errno captured per thread.
 *
 * <p>One {@code Posix} per thread ({@link #current()}), holding that thread's errno capture segment: a
 * shared capture segment would race. Raw calls return the C result, or {@code -errno} when the call
 * failed, and allocate nothing; the {@code checked} forms throw {@link NativeException}. Calls that
 * block or take long (KVM_RUN, uffd reads, UFFDIO_COPY) are never marked critical.
 */
public final class Posix {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    private static final StructLayout CAPTURE_LAYOUT = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE_LAYOUT.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE = Linker.Option.captureCallState("errno");
    private static final AddressLayout PTR = ADDRESS;

    private static final MethodHandle OPEN = errnoCall("open", FunctionDescriptor.of(JAVA_INT, PTR, JAVA_INT, JAVA_INT),
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle CLOSE = errnoCall("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle IOCTL_PTR = errnoCall("ioctl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, PTR), Linker.Option.firstVariadicArg(2));
    private static final MethodHandle IOCTL_LONG = errnoCall("ioctl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG), Linker.Option.firstVariadicArg(2));
    private static final MethodHandle MMAP = errnoCall("mmap",
            FunctionDescriptor.of(PTR, PTR, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle MUNMAP = errnoCall("munmap", FunctionDescriptor.of(JAVA_INT, PTR, JAVA_LONG));
    private static final MethodHandle MEMFD_CREATE = errnoCall("memfd_create",
            FunctionDescriptor.of(JAVA_INT, PTR, JAVA_INT));
    private static final MethodHandle FTRUNCATE = errnoCall("ftruncate", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle GETTID = plainCall("gettid", FunctionDescriptor.of(JAVA_INT));
    private static final MethodHandle GETPID = plainCall("getpid", FunctionDescriptor.of(JAVA_INT));
    private static final MethodHandle TGKILL = errnoCall("tgkill", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    // pthread_sigmask returns the error number instead of setting errno.
    private static final MethodHandle PTHREAD_SIGMASK = plainCall("pthread_sigmask",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, PTR, PTR));
    private static final MethodHandle SIGTIMEDWAIT = errnoCall("sigtimedwait",
            FunctionDescriptor.of(JAVA_INT, PTR, PTR, PTR));
    private static final MethodHandle STRERROR = plainCall("strerror", FunctionDescriptor.of(PTR, JAVA_INT));
    private static final MethodHandle SIGACTION = errnoCall("sigaction", FunctionDescriptor.of(JAVA_INT, JAVA_INT, PTR, PTR));
    private static final MethodHandle SIGRTMIN = plainCall("__libc_current_sigrtmin", FunctionDescriptor.of(JAVA_INT));
    private static final MethodHandle MEMCPY = plainCall("memcpy", FunctionDescriptor.of(PTR, PTR, PTR, JAVA_LONG));
    private static final MethodHandle SYSCONF = plainCall("sysconf", FunctionDescriptor.of(JAVA_LONG, JAVA_INT));

    // Calls the DSM and transports use, not every VM: each linked on first use (a downcall handle costs
    // class generation at start-up, which matters when the JVM's CPU is emulated).
    private static final class Fallocate {
        static final MethodHandle H = errnoCall("fallocate",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG));
    }
    private static final class Madvise {
        static final MethodHandle H = errnoCall("madvise", FunctionDescriptor.of(JAVA_INT, PTR, JAVA_LONG, JAVA_INT));
        // The same call with the address as a number: no segment to allocate per call on a hot path.
        static final MethodHandle RAW = errnoCall("madvise",
            FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT));
    }
    private static final class Affinity {
        static final MethodHandle SET = errnoCall("sched_setaffinity",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, PTR));
        static final MethodHandle CPU = plainCall("sched_getcpu", FunctionDescriptor.of(JAVA_INT));
    }
    private static final class Eventfd {
        static final MethodHandle H = errnoCall("eventfd", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    }
    private static final class Poll {
        static final MethodHandle H = errnoCall("poll", FunctionDescriptor.of(JAVA_INT, PTR, JAVA_LONG, JAVA_INT));
    }
    private static final class EpollCreate1 {
        static final MethodHandle H = errnoCall("epoll_create1", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    }
    private static final class EpollCtl {
        static final MethodHandle H = errnoCall("epoll_ctl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, PTR));
    }
    private static final class EpollWait {
        static final MethodHandle H = errnoCall("epoll_wait",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, PTR, JAVA_INT, JAVA_INT));
    }
    private static final class Read {
        static final MethodHandle H = errnoCall("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, PTR, JAVA_LONG));
    }
    private static final class Pread {
        static final MethodHandle H = errnoCall("pread",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, PTR, JAVA_LONG, JAVA_LONG));
    }
    private static final class Write {
        static final MethodHandle H = errnoCall("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, PTR, JAVA_LONG));
    }
    private static final class Syscall1 {
        static final MethodHandle H = errnoCall("syscall",
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG), Linker.Option.firstVariadicArg(1));
    }

    /** Returned by mmap on failure. */
    public static final long MAP_FAILED = -1L;

    private static final ThreadLocal<Posix> PER_THREAD = ThreadLocal.withInitial(Posix::new);

    private final MemorySegment errnoState;

    private Posix() {
        this.errnoState = Arena.ofAuto().allocate(CAPTURE_LAYOUT);
    }

    /** This thread's instance; cache it in hot loops. */
    public static Posix current() {
        return PER_THREAD.get();
    }

    private static MethodHandle errnoCall(String name, FunctionDescriptor fd, Linker.Option... extra) {
        Linker.Option[] opts = new Linker.Option[extra.length + 1];
        opts[0] = CAPTURE;
        System.arraycopy(extra, 0, opts, 1, extra.length);
        return LINKER.downcallHandle(LIBC.findOrThrow(name), fd, opts);
    }

    private static MethodHandle plainCall(String name, FunctionDescriptor fd) {
        return LINKER.downcallHandle(LIBC.findOrThrow(name), fd);
    }

    private int errno() {
        return (int) ERRNO.get(errnoState, 0L);
    }

    private int ret(int r) {
        return r == -1 ? -errno() : r;
    }

    private long ret(long r) {
        return r == -1 ? -errno() : r;
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException re) {
            return re;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException(t);
    }

    /** Throws for a raw result below zero. */
    public static int check(int r, String op) {
        if (r < 0) {
            throw new NativeException(op, -r);
        }
        return r;
    }

    public static long check(long r, String op) {
        if (r < 0) {
            throw new NativeException(op, (int) -r);
        }
        return r;
    }

    // ------------------------------------------------------------------ files

    public int open(String path, int flags) {
        try (Arena a = Arena.ofConfined()) {
            return ret((int) OPEN.invokeExact(errnoState, a.allocateFrom(path), flags, 0));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int close(int fd) {
        try {
            return ret((int) CLOSE.invokeExact(errnoState, fd));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public long read(int fd, MemorySegment buf, long len) {
        try {
            return ret((long) Read.H.invokeExact(errnoState, fd, buf, len));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Reads {@code len} bytes at file offset {@code offset} into {@code buf}: -errno or the bytes read. */
    public long pread(int fd, MemorySegment buf, long len, long offset) {
        try {
            return ret((long) Pread.H.invokeExact(errnoState, fd, buf, len, offset));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public long write(int fd, MemorySegment buf, long len) {
        try {
            return ret((long) Write.H.invokeExact(errnoState, fd, buf, len));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ------------------------------------------------------------------ ioctl (one handle per argument shape)

    /** An ioctl without argument; passes 0, since some (KVM_GET_API_VERSION, KVM_RUN) reject garbage. */
    public int ioctl(int fd, long request) {
        return ioctl(fd, request, 0L);
    }

    public int ioctl(int fd, long request, MemorySegment arg) {
        try {
            return ret((int) IOCTL_PTR.invokeExact(errnoState, fd, request, arg));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int ioctl(int fd, long request, long arg) {
        try {
            return ret((int) IOCTL_LONG.invokeExact(errnoState, fd, request, arg));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ------------------------------------------------------------------ memory

    /** mmap; returns the mapping reinterpreted to {@code length} bytes, or throws. */
    public MemorySegment mmapChecked(long addr, long length, int prot, int flags, int fd, long offset, String what) {
        MemorySegment r;
        try {
            r = (MemorySegment) MMAP.invokeExact(errnoState, MemorySegment.ofAddress(addr), length, prot, flags, fd, offset);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (r.address() == MAP_FAILED) {
            throw new NativeException("mmap " + what + " (" + length + " bytes)", errno());
        }
        // SAFETY: the kernel just mapped exactly `length` bytes at this address; munmap ends its life.
        return r.reinterpret(length);
    }

    public int munmap(MemorySegment mapping) {
        try {
            return ret((int) MUNMAP.invokeExact(errnoState, mapping, mapping.byteSize()));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int memfdCreate(String name, int flags) {
        try (Arena a = Arena.ofConfined()) {
            return ret((int) MEMFD_CREATE.invokeExact(errnoState, a.allocateFrom(name), flags));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int ftruncate(int fd, long length) {
        try {
            return ret((int) FTRUNCATE.invokeExact(errnoState, fd, length));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int fallocate(int fd, int mode, long offset, long length) {
        try {
            return ret((int) Fallocate.H.invokeExact(errnoState, fd, mode, offset, length));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Frees the backing store of a shared (memfd) range: the next access faults again. */
    public int punchHole(int fd, long offset, long length) {
        return fallocate(fd, PosixConstants.FALLOC_FL_PUNCH_HOLE | PosixConstants.FALLOC_FL_KEEP_SIZE, offset, length);
    }

    public int madvise(MemorySegment range, int advice) {
        try {
            return ret((int) Madvise.H.invokeExact(errnoState, range, range.byteSize(), advice));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** madvise on {@code length} bytes at {@code address} (page-aligned), which the caller has mapped. */
    public int madvise(long address, long length, int advice) {
        try {
            return ret((int) Madvise.RAW.invokeExact(errnoState, address, length, advice));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ------------------------------------------------------------------ events

    public int eventfd(int initval, int flags) {
        try {
            return ret((int) Eventfd.H.invokeExact(errnoState, initval, flags));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int poll(MemorySegment fds, long nfds, int timeoutMs) {
        try {
            return ret((int) Poll.H.invokeExact(errnoState, fds, nfds, timeoutMs));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int epollCreate1(int flags) {
        try {
            return ret((int) EpollCreate1.H.invokeExact(errnoState, flags));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int epollCtl(int epfd, int op, int fd, MemorySegment event) {
        try {
            return ret((int) EpollCtl.H.invokeExact(errnoState, epfd, op, fd, event));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int epollWait(int epfd, MemorySegment events, int maxEvents, int timeoutMs) {
        try {
            return ret((int) EpollWait.H.invokeExact(errnoState, epfd, events, maxEvents, timeoutMs));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ------------------------------------------------------------------ threads and signals

    public static int gettid() {
        try {
            return (int) GETTID.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Bytes of the CPU mask passed to sched_setaffinity: glibc's cpu_set_t, 1024 CPUs. */
    private static final long CPU_MASK_BYTES = 128;

    /**
     * Confines thread {@code tid} (0: the calling thread) to CPU {@code cpu}: 0, or -errno (EINVAL when the CPU is
     * outside the process's allowed set).
     */
    public int pinThread(int tid, int cpu) {
        if (cpu < 0 || cpu >= CPU_MASK_BYTES * 8) {
            throw new IllegalArgumentException("CPU " + cpu + " is outside 0.." + (CPU_MASK_BYTES * 8 - 1));
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment mask = a.allocate(CPU_MASK_BYTES, 8);
            mask.set(ValueLayout.JAVA_LONG, (cpu / 64) * 8L, 1L << (cpu % 64));
            return ret((int) Affinity.SET.invokeExact(errnoState, tid, CPU_MASK_BYTES, mask));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The CPU the calling thread runs on right now (sched_getcpu), or -1 if unknown. */
    public static int currentCpu() {
        try {
            return (int) Affinity.CPU.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int getpid() {
        try {
            return (int) GETPID.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int tgkill(int tgid, int tid, int sig) {
        try {
            return ret((int) TGKILL.invokeExact(errnoState, tgid, tid, sig));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** pthread_sigmask; returns 0 or -error (it does not use errno). */
    public static int pthreadSigmask(int how, MemorySegment set, MemorySegment oldSet) {
        try {
            return -(int) PTHREAD_SIGMASK.invokeExact(how, set, oldSet);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** sigtimedwait; returns the signal number, or -errno (EAGAIN when none is pending). */
    public int sigtimedwait(MemorySegment set, MemorySegment info, MemorySegment timeout) {
        try {
            return ret((int) SIGTIMEDWAIT.invokeExact(errnoState, set, info, timeout));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** sigaction with {@code act} and {@code oldAct} as struct sigaction (see abi.Sigaction); 0 or -errno. */
    public int sigaction(int sig, MemorySegment act, MemorySegment oldAct) {
        try {
            return ret((int) SIGACTION.invokeExact(errnoState, sig, act, oldAct));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The address of a libc function (for the rare case of handing the kernel a code pointer). */
    public static MemorySegment libcSymbol(String name) {
        return LIBC.findOrThrow(name);
    }

    public static int sigrtmin() {
        try {
            return (int) SIGRTMIN.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Sets bit {@code sig} in a sigset_t or a kernel sigset (both: bit sig-1 of little-endian words). */
    public static void sigaddset(MemorySegment set, int sig) {
        long word = (sig - 1) / 64;
        long bit = 1L << ((sig - 1) % 64);
        long off = word * 8;
        set.set(ValueLayout.JAVA_LONG_UNALIGNED, off, set.get(ValueLayout.JAVA_LONG_UNALIGNED, off) | bit);
    }

    public static void sigdelset(MemorySegment set, int sig) {
        long word = (sig - 1) / 64;
        long bit = 1L << ((sig - 1) % 64);
        long off = word * 8;
        set.set(ValueLayout.JAVA_LONG_UNALIGNED, off, set.get(ValueLayout.JAVA_LONG_UNALIGNED, off) & ~bit);
    }

    public static boolean sigismember(MemorySegment set, int sig) {
        long word = (sig - 1) / 64;
        return (set.get(ValueLayout.JAVA_LONG_UNALIGNED, word * 8) & (1L << ((sig - 1) % 64))) != 0;
    }

    /** The raw syscall with one argument (for userfaultfd, which glibc 2.36 does not wrap). */
    public long syscall1(long number, long arg) {
        try {
            return ret((long) Syscall1.H.invokeExact(errnoState, number, arg));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Copies through libc's memcpy. The calling thread is "in native" while it runs, so when the copy
     * faults on userfaultfd-registered guest memory and waits for the fault service, HotSpot can still
     * reach safepoints; the same access from Java code would hold every other Java thread (the fault
     * service included) at the next safepoint: a deadlock.
     */
    public static void copyNative(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, long length) {
        if (srcOffset < 0 || dstOffset < 0 || length < 0 || srcOffset > src.byteSize() - length
                || dstOffset > dst.byteSize() - length || !src.isNative() || !dst.isNative()) {
            throw new IndexOutOfBoundsException("native copy out of bounds or not native memory");
        }
        try {
            MemorySegment unused = (MemorySegment) MEMCPY.invokeExact(
                    MemorySegment.ofAddress(dst.address() + dstOffset), MemorySegment.ofAddress(src.address() + srcOffset), length);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static long pageSize() {
        try {
            return (long) SYSCONF.invokeExact(PosixConstants._SC_PAGESIZE);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static String strerror(int errno) {
        try {
            MemorySegment s = (MemorySegment) STRERROR.invokeExact(errno);
            // SAFETY: strerror returns a NUL-terminated string in static storage; read up to 256 bytes.
            return s.reinterpret(256).getString(0);
        } catch (Throwable t) {
            return "errno " + errno;
        }
    }
}
