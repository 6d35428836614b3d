package dev.dvmm.dsm.node;

import dev.dvmm.dsm.protocol.MessageType;
import dev.dvmm.dsm.protocol.ProtocolConfig;
import dev.dvmm.dsm.transport.OutboundMessage;
import dev.dvmm.dsm.transport.Transport;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Two DSM nodes in one JVM, each with its own memfd guest memory, userfaultfd and TCP transport: JVM
 * threads reading and writing through the guest mappings (what device models doing DMA do) see one
 * coherent memory.
 */
class DsmNodePairTest {
    private static final int PAGES = 64;
    private LocalDsmCluster cluster;
    private final MemorySegment[] guest = new MemorySegment[2];
    private final DsmNode[] nodes = new DsmNode[2];
    private final Transport[] transports = new Transport[2];

    @BeforeEach
    void setUp() throws Exception {
        dev.dvmm.dsm.UffdAvailable.assume();
        cluster = new LocalDsmCluster(new ProtocolConfig(2, PAGES, 1, 0, 1024), null);
        for (int r = 0; r < 2; r++) {
            guest[r] = cluster.guest(r);
            nodes[r] = cluster.node(r);
            transports[r] = cluster.transport(r);
        }
    }

    @AfterEach
    void tearDown() {
        if (cluster != null) {
            String failure = cluster.failure();
            cluster.close();
            assertNull(failure);
        }
    }

    /** Runs {@code body} on a fresh platform thread (the test thread must not block on a fault forever). */
    private static void onThread(Runnable body) throws InterruptedException {
        Thread t = Thread.ofPlatform().start(body);
        t.join(20_000);
        assertTrue(!t.isAlive(), "a thread touching guest memory never resumed");
    }

