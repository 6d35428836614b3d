package dev.dvmm.dsm.bench;

import dev.dvmm.bindings.Posix;
import dev.dvmm.bindings.abi.PosixConstants;
import dev.dvmm.dsm.fault.DsmPages;
import dev.dvmm.dsm.fault.FaultReader;
import dev.dvmm.dsm.fault.Userfaultfd;
import dev.dvmm.dsm.node.FaultTrace;
import dev.dvmm.dsm.node.LocalDsmCluster;
import dev.dvmm.dsm.protocol.ProtocolConfig;
import dev.dvmm.dsm.transport.Endpoint;
import dev.dvmm.dsm.transport.OutboundMessage;
import dev.dvmm.dsm.transport.PeerListener;
import dev.dvmm.dsm.transport.ReplyBuffer;
import dev.dvmm.dsm.transport.Transport;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import org.HdrHistogram.Histogram;

/**
 * DSM fault cost, measured end to end by the faulting thread (the time its access to guest memory takes), with the
 * baselines from the same run: a local userfaultfd fault resolved with UFFDIO_COPY and no network, and a 4 KiB
 * request/response round trip over the same transport. With 4 nodes, faults where requester, home and owner are
 * three different nodes are reported apart. A timeline of every fault splits the latency into stages. Also the page
 * ping-pong rate between two nodes with and without the hold-time guard.
 */
public final class FaultBenchmark {
    private static final byte[] SECRET = "dvmm-fault-benchmark-secret-0123".getBytes();

    /** Kinds of remote fault, each measured over its own pass through the pages. */
    static final int READ = 0;
    static final int UPGRADE = 1;
    static final int WRITE_MISS = 2;
    /** A read of a page whose owner holds it read-only (4 nodes): no downgrade; a one-sided read if enabled. */
    static final int CLEAN_READ = 3;
    private static final String[] KIND = {"read", "write (upgrade)", "write miss", "read of a clean page"};

