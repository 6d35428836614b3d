package dev.dvmm.dsm.node;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dvmm.dsm.NativeAccess;
import dev.dvmm.dsm.TestTransports;
import dev.dvmm.dsm.UffdAvailable;
import dev.dvmm.dsm.fault.DsmPages;
import dev.dvmm.dsm.protocol.ProtocolConfig;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * 2-3 DSM nodes in one JVM over a given transport, each with its own memfd guest memory and
 * userfaultfd: JVM threads (through native copies, as device models touch guest memory) take turns
 * incrementing a word in every page, so every turn moves every page to the next node; the counts
 * must come out exact on every node.
 */
class DsmClusterTest {
    private static final int PAGES = 32;
    private static final int ROUNDS = 10;
    private static final long JOIN_MILLIS = 60_000;

    @ParameterizedTest(name = "{0}: {1} nodes, one-sided reads {2}")
    @CsvSource({"ucx, 2, false", "ucx, 3, false", "tcp, 3, false", "ucx, 3, true", "ucx, 4, true"})
    @Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void pagesHandedRoundTheNodesKeepExactCounts(String kind, int n, boolean oneSided) throws Exception {
        UffdAvailable.assume();
        TestTransports.assumeAvailable(kind);
        ProtocolConfig config = new ProtocolConfig(n, PAGES, 1, 0, 1024).withOneSidedReads(oneSided);
        try (LocalDsmCluster cluster = new LocalDsmCluster(config, null, 0, kind)) {
            MemorySegment[] guest = new MemorySegment[n];
            DsmNode[] nodes = new DsmNode[n];
            for (int r = 0; r < n; r++) {
                guest[r] = cluster.guest(r);
                nodes[r] = cluster.node(r);
            }
            // Word 0 of page 0 is the turn; node r works when turn % n == r.
            Thread[] workers = new Thread[n];
            for (int r = 0; r < n; r++) {
                final int me = r;
                final MemorySegment g = guest[r];
                workers[r] = Thread.ofPlatform().name("worker-" + r).start(() -> {
                    for (int round = 0; round < ROUNDS; round++) {
                        while (NativeAccess.get(g, 0) % n != me) {
                            Thread.onSpinWait();
                        }
                        for (int p = 1; p < PAGES; p++) {
                            long offset = p * DsmPages.PAGE_SIZE + 8 * me;
                            NativeAccess.set(g, offset, NativeAccess.get(g, offset) + 1);
                            long total = p * DsmPages.PAGE_SIZE + 64;
                            NativeAccess.set(g, total, NativeAccess.get(g, total) + 1);
                        }
                        NativeAccess.set(g, 0, NativeAccess.get(g, 0) + 1);
                    }
                });
            }
            for (Thread w : workers) {
                w.join(JOIN_MILLIS);
                assertFalse(w.isAlive(), w.getName() + " got stuck on a fault");
            }
            for (int r = 0; r < n; r++) {
                final MemorySegment g = guest[r];
                long[] seen = new long[n + 1];
                Thread reader = Thread.ofPlatform().start(() -> {
                    for (int p = 1; p < PAGES; p++) {
                        for (int w = 0; w < n; w++) {
                            seen[w] += NativeAccess.get(g, p * DsmPages.PAGE_SIZE + 8 * w);
                        }
                        seen[n] += NativeAccess.get(g, p * DsmPages.PAGE_SIZE + 64);
                    }
                });
                reader.join(JOIN_MILLIS);
                assertFalse(reader.isAlive(), "node " + r + "'s reader got stuck on a fault");
                for (int w = 0; w < n; w++) {
                    assertEquals((long) ROUNDS * (PAGES - 1), seen[w], "node " + r + " sees node " + w + "'s increments");
                }
                assertEquals((long) n * ROUNDS * (PAGES - 1), seen[n], "node " + r + " sees every shared increment");
            }
            for (DsmNode node : nodes) {
                System.out.println(node.stats().toTable(node.rank()));
                assertTrue(node.stats().remoteFetches() >= (long) ROUNDS * (PAGES - 1),
                        "node " + node.rank() + " fetched the pages it took turns on");
            }
            for (int r = 0; r < n; r++) {
                assertNull(nodes[r].failure(), "node " + r + " failed");
            }
            long oneSidedReads = 0;
            for (DsmNode node : nodes) {
                oneSidedReads += node.stats().oneSidedReads();
            }
            // Readers of the turn word and the final read-back find clean pages whose home holds no copy.
            if (oneSided) {
                assertTrue(oneSidedReads > 0, "no page was read one-sidedly");
            } else {
                assertEquals(0, oneSidedReads, "one-sided reads happened while they were off");
            }
        }
    }
}