    @Test
    void writesOnOneNodeAreReadOnTheOtherAndBack() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            long[] seen = new long[4];
            onThread(() -> dev.dvmm.dsm.NativeAccess.set(guest[0], 5 * 4096 + 16, 0xA11CEL));
            onThread(() -> seen[0] = dev.dvmm.dsm.NativeAccess.get(guest[1], 5 * 4096 + 16));
            assertEquals(0xA11CEL, seen[0], "node 1 reads what node 0 wrote");
            onThread(() -> dev.dvmm.dsm.NativeAccess.set(guest[1], 5 * 4096 + 16, 0xB0BL));
            onThread(() -> seen[1] = dev.dvmm.dsm.NativeAccess.get(guest[0], 5 * 4096 + 16));
            assertEquals(0xB0BL, seen[1], "node 0 reads node 1's later write, not its stale copy");
            onThread(() -> seen[2] = dev.dvmm.dsm.NativeAccess.get(guest[1], 9 * 4096));
            assertEquals(0, seen[2], "a never-written page reads as zeros");
            assertTrue(nodes[0].stats().invalidationsReceived() + nodes[1].stats().invalidationsReceived() >= 1,
                    "the stale copy was invalidated");
            assertTrue(nodes[1].stats().zeroFills() >= 1);
        });
    }

    @Test
    void aHeldPageTheKernelUnmappedIsMappedBackWithItsProtection() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            assumeMapBackWriteProtected(1);
            long at = 7 * 4096 + 24;
            long[] seen = new long[3];
            onThread(() -> dev.dvmm.dsm.NativeAccess.set(guest[0], at, 41L));
            onThread(() -> seen[0] = dev.dvmm.dsm.NativeAccess.get(guest[1], at));
            assertEquals(41L, seen[0]);
            // Both hold the page read-only now. Drop node 1's mapping of it as reclaim would: the data stays in its
            // memfd, and the next access faults MINOR.
            int r = dev.dvmm.bindings.Posix.current().madvise(guest[1].address() + 7 * 4096, 4096,
                    dev.dvmm.bindings.abi.PosixConstants.MADV_DONTNEED);
            assertEquals(0, r);
            onThread(() -> seen[1] = dev.dvmm.dsm.NativeAccess.get(guest[1], at));
            assertEquals(41L, seen[1], "the page came back with its contents, no fetch");
            assertEquals(1, nodes[1].stats().remaps());
            // Mapped back read-only: a write still goes through the protocol, so node 0 sees it.
            onThread(() -> dev.dvmm.dsm.NativeAccess.set(guest[1], at, 42L));
            onThread(() -> seen[2] = dev.dvmm.dsm.NativeAccess.get(guest[0], at));
            assertEquals(42L, seen[2], "node 0 reads node 1's write after the remap");
        });
    }

    @Test
    void anOwnerWhoseMappingTheKernelDroppedStillServesAReadWithItsData() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            assumeMapBackWriteProtected(0);
            long at = 13 * 4096 + 16;
            long[] seen = new long[3];
            onThread(() -> dev.dvmm.dsm.NativeAccess.set(guest[0], at, 41L));
            // Node 0 owns the page, written. Drop its mapping as reclaim would: the copy of the page's data it makes
            // for node 1's read (through that mapping) faults on node 0's own uffd, and its fault reader maps the
            // page back without the lock the copy holds.
            assertEquals(0, unmapFromGuest(0, 13));
            onThread(() -> seen[0] = dev.dvmm.dsm.NativeAccess.get(guest[1], at));
            assertEquals(41L, seen[0], "node 1 reads node 0's data");
            assertEquals(1, nodes[0].stats().copyRescues());
            onThread(() -> seen[1] = dev.dvmm.dsm.NativeAccess.get(guest[0], at));
            assertEquals(41L, seen[1]);
            // Mapped back read-only: node 0's next write goes through the protocol, so node 1 sees it.
            onThread(() -> dev.dvmm.dsm.NativeAccess.set(guest[0], at, 43L));
            onThread(() -> seen[2] = dev.dvmm.dsm.NativeAccess.get(guest[1], at));
            assertEquals(43L, seen[2], "node 1 reads node 0's later write, not its stale copy");
        });
    }

    @Test
    void aCopyThatFaultsWhileTheFaultReaderWaitsForTheLockIsRescuedByTheCopyWatch() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            assumeMapBackWriteProtected(0);
            onThread(() -> dev.dvmm.dsm.NativeAccess.set(guest[0], 9 * 4096, 1L));
            onThread(() -> dev.dvmm.dsm.NativeAccess.set(guest[0], 11 * 4096 + 8, 77L));
            assertEquals(0, unmapFromGuest(0, 9));
            assertEquals(0, unmapFromGuest(0, 11));
            MemorySegment out = java.lang.foreign.Arena.ofAuto().allocate(4096, 4096);
            long[] seen = new long[1];
            Thread[] toucher = new Thread[1];
            nodes[0].underLockForTest(() -> {
                // A fault the fault reader takes and then waits for this lock with; the copy's own fault after it is
                // read by no one, and only the copy watch (which never takes the lock) can end it.
                toucher[0] = Thread.ofPlatform().daemon(true)
                        .start(() -> seen[0] = dev.dvmm.dsm.NativeAccess.get(guest[0], 9 * 4096));
                try {
                    Thread.sleep(200);
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
                nodes[0].pagesForTest().copyOutMapped(11, out);
            });
            assertEquals(77L, out.get(java.lang.foreign.ValueLayout.JAVA_LONG, 8));
            toucher[0].join(10_000);
            assertTrue(!toucher[0].isAlive(), "the other faulting thread resumed");
            assertEquals(1L, seen[0]);
            assertEquals(1, nodes[0].stats().copyRescues());
        });
    }

    @Test
    void aModifiedPageALateRescueMappedReadOnlyGetsItsWriteAccessBack() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            assumeMapBackWriteProtected(0);
            long at = 15 * 4096 + 32;
            long[] seen = new long[1];
            onThread(() -> dev.dvmm.dsm.NativeAccess.set(guest[0], at, 5L));
            // Node 0 holds the page MODIFIED. A rescue of an earlier copy that comes late (it runs without the lock)
            // maps it back read-only after the kernel dropped the mapping: node 0's next write faults WP on a page
            // it may write, and must get its access back instead of faulting forever.
            assertEquals(0, unmapFromGuest(0, 15));
            nodes[0].underLockForTest(() -> assertEquals(1, nodes[0].pagesForTest().rescueCopy(15)));
            onThread(() -> dev.dvmm.dsm.NativeAccess.set(guest[0], at, 6L));
            onThread(() -> seen[0] = dev.dvmm.dsm.NativeAccess.get(guest[1], at));
            assertEquals(6L, seen[0], "node 1 reads node 0's write");
        });
    }

    /** Skips a test that needs node {@code r}'s guest mapping registered for MINOR faults (see DsmPages). */
    private void assumeMapBackWriteProtected(int r) {
        org.junit.jupiter.api.Assumptions.assumeTrue(nodes[r].freezesByUnmapping(),
                "this kernel cannot map a page back write-protected (UFFDIO_CONTINUE_MODE_WP, Linux 6.5)");
    }

    /** Drops node {@code r}'s mapping of one page as reclaim would (the memfd keeps the data); the madvise result. */
    private int unmapFromGuest(int r, int page) {
        return dev.dvmm.bindings.Posix.current().madvise(guest[r].address() + page * 4096L, 4096,
                dev.dvmm.bindings.abi.PosixConstants.MADV_DONTNEED);
    }

    @Test
    void manyPagesWrittenConcurrentlyByBothNodesEndCoherent() {
        assertTimeoutPreemptively(Duration.ofSeconds(120), () -> {
            // Each node's thread increments one word in every page, 20 rounds, under no lock: but
            // rounds alternate through a turn variable in page 0, so the final value is exact.
            Thread[] t = new Thread[2];
            for (int r = 0; r < 2; r++) {
                final int me = r;
                t[r] = Thread.ofPlatform().start(() -> {
                    for (int round = 0; round < 20; round++) {
                        while (dev.dvmm.dsm.NativeAccess.get(guest[me], 0) % 2 != me) {
                            Thread.onSpinWait();
                        }
                        for (int p = 1; p < PAGES; p++) {
                            long off = p * 4096L + 8;
                            dev.dvmm.dsm.NativeAccess.set(guest[me], off, dev.dvmm.dsm.NativeAccess.get(guest[me], off) + 1);
                        }
                        dev.dvmm.dsm.NativeAccess.set(guest[me], 0, dev.dvmm.dsm.NativeAccess.get(guest[me], 0) + 1);
                    }
                });
            }
            for (Thread x : t) {
                x.join(100_000);
                assertTrue(!x.isAlive(), "a writer got stuck");
            }
            long[] sums = new long[2];
            for (int r = 0; r < 2; r++) {
                final int me = r;
                onThread(() -> {
                    for (int p = 1; p < PAGES; p++) {
                        sums[me] += dev.dvmm.dsm.NativeAccess.get(guest[me], p * 4096L + 8);
                    }
                });
            }
            assertEquals(40L * (PAGES - 1), sums[0]);
            assertEquals(40L * (PAGES - 1), sums[1]);
        });
    }

    @Test
    void busyPollingNodesStayCoherent() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            // The transport threads poll while faults await a peer and serve new faults themselves meanwhile.
            try (LocalDsmCluster polling = new LocalDsmCluster(new ProtocolConfig(2, PAGES, 1, 0, 1024), null,
                    5_000_000)) {
                long[] sum = new long[2];
                for (int round = 1; round <= 3; round++) {
                    final int r = round;
                    onThread(() -> {
                        for (int p = 1; p < PAGES; p++) {
                            dev.dvmm.dsm.NativeAccess.set(polling.guest(r % 2), p * 4096L, r * 1000L + p);
                        }
                    });
                    onThread(() -> {
                        for (int p = 1; p < PAGES; p++) {
                            sum[r % 2] += dev.dvmm.dsm.NativeAccess.get(polling.guest(1 - r % 2), p * 4096L)
                                    - r * 1000L;
                        }
                    });
                }
                long pages = PAGES - 1;
                assertEquals(2 * pages * PAGES / 2, sum[1], "node 0 read node 1's writes of rounds 1 and 3");
                assertEquals(pages * PAGES / 2, sum[0], "node 1 read node 0's writes of round 2");
                assertNull(polling.failure());
            }
        });
    }

    @Test
    void aNodeClosesCleanlyWhileItsPeerKeepsAskingForPages() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
            // Both nodes write page 2 in turn, so each write moves it; node 0 then closes while node 1's
            // writer keeps asking for it (its last fault stays unanswered until node 1 closes too).
            Thread peer = Thread.ofPlatform().daemon().start(() -> {
                long i = 0;
                while (!stop.get()) {
                    dev.dvmm.dsm.NativeAccess.set(guest[1], 2 * 4096, i++);
                }
            });
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (nodes[1].stats().zeroFills() + nodes[1].stats().remoteFetches() == 0 && System.nanoTime() < deadline) {
                Thread.sleep(1);
            }
            onThread(() -> {
                for (int i = 0; i < 300; i++) {
                    dev.dvmm.dsm.NativeAccess.set(guest[0], 2 * 4096 + 8, i);
                }
            });
            DsmNode closing = nodes[0];
            DsmNode other = nodes[1]; // closed here; the cluster's close closes them again (a no-op)
            try {
                closing.close();
                Thread.sleep(100);
            } finally {
                stop.set(true);
                // Closing node 1 releases its writer's unanswered fault; it must end before memory is unmapped.
                other.close();
                peer.join(20_000);
            }
            assertTrue(!peer.isAlive(), "node 1's writer never resumed");
            assertNull(closing.failure(), "node 0 handled a message after it closed");
            assertNull(other.failure(), "node 1 failed");
            assertTrue(closing.stats().remoteFetches() + other.stats().remoteFetches() > 0,
                    "the page moved between the nodes");
        });
    }

    @Test
    void impossibleProtocolMessagesAreRejectedAndTheNodeKeepsServing() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            OutboundMessage bad = new OutboundMessage();
            // A page number out of range, an unknown type and a data message without its page.
            transports[1].send(0, bad.clear().type((short) MessageType.READ_REQUEST).arg0(PAGES + 7).arg1(1).arg2(0));
            transports[1].send(0, bad.clear().type((short) 77).arg0(1).arg1(1).arg2(0));
            transports[1].send(0, bad.clear().type((short) MessageType.DATA_READ).arg0(1).arg1(1).arg2(0));
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (nodes[0].stats().rejectedMessages() < 3 && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertEquals(3, nodes[0].stats().rejectedMessages());
            long[] seen = new long[1];
            onThread(() -> dev.dvmm.dsm.NativeAccess.set(guest[0], 3 * 4096, 99));
            onThread(() -> seen[0] = dev.dvmm.dsm.NativeAccess.get(guest[1], 3 * 4096));
            assertEquals(99, seen[0], "node 0 still serves its pages");
            assertNull(nodes[0].failure());
        });
    }
}
