package dev.dvmm.hv.node;

import dev.dvmm.boot.testguest.TestGuest;
import dev.dvmm.dsm.fault.DsmPages;
import dev.dvmm.dsm.node.DsmNode;
import dev.dvmm.dsm.protocol.ProtocolConfig;
import dev.dvmm.dsm.transport.Endpoint;
import dev.dvmm.dsm.transport.InboundMessage;
import dev.dvmm.dsm.transport.OutboundMessage;
import dev.dvmm.dsm.transport.PeerListener;
import dev.dvmm.dsm.transport.TcpTransport;
import dev.dvmm.dsm.transport.TcpTransportConfig;
import dev.dvmm.dsm.transport.Transport;
import dev.dvmm.dsm.transport.TransportException;
import dev.dvmm.dsm.transport.UcxTransportConfig;
import dev.dvmm.hv.machine.TestGuestSession;
import dev.dvmm.hv.vstate.KvmException;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * One node process of a guest spread over several nodes: its own KVM VM holding its share of the vCPUs
 * (vCPU k runs on node {@code k * N / V}), guest memory backed by the DSM, control messages over the
 * same transport.
 *
 * <p>Sequence: connect and authenticate; node 0 loads the image (its writes fault through the DSM like
 * any other) and tells everyone; every node starts its vCPUs; each node reports its vCPUs' exit
 * statuses to node 0; node 0 checks the guest's results through its own guest mapping (pulling pages
 * from their owners) and tells everyone to stop. Every node keeps serving pages until then.
 */
public final class ClusterNode {
    static final short LOADED = (short) DsmNode.FIRST_CONTROL_TYPE;
    static final short DONE = (short) (DsmNode.FIRST_CONTROL_TYPE + 1);
    static final short SHUTDOWN = (short) (DsmNode.FIRST_CONTROL_TYPE + 2);

    /** What a node runs and where its peers are. */
    public record Config(int rank, List<Endpoint> cluster, byte[] secret, int vcpus, long memoryBytes,
                         TestProgram program, long iterations, long holdNanos, Duration timeout, Path statsJson,
                         String transport, UcxTransportConfig.RemoteReads remoteReads, long busyPollNanos) {
        /** {@link #busyPollNanos} that leaves the transport's own default. */
        public static final long TRANSPORT_DEFAULT = -1;

        public int nodes() {
            return cluster.size();
        }
    }

    private final Config cfg;
    private final PrintStream out;
    private final CountDownLatch loaded = new CountDownLatch(1);
    private final CountDownLatch shutdown = new CountDownLatch(1);
    private final CountDownLatch allDone;
    private final int[] statuses;
    private final AtomicReference<String> peerFailure = new AtomicReference<>();
    private volatile int shutdownStatus;

    public ClusterNode(Config cfg, PrintStream out) {
        this.cfg = cfg;
        this.out = out;
        this.statuses = new int[cfg.vcpus()];
        this.allDone = new CountDownLatch(cfg.nodes());
    }

    /** vCPUs placed on {@code rank}: block placement, vCPU k on node k * N / V. */
    public static int[] vcpusOf(int rank, int nodes, int vcpus) {
        List<Integer> mine = new ArrayList<>();
        for (int k = 0; k < vcpus; k++) {
            if ((long) k * nodes / vcpus == rank) {
                mine.add(k);
            }
        }
        return mine.stream().mapToInt(Integer::intValue).toArray();
    }