    /**
     * @param twoParty   per kind: faults where the requester, home and owner/sharer are at most two nodes
     * @param threeParty per kind: requester, home and owner/sharer all different (4 nodes only, else empty)
     * @param stages     per kind and party count, the frequent paths of a fault as "stage: median us" lines
     */
    public record Result(String transport, boolean oneSidedReads, int nodes, int pages, long busyPollMicros,
                         Histogram[] twoParty, Histogram[] threeParty,
                         Histogram localUffd, Histogram rtt, Histogram writeProtect, String[][] stages, double pingPongPagesPerSec,
                         double pingPongHeldPagesPerSec, long holdMicros, double incrementsPerSec, double incrementsHeldPerSec) {
        private static double us(Histogram h, double p) {
            return h.getTotalCount() == 0 ? 0 : h.getValueAtPercentile(p) / 1e3;
        }

        /** Remote read p50 over (local uffd p50 + RTT p50): the cost of the DSM beyond its two unavoidable parts. */
        public double ratio() {
            return us(twoParty[READ], 50) / (us(localUffd, 50) + us(rtt, 50));
        }

        /** The same for 3-party reads, whose floor is 1.5 round trips. */
        public double ratioThreeParty() {
            return us(threeParty[READ], 50) / (us(localUffd, 50) + 1.5 * us(rtt, 50));
        }

        private static String pair(Histogram h) {
            return String.format(Locale.ROOT, "{\"p50\": %.1f, \"p99\": %.1f, \"count\": %d}", us(h, 50), us(h, 99),
                    h.getTotalCount());
        }

        public String toJson() {
            StringBuilder s = new StringBuilder();
            s.append(String.format(Locale.ROOT, "{%n  \"benchmark\": \"fault\",%n  \"nodes\": %d,%n"
                    + "  \"transport\": \"%s\",%n  \"one_sided_reads\": %b,%n  \"busy_poll_us\": %d,%n"
                    + "  \"faults_per_kind\": %d,%n", nodes, transport, oneSidedReads, busyPollMicros, pages));
            s.append("  \"remote_read_fault_us\": ").append(pair(twoParty[READ])).append(",\n");
            s.append("  \"remote_write_fault_us\": ").append(pair(twoParty[UPGRADE])).append(",\n");
            s.append("  \"remote_write_miss_fault_us\": ").append(pair(twoParty[WRITE_MISS])).append(",\n");
            if (nodes > 2) {
                s.append("  \"remote_clean_read_fault_us\": ").append(pair(twoParty[CLEAN_READ])).append(",\n");
                s.append("  \"remote_clean_read_3party_fault_us\": ").append(pair(threeParty[CLEAN_READ]))
                        .append(",\n");
                s.append("  \"remote_read_3party_fault_us\": ").append(pair(threeParty[READ])).append(",\n");
                s.append("  \"remote_write_3party_fault_us\": ").append(pair(threeParty[UPGRADE])).append(",\n");
                s.append("  \"remote_write_miss_3party_fault_us\": ").append(pair(threeParty[WRITE_MISS]))
                        .append(",\n");
            }
            s.append("  \"local_uffd_fault_us\": ").append(pair(localUffd)).append(",\n");
            s.append("  \"rtt_4k_us\": ").append(pair(rtt)).append(",\n");
            s.append("  \"host_write_protect_us\": ").append(pair(writeProtect)).append(",\n");
            s.append(String.format(Locale.ROOT, "  \"ratio_remote_read_p50_over_local_plus_rtt\": %.3f,%n", ratio()));
            if (nodes > 2) {
                s.append(String.format(Locale.ROOT,
                        "  \"ratio_remote_read_3party_p50_over_local_plus_1_5_rtt\": %.3f,%n", ratioThreeParty()));
            }
            s.append("  \"target_ratio\": 1.3,\n");
            s.append("  \"stages_us\": {");
            boolean first = true;
            for (int party = 0; party < 2; party++) {
                for (int k = 0; k < KIND.length; k++) {
                    String[] lines = stages[party * KIND.length + k];
                    if (lines == null) {
                        continue;
                    }
                    s.append(first ? "\n" : ",\n").append("    \"").append(party == 0 ? "" : "3party ")
                            .append(KIND[k]).append("\": [");
                    for (int i = 0; i < lines.length; i++) {
                        s.append(i == 0 ? "" : ", ").append('"').append(lines[i]).append('"');
                    }
                    s.append(']');
                    first = false;
                }
            }
            s.append("\n  },\n");
            // "increments" is the field's historical name: each thread now stores its own running count.
            s.append(String.format(Locale.ROOT, "  \"ping_pong_nodes\": 2,%n"
                    + "  \"ping_pong_pages_per_s\": {\"hold_0\": %.0f, \"hold_%dus\": %.0f},%n"
                    + "  \"ping_pong_increments_per_s\": {\"hold_0\": %.0f, \"hold_%dus\": %.0f}%n}%n",
                    pingPongPagesPerSec, holdMicros, pingPongHeldPagesPerSec, incrementsPerSec, holdMicros,
                    incrementsHeldPerSec));
            return s.toString();
        }

        public String toTable() {
            StringBuilder s = new StringBuilder();
            s.append(String.format(Locale.ROOT, "%-40s %10s %10s%n", "DSM fault cost (" + nodes + " nodes, " + transport
                    + (oneSidedReads ? ", one-sided reads" : "") + (busyPollMicros > 0 ? ", busy-poll " + busyPollMicros + " us)" : ")"),
                    "p50 us", "p99 us"));
            for (int party = 0; party < (nodes > 2 ? 2 : 1); party++) {
                Histogram[] h = party == 0 ? twoParty : threeParty;
                String tag = party == 0 ? "" : ", 3-party";
                for (int k = 0; k < KIND.length; k++) {
                    if (k != CLEAN_READ || nodes > 2) {
                        row(s, "remote " + KIND[k] + tag, h[k]);
                    }
                }
            }
            row(s, "local uffd fault (baseline)", localUffd);
            row(s, "4 KiB round trip (baseline)", rtt);
            row(s, "write-protect a written page (host)", writeProtect);
            s.append(String.format(Locale.ROOT, "%-40s %10.3f (target 1.3)%n", "remote read / (local + rtt), p50",
                    ratio()));
            if (nodes > 2) {
                s.append(String.format(Locale.ROOT, "%-40s %10.3f%n", "3-party read / (local + 1.5 rtt), p50",
                        ratioThreeParty()));
            }
            s.append(String.format(Locale.ROOT, "%-40s %10.0f pages/s (%.0f stores/s)%n%-40s %10.0f pages/s "
                    + "(%.0f stores/s)%n", "ping-pong, hold 0", pingPongPagesPerSec, incrementsPerSec,
                    "ping-pong, hold " + holdMicros + " us", pingPongHeldPagesPerSec, incrementsHeldPerSec));
            for (int party = 0; party < 2; party++) {
                for (int k = 0; k < KIND.length; k++) {
                    String[] lines = stages[party * KIND.length + k];
                    if (lines != null) {
                        s.append("stages of remote ").append(KIND[k]).append(party == 0 ? "" : ", 3-party")
                                .append(" (median us):\n");
                        for (String line : lines) {
                            s.append("  ").append(line).append('\n');
                        }
                    }
                }
            }
            return s.toString();
        }

        private static void row(StringBuilder s, String name, Histogram h) {
            s.append(String.format(Locale.ROOT, "%-40s %10.1f %10.1f%n", name, us(h, 50), us(h, 99)));
        }
    }

