package dev.dvmm.dsm.node;

import dev.dvmm.bindings.Posix;
import dev.dvmm.bindings.abi.PosixConstants;
import dev.dvmm.dsm.fault.DsmPages;
import dev.dvmm.dsm.protocol.ProtocolConfig;
import dev.dvmm.dsm.transport.Endpoint;
import dev.dvmm.dsm.transport.PeerListener;
import dev.dvmm.dsm.transport.TcpTransport;
import dev.dvmm.dsm.transport.TcpTransportConfig;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Several DSM nodes in one JVM hammering the same pages with atomic increments from JVM threads. */
class DsmStressTest {
    private static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();

    @org.junit.jupiter.params.ParameterizedTest(name = "{0} nodes, {1} pages")
    @org.junit.jupiter.params.provider.CsvSource({"2, 1", "2, 2", "3, 1", "3, 3", "4, 1", "4, 4"})
    void atomicIncrementsAreNeverLost(int nodes, int pagesUsed) throws Exception {
        for (int rep = 0; rep < Integer.getInteger("dsm.stress.reps", 1); rep++) {
            run(nodes, pagesUsed, 20_000);
        }
    }

    private void run(int n, int pagesUsed, int increments) throws Exception {
        dev.dvmm.dsm.UffdAvailable.assume();
        int pages = 16;
        byte[] secret = "stress-test-secret-0123456789abcd".getBytes();
        Posix px = Posix.current();
        long len = pages * DsmPages.PAGE_SIZE;
        int rw = PosixConstants.PROT_READ | PosixConstants.PROT_WRITE;
        MemorySegment[] guest = new MemorySegment[n];
        MemorySegment[] alias = new MemorySegment[n];
        int[] fds = new int[n];
        TcpTransport[] t = new TcpTransport[n];
        DsmNode[] nodes = new DsmNode[n];
        try {
            for (int r = 0; r < n; r++) {
                fds[r] = Posix.check(px.memfdCreate("stress-" + r, PosixConstants.MFD_CLOEXEC), "memfd");
                Posix.check(px.ftruncate(fds[r], len), "ftruncate");
                guest[r] = px.mmapChecked(0, len, rw, PosixConstants.MAP_SHARED, fds[r], 0, "guest");
                alias[r] = px.mmapChecked(0, len, rw, PosixConstants.MAP_SHARED, fds[r], 0, "alias");
                t[r] = new TcpTransport(TcpTransportConfig.loopback(r, n, secret));
                nodes[r] = new DsmNode(t[r], new ProtocolConfig(n, pages, 1, 0, 1024), fds[r], guest[r], alias[r]);
            }
            List<Endpoint> cluster = new ArrayList<>();
            for (int r = 0; r < n; r++) {
                cluster.add(t[r].localEndpoint());
            }
            for (int r = 0; r < n; r++) {
                t[r].start(cluster, nodes[r]::onMessage, PeerListener.NONE);
            }
            for (int r = 0; r < n; r++) {
                t[r].awaitConnected(Duration.ofSeconds(10));
                nodes[r].start();
            }
            assertTimeoutPreemptively(Duration.ofSeconds(180), () -> {
                Thread[] th = new Thread[n];
                for (int r = 0; r < n; r++) {
                    final MemorySegment g = guest[r];
                    th[r] = Thread.ofPlatform().start(() -> {
                        for (int i = 0; i < increments; i++) {
                            long off = (1 + i % pagesUsed) * 4096L + 64;
                            LONG.getAndAdd(g, off, 1L);
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
                        total[0] += guest[0].get(ValueLayout.JAVA_LONG, (1 + p) * 4096L + 64);
                    }
                });
                reader.join(30_000);
                long eexist = 0;
                for (DsmNode d : nodes) {
                    System.out.println(d.stats().toTable(d.rank()));
                    eexist += d.installRaces();
                }
                assertEquals((long) n * increments, total[0], "increments lost (eexist " + eexist + ")");
            });
        } finally {
            for (int r = 0; r < n; r++) {
                if (nodes[r] != null) {
                    assertNull(nodes[r].failure());
                    nodes[r].close();
                }
                if (t[r] != null) {
                    t[r].close();
                }
                if (guest[r] != null) {
                    px.munmap(guest[r]);
                    px.munmap(alias[r]);
                    px.close(fds[r]);
                }
            }
        }
    }
}