    /** Runs this node to the end; returns the process exit status (0: the guest's results were right). */
    public int run() throws Exception {
        int n = cfg.nodes();
        if (cfg.vcpus() < n) {
            throw new KvmException(cfg.vcpus() + " vCPUs cannot be spread over " + n + " nodes: every node needs one");
        }
        int[] mine = vcpusOf(cfg.rank(), n, cfg.vcpus());
        long pages = cfg.memoryBytes() / DsmPages.PAGE_SIZE;
        try (TestGuestSession session = TestGuestSession.forNode(mine, cfg.vcpus(), cfg.memoryBytes(), cfg.program().testId(),
                cfg.iterations(), out);
             Transport transport = openTransport(cfg)) {
            var mem = session.machine().memory();
            ProtocolConfig pc = new ProtocolConfig(n, (int) pages, 1, cfg.holdNanos(), 1 << 16)
                    .withOneSidedReads(transport.remoteReadsEnabled());
            try (DsmNode dsm = new DsmNode(transport, pc, mem.memfd(), mem.guestMapping(), mem.aliasMapping())) {
                dsm.setControlHandler(this::onControl);
                transport.start(cfg.cluster(), dsm::onMessage, new PeerListener() {
                    @Override
                    public void onPeerDown(int peer, TransportException cause) {
                        if (shutdown.getCount() > 0) {
                            peerFailure.compareAndSet(null, "node " + peer + " went down: " + cause.getMessage());
                            loaded.countDown();
                            shutdown.countDown();
                            while (allDone.getCount() > 0) {
                                allDone.countDown();
                            }
                        }
                    }
                });
                transport.awaitConnected(Duration.ofSeconds(60));
                dsm.start();
                out.printf("node %d: connected to %d peers, vCPUs %s, %d MiB guest memory%s%n", cfg.rank(), n - 1,
                        Arrays.toString(mine), cfg.memoryBytes() >> 20, pc.oneSidedReads() ? ", one-sided reads" : "");
                try (Arena arena = Arena.ofConfined()) {
                    OutboundMessage msg = new OutboundMessage();
                    if (cfg.rank() == 0) {
                        session.loadImage();
                        broadcast(transport, msg.clear().type(LOADED).noPayload());
                    } else if (!loaded.await(cfg.timeout().toMillis(), TimeUnit.MILLISECONDS)) {
                        throw new KvmException("node 0 did not load the guest within " + cfg.timeout().toSeconds() + " s");
                    }
                    checkPeers(dsm);
                    session.enterVcpus();
                    long t0 = System.nanoTime();
                    int[] local = session.run(cfg.timeout());
                    double secs = (System.nanoTime() - t0) / 1e9;
                    out.printf("node %d: vCPUs %s finished in %.2f s with status %s%n", cfg.rank(), Arrays.toString(mine),
                            secs, Arrays.toString(local));
                    MemorySegment payload = arena.allocate(4L * mine.length);
                    for (int i = 0; i < mine.length; i++) {
                        payload.setAtIndex(ValueLayout.JAVA_INT, i, local[i]);
                    }
                    msg.clear().type(DONE).arg0(cfg.rank()).arg1(mine.length).payload(payload, 0, 4 * mine.length);
                    if (cfg.rank() == 0) {
                        recordDone(0, payload, mine.length);
                    } else {
                        transport.send(0, msg);
                    }
                    int status;
                    if (cfg.rank() == 0) {
                        if (!allDone.await(cfg.timeout().toMillis(), TimeUnit.MILLISECONDS)) {
                            throw new KvmException("not every node reported its vCPUs within " + cfg.timeout().toSeconds() + " s");
                        }
                        checkPeers(dsm);
                        status = verify(session, dsm) ? 0 : 1;
                        broadcast(transport, msg.clear().type(SHUTDOWN).arg0(status).noPayload());
                    } else {
                        if (!shutdown.await(cfg.timeout().toMillis() * 2, TimeUnit.MILLISECONDS)) {
                            throw new KvmException("node 0 did not finish within " + cfg.timeout().toSeconds() + " s");
                        }
                        checkPeers(dsm);
                        status = shutdownStatus;
                    }
                    out.println(dsm.stats().toTable(cfg.rank()));
                    if (cfg.statsJson() != null) {
                        Files.writeString(cfg.statsJson(), dsm.stats().toJson(cfg.rank()) + System.lineSeparator());
                    }
                    return status;
                }
            }
        }
    }

    /** tcp (JDK NIO) or ucx (libucp: InfiniBand/RoCE when present, else UCX's tcp/shared memory). */
    static Transport openTransport(Config cfg) throws TransportException {
        Endpoint self = cfg.cluster().get(cfg.rank());
        return switch (cfg.transport()) {
            // Remote reads forced on over tcp are refused where the options are parsed (NodeCommand.parseRemoteReads).
            case "tcp" -> {
                TcpTransportConfig c = TcpTransportConfig.of(cfg.rank(), cfg.nodes(), self, cfg.secret());
                yield new TcpTransport(cfg.busyPollNanos() < 0 ? c : c.withBusyPollNanos(cfg.busyPollNanos()));
            }
            case "ucx" -> {
                UcxTransportConfig c = UcxTransportConfig.of(cfg.rank(), cfg.nodes(), self, cfg.secret())
                        .withRemoteReads(cfg.remoteReads());
                yield new dev.dvmm.dsm.transport.UcxTransport(cfg.busyPollNanos() < 0 ? c
                        : c.withBusyPollNanos(cfg.busyPollNanos()));
            }
            default -> throw new KvmException("unknown transport '" + cfg.transport() + "': use tcp or ucx");
        };
    }

