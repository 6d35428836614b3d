package dev.dvmm.dsm.fault;

import dev.dvmm.bindings.Posix;
import dev.dvmm.bindings.abi.PosixConstants;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The DSM page mechanism on a memfd mapped twice, driven by JVM threads that touch the guest mapping
 * (exactly what device models doing DMA will do): faults reach the reader, installs wake the thread,
 * write-protection and punch-hole invalidation behave as the protocol needs.
 */
class DsmPagesTest {
    private static final int PAGES = 16;
    private final Posix px = Posix.current();
    private int memfd;
    private MemorySegment guest;
    private MemorySegment alias;
    private Userfaultfd uffd;
    private DsmPages pages;
    private FaultReader reader;
    private final ConcurrentLinkedQueue<String> log = new ConcurrentLinkedQueue<>();
    private final AtomicInteger missing = new AtomicInteger();
    private final AtomicInteger wpFaults = new AtomicInteger();
    private final AtomicInteger remaps = new AtomicInteger();
    private final Arena arena = Arena.ofShared();
    private MemorySegment source;

    @BeforeEach
    void setUp() {
        dev.dvmm.dsm.UffdAvailable.assume();
        long len = PAGES * DsmPages.PAGE_SIZE;
        memfd = Posix.check(px.memfdCreate("dsm-test", PosixConstants.MFD_CLOEXEC), "memfd");
        Posix.check(px.ftruncate(memfd, len), "ftruncate");
        int rw = PosixConstants.PROT_READ | PosixConstants.PROT_WRITE;
        guest = px.mmapChecked(0, len, rw, PosixConstants.MAP_SHARED, memfd, 0, "guest");
        alias = px.mmapChecked(0, len, rw, PosixConstants.MAP_SHARED, memfd, 0, "alias");
        uffd = DsmPages.registerGuestMapping(guest);
        pages = new DsmPages(uffd, memfd, guest);
        source = arena.allocate(DsmPages.PAGE_SIZE, DsmPages.PAGE_SIZE);
        // A tiny single-node "protocol": even pages are zero pages installed writable; odd pages get a
        // pattern and start read-only (SHARED); a write to a read-only page upgrades it.
        reader = new FaultReader(uffd, guest, (page, write, wp, tid) -> {
            if (!wp && pages.freezesByUnmapping()) {
                // In the memfd but not mapped (frozen by the test): no new contents. Counted before the remap
                // wakes the faulting thread, which the test may then check.
                remaps.incrementAndGet();
                log.add("remap " + page);
                if (pages.remap(page, true)) {
                    return;
                }
                remaps.decrementAndGet();
                log.add("absent " + page);
            }
            if (wp) {
                wpFaults.incrementAndGet();
                log.add("wp " + page);
                pages.upgrade(page);
                return;
            }
            missing.incrementAndGet();
            log.add((write ? "write-miss " : "read-miss ") + page);
            if (page % 2 == 0) {
                pages.installZero(page, true);
            } else {
                for (long i = 0; i < DsmPages.PAGE_SIZE; i += 8) {
                    source.set(ValueLayout.JAVA_LONG, i, page * 1_000_000 + i);
                }
                pages.install(page, source, write);
            }
        }, "uffd-test");
        reader.start();
    }

    @AfterEach
    void tearDown() {
        if (reader != null) {
            reader.close();
            assertNull(reader.failure(), "fault reader failed");
            pages.close();
            uffd.close();
            px.munmap(guest);
            px.munmap(alias);
            px.close(memfd);
        }
        if (memfd2 >= 0) {
            px.munmap(guest2);
            px.munmap(alias2);
            px.close(memfd2);
        }
        arena.close();
    }

    private long readFromAnotherThread(long offset) throws Exception {
        long[] v = new long[1];
        Thread t = Thread.ofPlatform().start(() -> v[0] = dev.dvmm.dsm.NativeAccess.get(guest, offset));
        t.join(10_000);
        assertTrue(!t.isAlive(), "thread blocked on a fault that was never resolved");
        return v[0];
    }