    private FaultBenchmark() {}

    /** Reads the first word of page {@code p} through {@code g}, timed into {@code h[kind]}; it must hold {@code p}. */
    private static void timedRead(FaultTrace trace, int kind, int p, MemorySegment g, MemorySegment word,
                                  Histogram[] h) {
        trace.record(0, FaultTrace.ACCESS, kind, p);
        long t0 = System.nanoTime();
        Posix.copyNative(g, p * 4096L, word, 0, 8);
        long t1 = System.nanoTime();
        trace.record(0, FaultTrace.ACCESS_DONE, kind, p);
        h[kind].recordValue(t1 - t0);
        if (word.get(ValueLayout.JAVA_LONG, 0) != p) {
            throw new IllegalStateException(KIND[kind] + ": page " + p + " read " + word.get(ValueLayout.JAVA_LONG, 0));
        }
    }

    /** Stores {@code word} at {@code offset} in page {@code p} through {@code g}, timed into {@code h[kind]}. */
    private static void timedStore(FaultTrace trace, int kind, int p, MemorySegment g, long offset,
                                   MemorySegment word, Histogram[] h) {
        trace.record(0, FaultTrace.ACCESS, kind, p);
        long t0 = System.nanoTime();
        Posix.copyNative(word, 0, g, p * 4096L + offset, 8);
        long t1 = System.nanoTime();
        trace.record(0, FaultTrace.ACCESS_DONE, kind, p);
        h[kind].recordValue(t1 - t0);
    }

    /** Runs {@code body} on a fresh platform thread and waits (guest-memory access must not be on the caller). */
    private static void on(Runnable body) throws InterruptedException {
        Thread t = Thread.ofPlatform().start(body);
        t.join();
    }

    private static Histogram histogram() {
        return new Histogram(3_600_000_000_000L, 3);
    }

    /**
     * Roles of page {@code p} (homed on {@code p mod nodes}): who writes it first (then owns it) and who then reads
     * it. With 2 nodes node 0 writes and node 1 reads. With 4, pages alternate between two-party roles (the home
     * writes first) and three-party roles (home, writer and reader all different).
     */
    static int firstWriter(int nodes, int p) {
        int home = p % nodes;
        return nodes == 2 ? 0 : (threeParty(nodes, p) ? (home + 1) % nodes : home);
    }

    static int reader(int nodes, int p) {
        int home = p % nodes;
        return nodes == 2 ? 1 : (home + 2) % nodes;
    }

    /** Who reads page {@code p} last, once its owner holds it read-only (4 nodes only): the node that had no role. */
    static int secondReader(int nodes, int p) {
        return (p % nodes + 3) % nodes;
    }

    static boolean threeParty(int nodes, int p) {
        return nodes > 2 && (p / nodes) % 2 == 1;
    }

    public static Result run(int nodes, int pages, long holdMicros, long busyPollMicros, java.io.PrintStream progress)
            throws Exception {
        return run(nodes, pages, holdMicros, busyPollMicros, "tcp", false, progress);
    }