    private void checkPeers(DsmNode dsm) {
        String f = peerFailure.get();
        if (f != null) {
            throw new KvmException("node " + cfg.rank() + ": " + f);
        }
        if (dsm.failure() != null) {
            throw new KvmException("node " + cfg.rank() + ": DSM failed: " + dsm.failure());
        }
    }

    private void broadcast(Transport t, OutboundMessage m) throws TransportException {
        for (int peer = 0; peer < cfg.nodes(); peer++) {
            if (peer != cfg.rank()) {
                t.send(peer, m);
            }
        }
    }

    private void onControl(InboundMessage m) {
        if (m.type() == LOADED) {
            loaded.countDown();
        } else if (m.type() == DONE && cfg.rank() == 0) {
            int count = (int) m.arg1();
            if (count < 0 || count * 4 != m.payloadLength()) {
                return;
            }
            recordDone((int) m.arg0(), m.payloadSegment().asSlice(m.payloadOffset(), m.payloadLength()), count);
        } else if (m.type() == SHUTDOWN) {
            shutdownStatus = (int) m.arg0();
            shutdown.countDown();
        }
    }

    private synchronized void recordDone(int rank, MemorySegment payload, int count) {
        int[] vs = vcpusOf(rank, cfg.nodes(), cfg.vcpus());
        if (vs.length != count) {
            return;
        }
        for (int i = 0; i < count; i++) {
            statuses[vs[i]] = payload.getAtIndex(ValueLayout.JAVA_INT_UNALIGNED, i);
        }
        allDone.countDown();
    }

    /** Node 0: checks what the guest computed, reading guest memory through the DSM. */
    private boolean verify(TestGuestSession session, DsmNode dsm) {
        // A native copy of the guest's first 4 MiB (results, data, pattern), pulled through the DSM: reading
        // the guest mapping from Java code could deadlock with HotSpot safepoints (see Posix.copyNative).
        long need = Math.max(4L << 20, TestGuest.PATTERN + (long) cfg.vcpus() * cfg.iterations() * 8);
        need = Math.min(cfg.memoryBytes(), (need + 4095) & ~4095L);
        MemorySegment g = java.lang.foreign.Arena.ofAuto().allocate(need, 4096);
        dev.dvmm.bindings.Posix.copyNative(session.machine().memory().guestMapping(), 0, g, 0, g.byteSize());
        long v = cfg.vcpus();
        long n = cfg.iterations();
        String verdict;
        boolean ok;
        switch (cfg.program()) {
            case COUNTERS -> {
                long atomic = g.get(ValueLayout.JAVA_LONG, TestGuest.DATA);
                long locked = g.get(ValueLayout.JAVA_LONG, TestGuest.DATA + 0x80);
                ok = atomic == v * n && locked == v * n && allZero();
                verdict = String.format("lock xadd counter %d, spinlock counter %d, expected %d", atomic, locked, v * n);
            }
            case PATTERN -> {
                long wrong = 0;
                long sum = 0;
                long expectSum = 0;
                for (long cpu = 0; cpu < v; cpu++) {
                    for (long i = 0; i < n; i++) {
                        long expect = (i * 0x9e3779b97f4a7c15L) ^ (cpu << 56);
                        long got = g.get(ValueLayout.JAVA_LONG, TestGuest.PATTERN + (cpu * n + i) * 8);
                        sum += got;
                        expectSum += expect;
                        if (got != expect) {
                            wrong++;
                        }
                    }
                }
                ok = wrong == 0 && allZero();
                verdict = String.format("checksum %016x, expected %016x, %d of %d words wrong", sum, expectSum, wrong, v * n);
            }
            case HANDOFF -> {
                long sum = g.get(ValueLayout.JAVA_LONG, TestGuest.RESULTS + 64);
                ok = allZero() && sum == n * (n + 1) / 2;
                verdict = String.format("consumer saw %d items out of order, sum %d, expected %d", v > 1 ? statuses[1] : -1,
                        sum, n * (n + 1) / 2);
            }
            default -> {
                ok = Arrays.stream(statuses).allMatch(s -> s == 0x42);
                verdict = "exit statuses " + Arrays.toString(statuses);
            }
        }
        out.printf("cluster result (%d nodes, %d vCPUs, %s, %s): %s: %s%n", cfg.nodes(), v,
                cfg.program().name().toLowerCase(java.util.Locale.ROOT), cfg.transport(), verdict, ok ? "ok" : "WRONG");
        return ok;
    }

    private boolean allZero() {
        return Arrays.stream(statuses).allMatch(s -> s == 0);
    }
}