    @Test
    void jvmThreadsFaultAndSeeInstalledContents() {
        assertTimeoutPreemptively(java.time.Duration.ofSeconds(30), () -> {
            assertEquals(3 * 1_000_000 + 64, readFromAnotherThread(3 * DsmPages.PAGE_SIZE + 64));
            assertEquals(0, readFromAnotherThread(4 * DsmPages.PAGE_SIZE + 8));
            assertEquals(2, missing.get());
            // Present pages no longer fault, and the alias sees the same bytes.
            assertEquals(3 * 1_000_000 + 64, dev.dvmm.dsm.NativeAccess.get(guest, 3 * DsmPages.PAGE_SIZE + 64));
            assertEquals(3 * 1_000_000 + 64, alias.get(ValueLayout.JAVA_LONG, 3 * DsmPages.PAGE_SIZE + 64));
            assertEquals(2, missing.get());
        });
    }

    @Test
    void writeToAReadOnlyPageFaultsWpAndUpgradeLetsItThrough() {
        assertTimeoutPreemptively(java.time.Duration.ofSeconds(30), () -> {
            readFromAnotherThread(5 * DsmPages.PAGE_SIZE);            // read miss: installed read-only
            Thread w = Thread.ofPlatform().start(() -> dev.dvmm.dsm.NativeAccess.set(guest, 5 * DsmPages.PAGE_SIZE, 42L));
            w.join(10_000);
            assertTrue(!w.isAlive(), "writer never resumed after the upgrade");
            assertEquals(1, wpFaults.get(), String.valueOf(log));
            assertEquals(42L, alias.get(ValueLayout.JAVA_LONG, 5 * DsmPages.PAGE_SIZE));
            // Downgrade: the next write faults WP again.
            pages.downgrade(5);
            Thread w2 = Thread.ofPlatform().start(() -> dev.dvmm.dsm.NativeAccess.set(guest, 5 * DsmPages.PAGE_SIZE, 43L));
            w2.join(10_000);
            assertEquals(2, wpFaults.get(), String.valueOf(log));
            assertEquals(43L, alias.get(ValueLayout.JAVA_LONG, 5 * DsmPages.PAGE_SIZE));
        });
    }

    @Test
    void invalidatedPagesFaultAgainAndLoseTheirContents() {
        assertTimeoutPreemptively(java.time.Duration.ofSeconds(30), () -> {
            Thread w = Thread.ofPlatform().start(() -> dev.dvmm.dsm.NativeAccess.set(guest, 6 * DsmPages.PAGE_SIZE, 99L));
            w.join(10_000);
            assertEquals(99L, alias.get(ValueLayout.JAVA_LONG, 6 * DsmPages.PAGE_SIZE));
            assertEquals(1, missing.get());
            pages.invalidate(6);
            assertEquals(0L, readFromAnotherThread(6 * DsmPages.PAGE_SIZE), "a fresh zero page after invalidation");
            assertEquals(2, missing.get(), "the access after invalidation faulted again: " + log);
        });
    }

    @Test
    void copyOutReadsWhatTheGuestWroteAndLeavesAbsentPagesAbsent() {
        assertTimeoutPreemptively(java.time.Duration.ofSeconds(30), () -> {
            Thread w = Thread.ofPlatform().start(() -> dev.dvmm.dsm.NativeAccess.set(guest, 8 * DsmPages.PAGE_SIZE + 16, 77L));
            w.join(10_000);
            assertEquals(1, missing.get());
            MemorySegment out = arena.allocate(DsmPages.PAGE_SIZE, DsmPages.PAGE_SIZE);
            out.fill((byte) 0x5a);
            pages.copyOut(8, out);
            assertEquals(77L, out.get(ValueLayout.JAVA_LONG, 16));
            assertEquals(0L, out.get(ValueLayout.JAVA_LONG, 0), "the rest of the zero page");
            // An absent page reads as zeros and stays absent: the guest's next access still faults.
            out.fill((byte) 0x5a);
            pages.copyOut(10, out);
            assertEquals(0L, out.get(ValueLayout.JAVA_LONG, 0));
            assertEquals(0L, out.get(ValueLayout.JAVA_LONG, DsmPages.PAGE_SIZE - 8));
            assertEquals(0L, readFromAnotherThread(10 * DsmPages.PAGE_SIZE));
            assertEquals(2, missing.get(), "copying an absent page out must not allocate it: " + log);
            FaultServiceException e = org.junit.jupiter.api.Assertions.assertThrows(FaultServiceException.class,
                    () -> pages.copyOut(8, arena.allocate(64)));
            assertTrue(e.getMessage().contains("4 KiB"), e.getMessage());
        });
    }

