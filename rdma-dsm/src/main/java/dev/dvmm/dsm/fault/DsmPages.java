package dev.dvmm.dsm.fault;

import dev.dvmm.bindings.Posix;
import dev.dvmm.bindings.abi.PosixConstants;
import dev.dvmm.bindings.abi.UffdConstants;
import dev.dvmm.bindings.abi.UffdIoctls;
import dev.dvmm.bindings.abi.UffdioContinue;
import dev.dvmm.bindings.abi.UffdioCopy;
import dev.dvmm.bindings.abi.UffdioRange;
import dev.dvmm.bindings.abi.UffdioWriteprotect;
import dev.dvmm.bindings.abi.UffdioZeropage;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The local node's hold on guest pages, by page index (memfd offset / 4 KiB): install (UFFDIO_COPY or
 * ZEROPAGE, EEXIST counted as done), upgrade (clear WP), downgrade (set WP), invalidate (punch the memfd
 * range: both mappings lose the page and KVM's MMU notifier drops it from the guest), and copy out.
 *
 * <p>Used by one thread at a time (the protocol agent): the ioctl argument structs are preallocated here
 * and reused, so nothing is allocated per page operation. Page contents are read only for pages this node holds,
 * never through the alias mapping: it would map the page a second time (a second TLB flush when it is punched)
 * and, for an absent page, silently create a zero page the guest would then see without faulting. A page that may
 * be writable or unmapped is read with pread from the memfd ({@link #copyOut}); a page mapped read-only is copied
 * out of the guest mapping ({@link #copyOutMapped}), which can fault into this very service only if the kernel
 * dropped the mapping, and another thread then maps it back ({@link #rescueCopy}).
 */
public final class DsmPages implements AutoCloseable {
    public static final int PAGE_SHIFT = 12;
    public static final long PAGE_SIZE = 1L << PAGE_SHIFT;

    private final Userfaultfd uffd;
    private final int memfd;
    private final MemorySegment guest;
    // The page copyOutMapped is reading and how many it started: read by other threads to unblock a faulted copy.
    private volatile long copyingPage = -1;
    private volatile long copySequence;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment copy = arena.allocate(UffdioCopy.LAYOUT);
    private final MemorySegment zero = arena.allocate(UffdioZeropage.LAYOUT);
    private final MemorySegment wp = arena.allocate(UffdioWriteprotect.LAYOUT);
    private final MemorySegment range = arena.allocate(UffdioRange.LAYOUT);
    private final MemorySegment cont = arena.allocate(UffdioContinue.LAYOUT);
    private final boolean minorFaults;
    private final MemorySegment zeroPage = arena.allocate(PAGE_SIZE, PAGE_SIZE);
    private long eexist;

    /**
     * @param memfd the guest memory's memfd
     * @param guest its guest mapping (registered with {@code uffd} for MISSING | WP)
     */
    public DsmPages(Userfaultfd uffd, int memfd, MemorySegment guest) {
        if (guest.byteSize() % PAGE_SIZE != 0) {
            throw new IllegalArgumentException("the guest mapping must be a whole number of pages");
        }
        this.uffd = uffd;
        this.memfd = memfd;
        this.guest = guest;
        this.minorFaults = (uffd.registeredModes() & UffdConstants.UFFDIO_REGISTER_MODE_MINOR) != 0;
    }

    /**
     * UFFDIO_CONTINUE_MODE_WP (Linux 6.5): map the page write-protected. Not in the 6.1 headers the bindings were
     * generated from; older kernels refuse the mode with EINVAL, which {@link #registerGuestMapping} probes.
     */
    static final long UFFDIO_CONTINUE_MODE_WP = 1L << 1;

    /**
     * Opens a uffd with the features the DSM needs and registers the whole guest mapping for MISSING and WP faults,
     * and for MINOR faults (a page in the memfd but not mapped) where the kernel can also map such a page back
     * write-protected; without that, {@link #freeze} write-protects instead of unmapping.
     */
    public static Userfaultfd registerGuestMapping(MemorySegment guest) {
        long needed = UffdConstants.UFFD_FEATURE_MISSING_SHMEM | UffdConstants.UFFD_FEATURE_WP_HUGETLBFS_SHMEM
                | UffdConstants.UFFD_FEATURE_PAGEFAULT_FLAG_WP | UffdConstants.UFFD_FEATURE_THREAD_ID;
        boolean minor = (Userfaultfd.supportedFeatures() & UffdConstants.UFFD_FEATURE_MINOR_SHMEM) != 0;
        Userfaultfd u = Userfaultfd.open(needed | (minor ? UffdConstants.UFFD_FEATURE_MINOR_SHMEM : 0));
        try {
            long modes = UffdConstants.UFFDIO_REGISTER_MODE_MISSING | UffdConstants.UFFDIO_REGISTER_MODE_WP;
            if (minor) {
                u.register(guest, modes | UffdConstants.UFFDIO_REGISTER_MODE_MINOR);
                if (!continueTakesWriteProtect(u, guest)) {
                    u.unregister(guest);
                    u.register(guest, modes);
                }
            } else {
                u.register(guest, modes);
            }
            return u;
        } catch (RuntimeException e) {
            u.close();
            throw e;
        }
    }

    /** Whether UFFDIO_CONTINUE accepts MODE_WP: asked of page 0, which is absent (EFAULT) or already mapped. */
    private static boolean continueTakesWriteProtect(Userfaultfd u, MemorySegment guest) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment c = a.allocate(UffdioContinue.LAYOUT);
            UffdioContinue.rangeStart(c, guest.address());
            UffdioContinue.rangeLen(c, PAGE_SIZE);
            UffdioContinue.mode(c, UFFDIO_CONTINUE_MODE_WP | UffdConstants.UFFDIO_CONTINUE_MODE_DONTWAKE);
            return Posix.current().ioctl(u.fd(), UffdIoctls.UFFDIO_CONTINUE, c) != -PosixConstants.EINVAL;
        }
    }

    /** Whether {@link #freeze} unmaps (MINOR faults registered) rather than write-protects. */
    public boolean freezesByUnmapping() { return minorFaults; }

    public long pages() { return guest.byteSize() >>> PAGE_SHIFT; }

    private long check(long page) {
        if (page < 0 || page >= pages()) {
            throw new FaultServiceException("page " + page + " is outside guest memory (" + pages() + " pages)");
        }
        return page << PAGE_SHIFT;
    }

    /** Installs {@code src} (4 KiB) as page {@code page}, read-only unless {@code writable}; wakes faulters. */
    public void install(long page, MemorySegment src, boolean writable) {
        install(page, src, 0, writable);
    }

    /** Installs the 4 KiB at {@code src + srcOffset} (native memory, e.g. a receive buffer) as page {@code page}. */
    public void install(long page, MemorySegment src, long srcOffset, boolean writable) {
        long off = check(page);
        if (srcOffset < 0 || srcOffset + PAGE_SIZE > src.byteSize() || !src.isNative()) {
            throw new FaultServiceException("page source is not 4 KiB of native memory");
        }
        UffdioCopy.dst(copy, guest.address() + off);
        UffdioCopy.src(copy, src.address() + srcOffset);
        UffdioCopy.len(copy, PAGE_SIZE);
        UffdioCopy.mode(copy, writable ? 0 : UffdConstants.UFFDIO_COPY_MODE_WP);
        UffdioCopy.copy(copy, 0);
        int r = Posix.current().ioctl(uffd.fd(), UffdIoctls.UFFDIO_COPY, copy);
        if (r == -PosixConstants.EEXIST) {
            // Already present (a racing fault was resolved first): make sure every waiter runs.
            eexist++;
            wake(page);
            return;
        }
        if (r < 0) {
            throw new FaultServiceException("UFFDIO_COPY of page " + page + " failed: " + Posix.strerror(-r));
        }
    }

    /** Installs a zero page: a never-written page needs no data transfer. */
    public void installZero(long page, boolean writable) {
        if (!writable) {
            install(page, zeroPage, false);
            return;
        }
        long off = check(page);
        UffdioZeropage.rangeStart(zero, guest.address() + off);
        UffdioZeropage.rangeLen(zero, PAGE_SIZE);
        UffdioZeropage.mode(zero, 0);
        int r = Posix.current().ioctl(uffd.fd(), UffdIoctls.UFFDIO_ZEROPAGE, zero);
        if (r == -PosixConstants.EEXIST) {
            eexist++;
            wake(page);
            return;
        }
        if (r < 0) {
            throw new FaultServiceException("UFFDIO_ZEROPAGE of page " + page + " failed: " + Posix.strerror(-r));
        }
    }

    /** SHARED -> MODIFIED: clears write protection and wakes the writer. */
    public void upgrade(long page) {
        writeProtect(page, false);
    }

    /** MODIFIED -> SHARED: later writes fault with WP. */
    public void downgrade(long page) {
        writeProtect(page, true);
    }

    private void writeProtect(long page, boolean protect) {
        long off = check(page);
        UffdioWriteprotect.rangeStart(wp, guest.address() + off);
        UffdioWriteprotect.rangeLen(wp, PAGE_SIZE);
        UffdioWriteprotect.mode(wp, protect ? UffdConstants.UFFDIO_WRITEPROTECT_MODE_WP : 0);
        int r = Posix.current().ioctl(uffd.fd(), UffdIoctls.UFFDIO_WRITEPROTECT, wp);
        if (r < 0) {
            throw new FaultServiceException("UFFDIO_WRITEPROTECT " + (protect ? "set" : "clear") + " on page " + page
                    + " failed: " + Posix.strerror(-r));
        }
    }

    /**
     * Stops all writes to a page this node holds writable, before its contents are copied out to hand it on. With
     * MINOR faults registered the page leaves the guest mapping and stays in the memfd (the next access faults
     * MINOR): one TLB flush, after which punching it costs no second one (measured here with another thread of the
     * process on the other CPU: unmap 12.6 us + punch 2.0 us, against write-protect ~14 us + punch 16.5 us). Otherwise
     * it is write-protected. Either way {@link #remap} or {@link #upgrade} (write-protect only) gives it back.
     */
    public void freeze(long page) {
        if (!minorFaults) {
            writeProtect(page, true);
            return;
        }
        long off = check(page);
        int r = Posix.current().madvise(guest.address() + off, PAGE_SIZE, PosixConstants.MADV_DONTNEED);
        if (r < 0) {
            throw new FaultServiceException("unmapping page " + page + " from the guest mapping failed: "
                    + Posix.strerror(-r));
        }
    }

    /**
     * Maps a page that is in the memfd but not in the guest mapping (after {@link #freeze}, or after the kernel
     * dropped the mapping, e.g. to reclaim memory) back, read-only unless {@code writable}, and wakes its faulters.
     * Returns false if the memfd holds no such page. Only with MINOR faults registered.
     */
    public boolean remap(long page, boolean writable) {
        check(page);
        if (!minorFaults) {
            throw new IllegalStateException("remap needs MINOR faults, which this guest mapping is not registered for");
        }
        int r = mapFromMemfd(cont, range, page, writable);
        if (r == 0) {
            eexist++;
        }
        return r >= 0;
    }

    /**
     * UFFDIO_CONTINUE of one page with the given argument structs: 1 if mapped, 0 if it was mapped already (its
     * faulters are woken), -1 if the memfd holds no such page.
     */
    private int mapFromMemfd(MemorySegment cont, MemorySegment wakeRange, long page, boolean writable) {
        long addr = guest.address() + page * PAGE_SIZE;
        UffdioContinue.rangeStart(cont, addr);
        UffdioContinue.rangeLen(cont, PAGE_SIZE);
        UffdioContinue.mode(cont, writable ? 0 : UFFDIO_CONTINUE_MODE_WP);
        UffdioContinue.mapped(cont, 0);
        int r = Posix.current().ioctl(uffd.fd(), UffdIoctls.UFFDIO_CONTINUE, cont);
        if (r == -PosixConstants.EEXIST) {
            UffdioRange.start(wakeRange, addr);
            UffdioRange.len(wakeRange, PAGE_SIZE);
            Posix.current().ioctl(uffd.fd(), UffdIoctls.UFFDIO_WAKE, wakeRange);
            return 0;
        }
        if (r == -PosixConstants.EFAULT) {
            return -1;
        }
        if (r < 0) {
            throw new FaultServiceException("UFFDIO_CONTINUE of page " + page + " failed: " + Posix.strerror(-r));
        }
        return 1;
    }

    /** Drops the page from this node: the memfd range is punched, the next guest access faults MISSING. */
    public void invalidate(long page) {
        long off = check(page);
        int r = Posix.current().punchHole(memfd, off, PAGE_SIZE);
        if (r < 0) {
            throw new FaultServiceException("punching page " + page + " failed: " + Posix.strerror(-r));
        }
    }

    /** Wakes threads waiting on a page that is already present. */
    public void wake(long page) {
        long off = check(page);
        UffdioRange.start(range, guest.address() + off);
        UffdioRange.len(range, PAGE_SIZE);
        Posix.current().ioctl(uffd.fd(), UffdIoctls.UFFDIO_WAKE, range);
    }

    /**
     * Copies a page this node holds out of the memfd with pread, into the first 4 KiB of {@code dst} (native memory).
     * Not through the alias mapping: a read there maps the page in a second place, and the punch that later drops it
     * must then flush the TLB for both mappings (measured here: 29.5 us instead of 14.4 with a thread of this process
     * on another CPU). pread maps nothing, and of a hole it reads zeros without allocating one.
     */
    public void copyOut(long page, MemorySegment dst) {
        long off = check(page);
        checkCopyDestination(dst);
        long n = Posix.current().pread(memfd, dst, PAGE_SIZE, off);
        if (n != PAGE_SIZE) {
            throw new FaultServiceException("reading page " + page + " from guest memory failed: "
                    + (n < 0 ? Posix.strerror((int) -n) : "short read of " + n + " bytes"));
        }
    }

    /**
     * Copies a page this node holds and has mapped read-only out through the guest mapping, into the first 4 KiB of
     * {@code dst}: a memcpy instead of pread's system call (0.6-0.8 against 1.7 us per page in bench fault's trace). The
     * caller guarantees that no thread can write the page meanwhile (it is write-protected) and that the memfd holds
     * it. Should the mapping be gone after all (the kernel reclaimed it), the copy faults into this very uffd and
     * blocks until another thread calls {@link #rescueCopy} for {@link #copyingPage()}; the copy is a native call, so a
     * blocked copier does not stop the JVM's safepoints. Pages that may be unmapped on purpose (frozen) go through
     * {@link #copyOut}.
     */
    public void copyOutMapped(long page, MemorySegment dst) {
        long off = check(page);
        checkCopyDestination(dst);
        copySequence++;
        copyingPage = page;
        try {
            Posix.copyNative(guest, off, dst, 0, PAGE_SIZE);
        } finally {
            copyingPage = -1;
        }
    }

    private static void checkCopyDestination(MemorySegment dst) {
        if (dst.byteSize() < PAGE_SIZE || !dst.isNative()) {
            throw new FaultServiceException("copy-out destination is not 4 KiB of native memory");
        }
    }

    /** The page a {@link #copyOutMapped} is copying right now, or -1. */
    public long copyingPage() { return copyingPage; }

    /** Counts {@link #copyOutMapped} calls: a copy still running with the same count a while later is stuck. */
    public long copySequence() { return copySequence; }

    /**
     * Unblocks a {@link #copyOutMapped} of {@code page} that faulted: maps the page read-only from the memfd, or, if it
     * is mapped already, wakes its faulters. Any thread, concurrently with the copier, without the caller's lock, so
     * possibly late: read-only is safe in every state in which the memfd holds the page (a held page may be read; a
     * write to a SHARED page faults WP into the protocol, and the DSM gives a MODIFIED page found write-protected its
     * write access back). Returns 1 if it mapped the page, 0 if it was mapped already (its faulters are woken), -1 if
     * the memfd no longer holds the page (the copy finished and the page was dropped since) or MINOR faults are not
     * registered (then the kernel maps a memfd page itself and the copy cannot block).
     */
    public int rescueCopy(long page) {
        check(page);
        if (!minorFaults) {
            return -1;
        }
        try (Arena a = Arena.ofConfined()) {
            return mapFromMemfd(a.allocate(UffdioContinue.LAYOUT), a.allocate(UffdioRange.LAYOUT), page, false);
        }
    }

    /** Installs that lost a race to another resolution of the same page. */
    public long eexistCount() { return eexist; }

    @Override
    public void close() {
        arena.close();
    }
}
