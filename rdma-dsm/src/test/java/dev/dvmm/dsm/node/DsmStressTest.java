package dev.dvmm.dsm.node;

import dev.dvmm.dsm.protocol.ProtocolConfig;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Several DSM nodes in one JVM hammering the same pages with atomic increments from JVM threads. The
 * increments are native (libatomic's fetch-and-add): a Java-code access blocked on a fault could stall
 * a HotSpot safepoint, and with it the DSM threads that are to resolve the fault.
 */
class DsmStressTest {

    @org.junit.jupiter.params.ParameterizedTest(name = "{0} nodes, {1} pages")
    @org.junit.jupiter.params.provider.CsvSource({"2, 1", "2, 2", "3, 1", "3, 3", "4, 1", "4, 4"})
    void atomicIncrementsAreNeverLost(int nodes, int pagesUsed) throws Exception {
        for (int rep = 0; rep < Integer.getInteger("dsm.stress.reps", 1); rep++) {
            run(nodes, pagesUsed, 20_000);
        }
    }

    private void run(int n, int pagesUsed, int increments) throws Exception {
        dev.dvmm.dsm.UffdAvailable.assume();
        org.junit.jupiter.api.Assumptions.assumeTrue(dev.dvmm.dsm.NativeAccess.atomicAvailable(),
                "libatomic.so.1 (gcc's runtime, package libatomic1) is not installed");
        try (LocalDsmCluster cluster = new LocalDsmCluster(new ProtocolConfig(n, 16, 1, 0, 1024), null)) {
            assertTimeoutPreemptively(Duration.ofSeconds(180), () -> {
                Thread[] th = new Thread[n];
                // Everyone starts together, or a thread could finish its share before the next one runs.
                java.util.concurrent.CountDownLatch start = new java.util.concurrent.CountDownLatch(n);
                for (int r = 0; r < n; r++) {
                    final MemorySegment g = cluster.guest(r);
                    th[r] = Thread.ofPlatform().start(() -> {
                        start.countDown();
                        try {
                            start.await();
                        } catch (InterruptedException e) {
                            return;
                        }
                        for (int i = 0; i < increments; i++) {
                            long off = (1 + i % pagesUsed) * 4096L + 64;
                            dev.dvmm.dsm.NativeAccess.getAndAdd(g, off, 1L);
                        }
                    });
                }
                for (Thread x : th) {
                    x.join(170_000);
                    assertTrue(!x.isAlive(), "a writer is stuck");
                }
                long[] total = new long[1];
                Thread reader = Thread.ofPlatform().start(() -> {
                    for (int p = 0; p < pagesUsed; p++) {
                        total[0] += dev.dvmm.dsm.NativeAccess.get(cluster.guest(0), (1 + p) * 4096L + 64);
                    }
                });
                reader.join(30_000);
                long eexist = 0;
                for (int r = 0; r < n; r++) {
                    DsmNode d = cluster.node(r);
                    System.out.println(d.stats().toTable(d.rank()));
                    eexist += d.installRaces();
                }
                assertEquals((long) n * increments, total[0], "increments lost (eexist " + eexist + ")");
            });
            assertNull(cluster.failure());
        }
    }
}