    /**
     * As above over loopback {@code transport}: "tcp" or "ucx" (the round-trip baseline uses the same); with
     * {@code oneSidedReads} (ucx only) reads of clean pages whose home holds no copy are one-sided.
     */
    public static Result run(int nodes, int pages, long holdMicros, long busyPollMicros, String transport,
                             boolean oneSidedReads, java.io.PrintStream progress) throws Exception {
        if (nodes != 2 && nodes != 4) {
            throw new IllegalArgumentException("the fault benchmark runs 2 or 4 nodes, not " + nodes);
        }
        Histogram[] two = {histogram(), histogram(), histogram(), histogram()};
        Histogram[] three = {histogram(), histogram(), histogram(), histogram()};
        // Pages 1..n are measured; n is rounded so that every role pattern gets the same number of pages.
        int n = (pages + 2 * nodes - 1) / (2 * nodes) * (2 * nodes);
        FaultTrace trace = new FaultTrace(96 * n);
        progress.println("remote faults over " + n + " pages (" + nodes + " nodes, " + transport + " loopback)");
        ProtocolConfig config = new ProtocolConfig(nodes, n + 1, 1, 0, 1 << 14).withOneSidedReads(oneSidedReads);
        try (LocalDsmCluster c = new LocalDsmCluster(config, trace, busyPollMicros * 1000, transport)) {
            MemorySegment[] guest = new MemorySegment[nodes];
            for (int r = 0; r < nodes; r++) {
                guest[r] = c.guest(r);
            }
            on(() -> {
                MemorySegment word = Arena.ofAuto().allocate(8, 8);
                // First writes: zero fills (local at the home, or one hop), not measured.
                for (int p = 1; p <= n; p++) {
                    word.set(ValueLayout.JAVA_LONG, 0, p);
                    Posix.copyNative(word, 0, guest[firstWriter(nodes, p)], p * 4096L, 8);
                }
                // Remote read: the data comes from the first writer.
                for (int p = 1; p <= n; p++) {
                    timedRead(trace, READ, p, guest[reader(nodes, p)], word, threeParty(nodes, p) ? three : two);
                }
                // Upgrade: the reader writes its read-only copy; the first writer's copy is invalidated.
                for (int p = 1; p <= n; p++) {
                    word.set(ValueLayout.JAVA_LONG, 0, -p);
                    timedStore(trace, UPGRADE, p, guest[reader(nodes, p)], 8, word,
                            threeParty(nodes, p) ? three : two);
                }
                // Write miss: the first writer writes again; the data comes from the reader, which drops its copy.
                for (int p = 1; p <= n; p++) {
                    word.set(ValueLayout.JAVA_LONG, 0, p);
                    timedStore(trace, WRITE_MISS, p, guest[firstWriter(nodes, p)], 16, word,
                            threeParty(nodes, p) ? three : two);
                }
                // The last writer must see both earlier writes of the page.
                for (int p = 1; p <= n; p++) {
                    Posix.copyNative(guest[firstWriter(nodes, p)], p * 4096L + 8, word, 0, 8);
                    if (word.get(ValueLayout.JAVA_LONG, 0) != -p) {
                        throw new IllegalStateException("page " + p + " lost the upgrade's write");
                    }
                }
                if (nodes > 2) {
                    // Clean read: the reader reads again (the writer downgrades: not measured), then the fourth node
                    // reads a page that its owner holds read-only. The home holds a copy only on two-party pages.
                    for (int p = 1; p <= n; p++) {
                        Posix.copyNative(guest[reader(nodes, p)], p * 4096L, word, 0, 8);
                    }
                    for (int p = 1; p <= n; p++) {
                        timedRead(trace, CLEAN_READ, p, guest[secondReader(nodes, p)], word,
                                threeParty(nodes, p) ? three : two);
                    }
                }
            });
            if (c.failure() != null) {
                throw new IllegalStateException("DSM failed during the benchmark: " + c.failure());
            }
        }
        String[][] stages = new String[2 * KIND.length][];
        for (int party = 0; party < (nodes > 2 ? 2 : 1); party++) {
            for (int k = 0; k < KIND.length; k++) {
                stages[party * KIND.length + k] = FaultStages.frequentPaths(trace, nodes, k, party == 1);
            }
        }
        progress.println("local userfaultfd baseline");
        Histogram writeProtect = histogram();
        Histogram local = localUffd(n, writeProtect);
        progress.println("4 KiB round trip baseline");
        Histogram rtt = roundTrip(Math.max(n, 5000), transport);
        progress.println("page ping-pong, hold 0");
        double[] free = pingPong(0, busyPollMicros * 1000, transport);
        progress.println("page ping-pong, hold " + holdMicros + " us");
        double[] held = pingPong(holdMicros * 1000, busyPollMicros * 1000, transport);
        return new Result(transport, oneSidedReads, nodes, n, busyPollMicros, two, three, local, rtt, writeProtect, stages, free[0], held[0], holdMicros,
                free[1], held[1]);
    }

