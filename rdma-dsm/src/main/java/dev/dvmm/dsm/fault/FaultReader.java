package dev.dvmm.dsm.fault;

import dev.dvmm.bindings.Posix;
import dev.dvmm.bindings.abi.PollFd;
import dev.dvmm.bindings.abi.PosixConstants;
import dev.dvmm.bindings.abi.UffdConstants;
import dev.dvmm.bindings.abi.UffdMsg;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The thread that reads a userfaultfd and hands each page fault to a {@link Sink}.
 *
 * <p>It blocks in poll on the uffd and an eventfd (for shutdown), reads up to {@link #BATCH} messages per
 * read into one preallocated buffer, and calls the sink with primitives: nothing is allocated per
 * fault. The sink runs on this thread and must not touch the guest mapping itself (it would fault on
 * its own uffd and deadlock).
 */
public final class FaultReader implements AutoCloseable {
    /** Receives page faults on the reader thread, or on the thread that calls {@link #pollNow}. */
    public interface Sink {
        /**
         * @param pageIndex page number within the registered range
         * @param write     the access was a write
         * @param wp        the page was present but write-protected (a SHARED page written)
         * @param tid       faulting thread id, when the kernel reports it, else 0
         */
        void onFault(long pageIndex, boolean write, boolean wp, int tid);
    }

    public static final int BATCH = 64;

    private final Userfaultfd uffd;
    private final long base;
    private final long length;
    private final Sink sink;
    private final int stopFd;
    private final Thread thread;
    private volatile boolean running = true;
    private volatile Throwable failure;
    private final AtomicLong faults = new AtomicLong();
    /** Message buffer of {@link #pollNow}, whose caller is another thread than the reader's. */
    private final Arena pollArena = Arena.ofShared();
    private final MemorySegment pollMessages = pollArena.allocate(UffdMsg.SIZE * BATCH, 8);

    public FaultReader(Userfaultfd uffd, MemorySegment registered, Sink sink, String name) {
        this.uffd = uffd;
        this.base = registered.address();
        this.length = registered.byteSize();
        this.sink = sink;
        this.stopFd = Posix.check(Posix.current().eventfd(0, PosixConstants.EFD_CLOEXEC | PosixConstants.EFD_NONBLOCK),
                "eventfd");
        this.thread = Thread.ofPlatform().name(name).daemon(true).unstarted(this::run);
    }

    public void start() {
        thread.start();
    }

    private void run() {
        Posix px = Posix.current();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment fds = arena.allocate(PollFd.SIZE * 2, 8);
            PollFd.fd(fds, uffd.fd());
            PollFd.events(fds, PosixConstants.POLLIN);
            MemorySegment second = fds.asSlice(PollFd.SIZE);
            PollFd.fd(second, stopFd);
            PollFd.events(second, PosixConstants.POLLIN);
            MemorySegment msgs = arena.allocate(UffdMsg.SIZE * BATCH, 8);
            while (running) {
                int n = px.poll(fds, 2, -1);
                if (n == -PosixConstants.EINTR) {
                    continue;
                }
                Posix.check(n, "poll on userfaultfd");
                if ((PollFd.revents(second) & PosixConstants.POLLIN) != 0) {
                    break;
                }
                if ((PollFd.revents(fds) & (PosixConstants.POLLERR | PosixConstants.POLLHUP)) != 0) {
                    throw new FaultServiceException("userfaultfd reported an error or hang-up");
                }
                long got = px.read(uffd.fd(), msgs, msgs.byteSize());
                if (got == -PosixConstants.EAGAIN || got == -PosixConstants.EINTR) {
                    continue;
                }
                Posix.check(got, "read userfaultfd");
                for (long off = 0; off + UffdMsg.SIZE <= got; off += UffdMsg.SIZE) {
                    dispatch(msgs, off);
                }
            }
        } catch (Throwable t) {
            failure = t;
        }
    }

    /**
     * Reads and dispatches the faults queued right now, without blocking, on the calling thread: for one other
     * thread that polls busily (it then serves a fault before the reader thread has even woken up). Calls must not
     * overlap each other or {@link #close}. Returns how many messages it read.
     */
    public int pollNow() {
        long got = Posix.current().read(uffd.fd(), pollMessages, pollMessages.byteSize());
        if (got == -PosixConstants.EAGAIN || got == -PosixConstants.EINTR) {
            return 0;
        }
        Posix.check(got, "read userfaultfd");
        int count = 0;
        for (long off = 0; off + UffdMsg.SIZE <= got; off += UffdMsg.SIZE) {
            dispatch(pollMessages, off);
            count++;
        }
        return count;
    }

    private void dispatch(MemorySegment msgs, long off) {
        int event = Byte.toUnsignedInt(msgs.get(ValueLayout.JAVA_BYTE, off + UffdMsg.EVENT_OFFSET));
        if (event != UffdConstants.UFFD_EVENT_PAGEFAULT) {
            return;
        }
        long flags = msgs.get(ValueLayout.JAVA_LONG_UNALIGNED, off + UffdMsg.ARG_PAGEFAULT_FLAGS_OFFSET);
        long addr = msgs.get(ValueLayout.JAVA_LONG_UNALIGNED, off + UffdMsg.ARG_PAGEFAULT_ADDRESS_OFFSET);
        int tid = msgs.get(ValueLayout.JAVA_INT_UNALIGNED, off + UffdMsg.ARG_PAGEFAULT_FEAT_PTID_OFFSET);
        long rel = addr - base;
        if (rel < 0 || rel >= length) {
            throw new FaultServiceException("fault at 0x" + Long.toHexString(addr) + " outside the registered range");
        }
        faults.incrementAndGet();
        sink.onFault(rel >>> DsmPages.PAGE_SHIFT, (flags & UffdConstants.UFFD_PAGEFAULT_FLAG_WRITE) != 0,
                (flags & UffdConstants.UFFD_PAGEFAULT_FLAG_WP) != 0, tid);
    }

    public long faults() { return faults.get(); }

    /** Why the reader stopped on its own, or null. */
    public Throwable failure() { return failure; }

    @Override
    public void close() {
        running = false;
        Posix px = Posix.current();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment one = a.allocate(ValueLayout.JAVA_LONG);
            one.set(ValueLayout.JAVA_LONG, 0, 1);
            px.write(stopFd, one, 8);
        }
        try {
            thread.join(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        px.close(stopFd);
        pollArena.close();
    }
}