    @Test
    void aFrozenPageKeepsItsContentsAndMapsBackAsAsked() {
        assertTimeoutPreemptively(java.time.Duration.ofSeconds(30), () -> {
            org.junit.jupiter.api.Assumptions.assumeTrue(pages.freezesByUnmapping(),
                    "this kernel cannot map a page back write-protected (UFFDIO_CONTINUE_MODE_WP, Linux 6.5):"
                    + " freeze write-protects instead");
            long at = 12 * DsmPages.PAGE_SIZE + 40;
            Thread w = Thread.ofPlatform().start(() -> dev.dvmm.dsm.NativeAccess.set(guest, at, 0x1234L));
            w.join(10_000);
            assertEquals(1, missing.get());
            pages.freeze(12);
            // Unmapped, still in the memfd: the copy-out reads it, the next access faults and is mapped back.
            MemorySegment out = arena.allocate(DsmPages.PAGE_SIZE, DsmPages.PAGE_SIZE);
            pages.copyOut(12, out);
            assertEquals(0x1234L, out.get(ValueLayout.JAVA_LONG, 40));
            assertEquals(0x1234L, readFromAnotherThread(at));
            assertEquals(1, remaps.get(), String.valueOf(log));
            assertEquals(1, missing.get(), "no new contents: " + log);
            // Mapped back read-only, a write faults WP.
            pages.freeze(12);
            assertTrue(pages.remap(12, false));
            Thread w2 = Thread.ofPlatform().start(() -> dev.dvmm.dsm.NativeAccess.set(guest, at, 0x5678L));
            w2.join(10_000);
            assertTrue(!w2.isAlive(), "writer never resumed");
            assertEquals(1, wpFaults.get(), String.valueOf(log));
            assertEquals(0x5678L, alias.get(ValueLayout.JAVA_LONG, at));
            // Frozen and then punched: gone, the next access faults MISSING and sees a fresh page.
            pages.freeze(12);
            pages.invalidate(12);
            assertTrue(!pages.remap(12, true), "nothing to map back after the punch");
            assertEquals(0L, readFromAnotherThread(at));
            assertEquals(2, missing.get(), String.valueOf(log));
        });
    }