    /**
     * A local fault resolved with UFFDIO_COPY, per page; then, into {@code writeProtect}, what write-protecting a page
     * that was just written costs on this host (the downgrade an owner does before it serves a read): a TLB flush on
     * every CPU where this process's threads ran, cheap on bare metal, an expensive IPI on some nested hosts.
     */
    private static Histogram localUffd(int pages, Histogram writeProtect) throws Exception {
        Histogram h = histogram();
        Posix px = Posix.current();
        long len = pages * DsmPages.PAGE_SIZE;
        int rw = PosixConstants.PROT_READ | PosixConstants.PROT_WRITE;
        int fd = Posix.check(px.memfdCreate("bench-local", PosixConstants.MFD_CLOEXEC), "memfd");
        Posix.check(px.ftruncate(fd, len), "ftruncate");
        MemorySegment guest = px.mmapChecked(0, len, rw, PosixConstants.MAP_SHARED, fd, 0, "guest");
        try (Arena arena = Arena.ofShared(); Userfaultfd uffd = DsmPages.registerGuestMapping(guest);
             DsmPages dsm = new DsmPages(uffd, fd, guest)) {
            MemorySegment src = arena.allocate(DsmPages.PAGE_SIZE, DsmPages.PAGE_SIZE);
            FaultReader reader = new FaultReader(uffd, guest, (page, w, wp, tid) -> dsm.install(page, src, true),
                    "bench-uffd");
            reader.start();
            try {
                on(() -> {
                    MemorySegment word = Arena.ofAuto().allocate(8, 8);
                    for (int i = 0; i < pages; i++) {
                        long t0 = System.nanoTime();
                        Posix.copyNative(guest, i * 4096L, word, 0, 8);
                        h.recordValue(System.nanoTime() - t0);
                    }
                    for (int i = 0; i < pages; i++) {
                        Posix.copyNative(word, 0, guest, i * 4096L, 8);
                        long t0 = System.nanoTime();
                        dsm.downgrade(i);
                        writeProtect.recordValue(System.nanoTime() - t0);
                    }
                });
            } finally {
                reader.close();
            }
        } finally {
            px.munmap(guest);
            px.close(fd);
        }
        return h;
    }

    private static Histogram roundTrip(int n, String kind) throws Exception {
        Histogram h = histogram();
        Transport a = Transport.loopback(kind, 0, 2, SECRET);
        Transport b = Transport.loopback(kind, 1, 2, SECRET);
        try (Arena arena = Arena.ofShared(); a; b) {
            MemorySegment page = arena.allocate(DsmPages.PAGE_SIZE, DsmPages.PAGE_SIZE);
            OutboundMessage reply = new OutboundMessage().type((short) 2).payload(page, 0, (int) DsmPages.PAGE_SIZE);
            List<Endpoint> cluster = List.of(a.localEndpoint(), b.localEndpoint());
            a.start(cluster, m -> { }, PeerListener.NONE);
            b.start(cluster, m -> {
                try {
                    b.reply(m, reply);
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }, PeerListener.NONE);
            a.awaitConnected(Duration.ofSeconds(10));
            b.awaitConnected(Duration.ofSeconds(10));
            MemorySegment into = arena.allocate(DsmPages.PAGE_SIZE, DsmPages.PAGE_SIZE);
            ReplyBuffer rb = new ReplyBuffer(into, 0, (int) DsmPages.PAGE_SIZE);
            OutboundMessage req = new OutboundMessage().type((short) 1).arg0(7);
            for (int i = 0; i < n + 2000; i++) {
                long t0 = System.nanoTime();
                a.request(1, req, rb, 5_000_000_000L);
                if (i >= 2000) {
                    h.recordValue(System.nanoTime() - t0);
                }
            }
        }
        return h;
    }

    /**
     * Two threads on two nodes storing their own running count into the same word for 2 s: {page transfers/s,
     * stores/s}. The stores are native copies, so a thread blocked on a fault is "in native" and cannot stall a
     * HotSpot safepoint (which would stop the DSM threads that are to resolve the fault).
     */
    private static double[] pingPong(long holdNanos, long busyPollNanos, String kind) throws Exception {
        try (LocalDsmCluster c = new LocalDsmCluster(new ProtocolConfig(2, 2, 1, holdNanos, 1 << 14), null,
                busyPollNanos, kind)) {
            long[] done = new long[2];
            long deadline = System.nanoTime() + 2_000_000_000L;
            Thread[] t = new Thread[2];
            for (int r = 0; r < 2; r++) {
                final int me = r;
                final MemorySegment g = c.guest(r);
                t[r] = Thread.ofPlatform().start(() -> {
                    MemorySegment word = Arena.ofAuto().allocate(8, 8);
                    long count = 0;
                    while (System.nanoTime() < deadline) {
                        word.set(ValueLayout.JAVA_LONG, 0, ++count);
                        Posix.copyNative(word, 0, g, 4096L, 8);
                    }
                    done[me] = count;
                });
            }
            for (Thread x : t) {
                x.join();
            }
            long transfers = c.node(0).stats().remoteFetches() + c.node(1).stats().remoteFetches();
            return new double[] {transfers / 2.0, (done[0] + done[1]) / 2.0};
        }
    }
}