    @Test
    void aCopyThroughTheMappingThatFaultsWaitsUntilAnotherThreadMapsThePageBack() {
        assertTimeoutPreemptively(java.time.Duration.ofSeconds(30), () -> {
            org.junit.jupiter.api.Assumptions.assumeTrue(pages.freezesByUnmapping(),
                    "this kernel has no MINOR faults with write-protected map-back (Linux 6.5): a memfd page that is"
                    + " not mapped is mapped by the kernel, and such a copy cannot block");
            // A uffd nobody reads: only rescueCopy can serve a fault on it.
            Userfaultfd second = DsmPages.registerGuestMapping(guest2());
            try (second; DsmPages p2 = new DsmPages(second, memfd2, guest2)) {
                source.set(ValueLayout.JAVA_LONG, 64, 0xC0FFEEL);
                p2.install(3, source, false);
                MemorySegment out = arena.allocate(DsmPages.PAGE_SIZE, DsmPages.PAGE_SIZE);
                long before = p2.copySequence();
                p2.copyOutMapped(3, out);
                assertEquals(0xC0FFEEL, out.get(ValueLayout.JAVA_LONG, 64), "a mapped page copies at once");
                assertEquals(before + 1, p2.copySequence());
                assertEquals(-1, p2.copyingPage());
                p2.freeze(3); // unmapped, still in the memfd
                MemorySegment out2 = arena.allocate(DsmPages.PAGE_SIZE, DsmPages.PAGE_SIZE);
                Thread copier = Thread.ofPlatform().daemon(true).start(() -> p2.copyOutMapped(3, out2));
                copier.join(300);
                assertTrue(copier.isAlive(), "the copy of an unmapped page waits for its fault to be served");
                assertEquals(3, p2.copyingPage());
                assertEquals(1, p2.rescueCopy(3));
                copier.join(10_000);
                assertTrue(!copier.isAlive(), "the copier resumed after the rescue");
                assertEquals(0xC0FFEEL, out2.get(ValueLayout.JAVA_LONG, 64));
                assertEquals(-1, p2.copyingPage());
                assertEquals(0, p2.rescueCopy(3), "a mapped page: the rescue only wakes");
                p2.invalidate(3);
                assertEquals(-1, p2.rescueCopy(3), "a dropped page is not mapped back");
            }
        });
    }

    @Test
    void anotherThreadCanTakeFaultsOffTheUffdWithoutBlocking() {
        assertTimeoutPreemptively(java.time.Duration.ofSeconds(30), () -> {
            // A second reader whose thread never runs: only pollNow on this thread reads its uffd.
            Userfaultfd second = DsmPages.registerGuestMapping(guest2());
            ConcurrentLinkedQueue<Long> polled = new ConcurrentLinkedQueue<>();
            DsmPages secondPages = new DsmPages(second, memfd2, guest2);
            FaultReader idle = new FaultReader(second, guest2, (page, write, wp, tid) -> {
                polled.add(page);
                secondPages.installZero(page, true);
            }, "uffd-poll-test");
            try {
                assertEquals(0, idle.pollNow(), "nothing queued: returns at once");
                Thread t = Thread.ofPlatform().start(() -> dev.dvmm.dsm.NativeAccess.set(guest2, 7 * DsmPages.PAGE_SIZE, 5L));
                int got = 0;
                while (got == 0 && t.isAlive()) {
                    got = idle.pollNow();
                }
                t.join(10_000);
                assertTrue(!t.isAlive(), "the faulting thread was never woken");
                assertEquals(1, got);
                assertEquals(java.util.List.of(7L), java.util.List.copyOf(polled));
                assertEquals(5L, alias2.get(ValueLayout.JAVA_LONG, 7 * DsmPages.PAGE_SIZE));
            } finally {
                idle.close();
                secondPages.close();
                second.close();
            }
        });
    }

    private int memfd2 = -1;
    private MemorySegment guest2;
    private MemorySegment alias2;

    /** A second guest memory with no fault reader thread of its own. */
    private MemorySegment guest2() {
        long len = PAGES * DsmPages.PAGE_SIZE;
        memfd2 = Posix.check(px.memfdCreate("dsm-test-2", PosixConstants.MFD_CLOEXEC), "memfd");
        Posix.check(px.ftruncate(memfd2, len), "ftruncate");
        int rw = PosixConstants.PROT_READ | PosixConstants.PROT_WRITE;
        guest2 = px.mmapChecked(0, len, rw, PosixConstants.MAP_SHARED, memfd2, 0, "guest");
        alias2 = px.mmapChecked(0, len, rw, PosixConstants.MAP_SHARED, memfd2, 0, "alias");
        return guest2;
    }

    @Test
    void pageIndicesOutsideGuestMemoryAreRejected() {
        FaultServiceException e = org.junit.jupiter.api.Assertions.assertThrows(FaultServiceException.class,
                () -> pages.invalidate(PAGES));
        assertTrue(e.getMessage().contains("outside guest memory"), e.getMessage());
    }
}
