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
import dev.dvmm.dsm.transport.MessageHandler;
import dev.dvmm.dsm.transport.OutboundMessage;
import dev.dvmm.dsm.transport.PeerListener;
import dev.dvmm.dsm.transport.ReplyBuffer;
import dev.dvmm.dsm.transport.Transport;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
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
    static final byte[] SECRET = "dvmm-fault-benchmark-secret-0123".getBytes();

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
     * @param nodeProcesses each node (and each end of the round trip and the ping-pong) ran in a process of its own
     * @param pinnedCpus   with node processes: each was confined to a CPU of its own (node r to CPU r)
     */
    public record Result(String transport, boolean oneSidedReads, boolean nodeProcesses, boolean pinnedCpus, int nodes,
                         int pages, long busyPollMicros,
                         Histogram[] twoParty, Histogram[] threeParty,
                         Histogram localUffd, Histogram rtt, Histogram writeProtect, String[][] stages, double pingPongPagesPerSec,
                         double pingPongHeldPagesPerSec, long holdMicros, double incrementsPerSec, double incrementsHeldPerSec,
                         double[] roundRatios, double[] roundRatiosThreeParty, double[][] roundP50s) {
        private static double us(Histogram h, double p) {
            return h.getTotalCount() == 0 ? 0 : h.getValueAtPercentile(p) / 1e3;
        }

        /**
         * Remote read p50 over (local uffd p50 + RTT p50), the cost of the DSM beyond its two unavoidable parts: the
         * median of the rounds' own ratios, each over baselines measured right after that round's faults.
         */
        public double ratio() {
            return TransportComparison.median(roundRatios);
        }

        /** The same for 3-party reads, whose floor is 1.5 round trips. */
        public double ratioThreeParty() {
            return TransportComparison.median(roundRatiosThreeParty);
        }

        /** Rounds of faults and baselines measured. */
        public int rounds() {
            return roundRatios.length;
        }

        private static String list(double[] values) {
            StringBuilder b = new StringBuilder();
            for (double v : values) {
                b.append(b.isEmpty() ? "" : ", ").append(String.format(Locale.ROOT, "%.3f", v));
            }
            return b.toString();
        }

        private static String pair(Histogram h) {
            return String.format(Locale.ROOT, "{\"p50\": %.1f, \"p99\": %.1f, \"count\": %d}", us(h, 50), us(h, 99),
                    h.getTotalCount());
        }

        public String toJson() {
            StringBuilder s = new StringBuilder();
            s.append(String.format(Locale.ROOT, "{%n  \"benchmark\": \"fault\",%n  \"nodes\": %d,%n"
                    + "  \"transport\": \"%s\",%n  \"one_sided_reads\": %b,%n  \"node_processes\": %b,%n"
                    + "  \"node_processes_pinned_to_cpus\": %b,%n"
                    + "  \"busy_poll_us\": %d,%n  \"faults_per_kind\": %d,%n", nodes, transport, oneSidedReads,
                    nodeProcesses, pinnedCpus, busyPollMicros, pages));
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
            // Which measurements crossed process boundaries: the local baselines never do.
            s.append(String.format(Locale.ROOT, "  \"rtt_4k_between_processes\": %b,%n", nodeProcesses));
            s.append("  \"host_write_protect_us\": ").append(pair(writeProtect)).append(",\n");
            s.append(String.format(Locale.ROOT, "  \"rounds\": %d,%n", rounds()));
            s.append(String.format(Locale.ROOT, "  \"ratio_remote_read_p50_over_local_plus_rtt\": %.3f,%n", ratio()));
            s.append("  \"ratio_rounds\": [").append(list(roundRatios)).append("],\n");
            // What each round's ratio is made of: its own remote read, local fault and round trip p50s (us).
            s.append("  \"rounds_p50_us\": [");
            for (int i = 0; i < roundP50s.length; i++) {
                s.append(i == 0 ? "" : ", ").append(String.format(Locale.ROOT,
                        "{\"remote_read\": %.1f, \"local_uffd\": %.1f, \"rtt_4k\": %.1f}", roundP50s[i][0],
                        roundP50s[i][1], roundP50s[i][2]));
            }
            s.append("],\n");
            if (nodes > 2) {
                s.append(String.format(Locale.ROOT,
                        "  \"ratio_remote_read_3party_p50_over_local_plus_1_5_rtt\": %.3f,%n", ratioThreeParty()));
                s.append("  \"ratio_3party_rounds\": [").append(list(roundRatiosThreeParty)).append("],\n");
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
            s.append(String.format(Locale.ROOT, "  \"ping_pong_nodes\": 2,%n  \"ping_pong_node_processes\": "
                    + nodeProcesses + ",%n"
                    + "  \"ping_pong_pages_per_s\": {\"hold_0\": %.0f, \"hold_%dus\": %.0f},%n"
                    + "  \"ping_pong_increments_per_s\": {\"hold_0\": %.0f, \"hold_%dus\": %.0f}%n}%n",
                    pingPongPagesPerSec, holdMicros, pingPongHeldPagesPerSec, incrementsPerSec, holdMicros,
                    incrementsHeldPerSec));
            return s.toString();
        }

        /**
         * Where the ping-pong ran. On a CPU per node, each node's storing thread shares that CPU with the node's DSM
         * threads, which must preempt it to hand the page on: a far lower rate than threads with cores to spare.
         */
        private String processes() {
            return nodeProcesses ? (pinnedCpus ? ", 2 processes, 1 CPU each" : ", 2 processes") : "";
        }

        public String toTable() {
            StringBuilder s = new StringBuilder();
            s.append(String.format(Locale.ROOT, "%-40s %10s %10s%n", "DSM fault cost (" + nodes + " nodes, " + transport
                    + (oneSidedReads ? ", one-sided reads" : "") + (busyPollMicros > 0 ? ", busy-poll " + busyPollMicros + " us" : "")
                    + (nodeProcesses ? (pinnedCpus ? ", one process per node, each on a CPU of its own"
                    : ", one process per node") : ", all nodes in one process")
                    + (rounds() > 1 ? ", " + rounds() + " rounds)" : ")"),
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
            row(s, nodeProcesses ? "4 KiB round trip, 2 processes (baseline)" : "4 KiB round trip (baseline)", rtt);
            row(s, "write-protect a written page (host)", writeProtect);
            String ofRounds = rounds() > 1 ? " (median of " + rounds() + " rounds: " : " (";
            s.append(String.format(Locale.ROOT, "%-40s %10.3f%s%s; target 1.3)%n", "remote read / (local + rtt), p50",
                    ratio(), ofRounds, rounds() > 1 ? list(roundRatios) : "1 round"));
            if (nodes > 2) {
                s.append(String.format(Locale.ROOT, "%-40s %10.3f%s%s)%n", "3-party read / (local + 1.5 rtt), p50",
                        ratioThreeParty(), ofRounds, rounds() > 1 ? list(roundRatiosThreeParty) : "1 round"));
            }
            s.append(String.format(Locale.ROOT, "%-40s %10.0f pages/s (%.0f stores/s)%n%-40s %10.0f pages/s "
                    + "(%.0f stores/s)%n", "ping-pong, hold 0" + processes(), pingPongPagesPerSec, incrementsPerSec,
                    "ping-pong, hold " + holdMicros + " us" + processes(), pingPongHeldPagesPerSec, incrementsHeldPerSec));
            for (int party = 0; party < 2; party++) {
                for (int k = 0; k < KIND.length; k++) {
                    String[] lines = stages[party * KIND.length + k];
                    if (lines != null) {
                        s.append("stages of remote ").append(KIND[k]).append(party == 0 ? "" : ", 3-party")
                                .append(rounds() > 1 ? " (median us, last round):\n" : " (median us):\n");
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

    /** Which node accesses a page in a pass: by the roles of {@link #firstWriter}, {@link #reader}, {@link #secondReader}. */
    static final int FIRST_WRITER = 0;
    static final int BY_READER = 1;
    static final int BY_SECOND_READER = 2;

    /**
     * One pass through the pages, each accessed once, in the node that {@code role} names: a store of {@link #valueAt}
     * or a load that must read it, at {@code offset} in the page; timed into the histogram of {@code kind}, or not timed
     * when {@code kind} is negative. Both modes run the same passes, so each access runs in the same node in both.
     */
    record Pass(int kind, boolean store, int offset, int role) {}

    /** The passes of a run, in order. */
    static List<Pass> passes(int nodes) {
        List<Pass> passes = new ArrayList<>(List.of(
                // First writes: zero fills (local at the home, or one hop), not measured.
                new Pass(-1, true, 0, FIRST_WRITER),
                // Remote read: the data comes from the first writer.
                new Pass(READ, false, 0, BY_READER),
                // Upgrade: the reader writes its read-only copy; the first writer's copy is invalidated.
                new Pass(UPGRADE, true, 8, BY_READER),
                // Write miss: the first writer writes again; the data comes from the reader, which drops its copy.
                new Pass(WRITE_MISS, true, 16, FIRST_WRITER),
                // The last writer must see the upgrade's write.
                new Pass(-1, false, 8, FIRST_WRITER)));
        if (nodes > 2) {
            // Clean read: the reader reads again (the writer downgrades: not measured), then the fourth node reads a
            // page that its owner holds read-only. The home holds a copy only on two-party pages.
            passes.add(new Pass(-1, false, 0, BY_READER));
            passes.add(new Pass(CLEAN_READ, false, 0, BY_SECOND_READER));
        }
        return passes;
    }

    /** The word stored at {@code offset} of page {@code p}: the upgrade's store is told apart by its sign. */
    static long valueAt(int offset, int p) {
        return offset == 8 ? -p : p;
    }

    private static int nodeOf(int role, int nodes, int p) {
        return switch (role) {
            case FIRST_WRITER -> firstWriter(nodes, p);
            case BY_READER -> reader(nodes, p);
            default -> secondReader(nodes, p);
        };
    }

    /**
     * Runs {@code pass} over the pages {@code first..first+n-1} that fall to {@code rank}, through {@code guest} (that
     * node's guest mapping), timing into {@code two} or {@code three} by the page's party count, recording the accesses
     * into {@code trace} unless it is null. Throws on a wrong value.
     * Runs on a platform thread (see {@link #on}).
     */
    static void runPass(Pass pass, int nodes, int rank, int first, int n, MemorySegment guest, MemorySegment word,
                        FaultTrace trace, Histogram[] two, Histogram[] three) {
        for (int p = first; p < first + n; p++) {
            if (nodeOf(pass.role(), nodes, p) != rank) {
                continue;
            }
            long at = p * 4096L + pass.offset();
            Histogram[] h = threeParty(nodes, p) ? three : two;
            if (pass.store()) {
                word.set(ValueLayout.JAVA_LONG, 0, valueAt(pass.offset(), p));
            }
            if (trace != null && pass.kind() >= 0) {
                trace.record(rank, FaultTrace.ACCESS, pass.kind(), p);
            }
            long t0 = System.nanoTime();
            if (pass.store()) {
                Posix.copyNative(word, 0, guest, at, 8);
            } else {
                Posix.copyNative(guest, at, word, 0, 8);
            }
            long t1 = System.nanoTime();
            if (pass.kind() >= 0) {
                if (trace != null) {
                    trace.record(rank, FaultTrace.ACCESS_DONE, pass.kind(), p);
                }
                h[pass.kind()].recordValue(t1 - t0);
            }
            long got = word.get(ValueLayout.JAVA_LONG, 0);
            if (!pass.store() && got != valueAt(pass.offset(), p)) {
                throw new IllegalStateException((pass.kind() < 0 ? "check" : KIND[pass.kind()]) + ": page " + p
                        + " offset " + pass.offset() + " read " + got + ", expected " + valueAt(pass.offset(), p));
            }
        }
    }

    /**
     * Runs {@code body} on a fresh platform thread and waits (guest-memory access must not be on the caller); what it
     * throws is thrown here.
     */
    static void on(Runnable body) throws InterruptedException {
        Throwable[] failed = new Throwable[1];
        Thread t = Thread.ofPlatform().start(() -> {
            try {
                body.run();
            } catch (RuntimeException | Error e) {
                failed[0] = e;
            }
        });
        t.join();
        if (failed[0] instanceof RuntimeException e) {
            throw e;
        }
        if (failed[0] instanceof Error e) {
            throw e;
        }
    }

    static Histogram histogram() {
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

    /** Measured pages for {@code pages} asked: rounded up so that every role pattern gets the same number of pages. */
    static int measuredPages(int nodes, int pages) {
        return (pages + 2 * nodes - 1) / (2 * nodes) * (2 * nodes);
    }

    /** Trace capacity for one run of the passes over {@code n} pages (all nodes). */
    static int traceCapacity(int n) {
        return 96 * n;
    }

    public static Result run(int nodes, int pages, long holdMicros, long busyPollMicros, java.io.PrintStream progress)
            throws Exception {
        return run(nodes, pages, holdMicros, busyPollMicros, "tcp", false, progress);
    }

    /**
     * The default of {@code dvmm bench fault}: one process per node when each can have a CPU of its own, which models
     * separate machines; else all nodes in one process (more node processes than CPUs measure the oversubscription).
     */
    public static boolean nodeProcessesByDefault(int nodes) {
        return NodeProcesses.canPin(nodes);
    }

    /** As below, all nodes in this process. */
    public static Result run(int nodes, int pages, long holdMicros, long busyPollMicros, String transport,
                             boolean oneSidedReads, java.io.PrintStream progress) throws Exception {
        return run(nodes, pages, holdMicros, busyPollMicros, transport, oneSidedReads, false, progress);
    }

    /** As below, one round. */
    public static Result run(int nodes, int pages, long holdMicros, long busyPollMicros, String transport,
                             boolean oneSidedReads, boolean nodeProcesses, java.io.PrintStream progress)
            throws Exception {
        return run(nodes, pages, holdMicros, busyPollMicros, transport, oneSidedReads, nodeProcesses, 1, progress);
    }

    /**
     * As above over loopback {@code transport}: "tcp" or "ucx" (the round-trip baseline uses the same); with
     * {@code oneSidedReads} (ucx only) reads of clean pages whose home holds no copy are one-sided. With
     * {@code nodeProcesses} every node is a JVM process of its own ({@link NodeProcesses}), as in a deployment, and so
     * are the two ends of the round-trip baseline and the ping-pong nodes, and the local baselines run in node
     * process 0; otherwise all run in this process, where
     * every write-protect or punch of a page also flushes the TLBs of the CPUs that run the other nodes' threads.
     * Pages 1..n are measured, after a warm-up of the same passes over pages n+1..2n (not timed), so that each
     * process's JIT has compiled its fault path before the first measured fault. The measured faults run with no trace
     * (as the DSM runs): in the last round the same passes run once more over pages 2n+1..3n with the trace on, for the
     * stages, untimed (recording the trace costs about 0.5 us per fault here). Each of {@code rounds} rounds
     * measures the faults on fresh nodes and then both baselines; the ratio is the median of the rounds' own ratios
     * (a host whose speed drifts between the faults and the baselines skews one round, not the result), the
     * histograms are merged over the rounds, and the stages come from the traced passes of the last round.
     */
    public static Result run(int nodes, int pages, long holdMicros, long busyPollMicros, String transport,
                             boolean oneSidedReads, boolean nodeProcesses, int rounds, java.io.PrintStream progress)
            throws Exception {
        if (nodes != 2 && nodes != 4) {
            throw new IllegalArgumentException("the fault benchmark runs 2 or 4 nodes, not " + nodes);
        }
        if (!transport.equals("tcp") && !transport.equals("ucx")) {
            throw new IllegalArgumentException("unknown transport '" + transport + "': use tcp or ucx");
        }
        if (rounds < 1) {
            throw new IllegalArgumentException("the fault benchmark needs at least 1 round, not " + rounds);
        }
        int n = measuredPages(nodes, pages);
        progress.println("remote faults over " + n + " pages (" + nodes + " nodes, " + transport + " loopback, "
                + (nodeProcesses ? "one process per node" + (NodeProcesses.canPin(nodes) ? ", each on a CPU of its own"
                : "") : "all nodes in this process") + ")" + (rounds > 1 ? ", " + rounds + " rounds" : ""));
        List<Round> done = new ArrayList<>();
        if (nodeProcesses) {
            try (NodeProcesses procs = NodeProcesses.start(nodes, progress)) {
                // The trace timestamps of all processes are merged on one time line: System.nanoTime() is
                // clock_gettime(CLOCK_MONOTONIC) in HotSpot on Linux (os_posix.cpp, javaTimeNanos, JDK 25 too), one
                // clock for every process of a host. Checked here, cheaply, on each node process.
                for (int r = 0; r < nodes; r++) {
                    procs.checkClock(r);
                }
                for (int i = 0; i <= rounds; i++) {
                    Round r = processRound(procs, nodes, n, busyPollMicros, transport, oneSidedReads, i == rounds,
                            progress, roundTag(i, rounds));
                    if (i > 0) {
                        done.add(r);
                    }
                }
                progress.println("page ping-pong, hold 0 (node processes)");
                double[] free = pingPong(procs, 0, busyPollMicros * 1000, transport);
                progress.println("page ping-pong, hold " + holdMicros + " us (node processes)");
                double[] held = pingPong(procs, holdMicros * 1000, busyPollMicros * 1000, transport);
                return combine(done, transport, oneSidedReads, true, procs.pinned(), nodes, n, busyPollMicros, free,
                        held, holdMicros);
            }
        }
        for (int i = 0; i <= rounds; i++) {
            Round r = inProcessRound(nodes, n, busyPollMicros, transport, oneSidedReads, i == rounds, progress,
                    roundTag(i, rounds));
            if (i > 0) {
                done.add(r);
            }
        }
        progress.println("page ping-pong, hold 0");
        double[] free = pingPong(0, busyPollMicros * 1000, transport);
        progress.println("page ping-pong, hold " + holdMicros + " us");
        double[] held = pingPong(holdMicros * 1000, busyPollMicros * 1000, transport);
        return combine(done, transport, oneSidedReads, false, false, nodes, n, busyPollMicros, free, held, holdMicros);
    }

    /** What one round measures: the faults (with their trace), then both baselines right after them. */
    private record Round(Histogram[] two, Histogram[] three, FaultTrace trace, Histogram local, Histogram writeProtect,
                         Histogram rtt) {
        double ratio() {
            return Result.us(two[READ], 50) / (Result.us(local, 50) + Result.us(rtt, 50));
        }

        double ratioThreeParty() {
            return Result.us(three[READ], 50) / (Result.us(local, 50) + 1.5 * Result.us(rtt, 50));
        }
    }

    /**
     * Round 0 is a warm-up round, not counted: on a node process confined to one CPU, C2 compiles on that CPU and each
     * yield of the busy-polling DSM and transport threads hands it a time slice, so faults measured while it still
     * compiles the fault path have a p99 of milliseconds (ucx: 0.4-3.2 ms; 110 us with C1 only).
     */
    private static String roundTag(int i, int rounds) {
        return i == 0 ? "warm-up round (not counted): " : rounds > 1 ? "round " + i + " of " + rounds + ": " : "";
    }

    /** The rounds merged: histograms added up, a ratio per round, the stages of the last round. */
    private static Result combine(List<Round> rounds, String transport, boolean oneSidedReads, boolean nodeProcesses,
                                  boolean pinned, int nodes, int n, long busyPollMicros, double[] free, double[] held,
                                  long holdMicros) {
        Histogram[] two = {histogram(), histogram(), histogram(), histogram()};
        Histogram[] three = {histogram(), histogram(), histogram(), histogram()};
        Histogram local = histogram();
        Histogram writeProtect = histogram();
        Histogram rtt = histogram();
        double[] ratios = new double[rounds.size()];
        double[] ratios3 = new double[rounds.size()];
        double[][] p50s = new double[rounds.size()][];
        for (int i = 0; i < rounds.size(); i++) {
            Round r = rounds.get(i);
            for (int k = 0; k < KIND.length; k++) {
                two[k].add(r.two()[k]);
                three[k].add(r.three()[k]);
            }
            local.add(r.local());
            writeProtect.add(r.writeProtect());
            rtt.add(r.rtt());
            ratios[i] = r.ratio();
            ratios3[i] = r.ratioThreeParty();
            p50s[i] = new double[] {Result.us(r.two()[READ], 50), Result.us(r.local(), 50), Result.us(r.rtt(), 50)};
        }
        String[][] stages = stages(rounds.get(rounds.size() - 1).trace(), nodes);
        return new Result(transport, oneSidedReads, nodeProcesses, pinned, nodes, n, busyPollMicros, two, three, local,
                rtt, writeProtect, stages, free[0], held[0], holdMicros, free[1], held[1], ratios, ratios3, p50s);
    }

    /** One round with all nodes in this process. */
    private static Round inProcessRound(int nodes, int n, long busyPollMicros, String transport, boolean oneSidedReads,
                                        boolean traced, java.io.PrintStream progress, String tag) throws Exception {
        Histogram[] two = {histogram(), histogram(), histogram(), histogram()};
        Histogram[] three = {histogram(), histogram(), histogram(), histogram()};
        FaultTrace trace = traced ? new FaultTrace(traceCapacity(n)) : null;
        ProtocolConfig config = new ProtocolConfig(nodes, 3 * n + 1, 1, 0, 1 << 14).withOneSidedReads(oneSidedReads);
        progress.println(tag + "remote faults");
        try (LocalDsmCluster c = new LocalDsmCluster(config, null, busyPollMicros * 1000, transport)) {
            MemorySegment[] guest = new MemorySegment[nodes];
            for (int r = 0; r < nodes; r++) {
                guest[r] = c.guest(r);
            }
            List<Pass> passes = passes(nodes);
            Histogram[] scratch = {histogram(), histogram(), histogram(), histogram()};
            on(() -> {
                MemorySegment word = Arena.ofAuto().allocate(8, 8);
                // Node by node within a pass, as the node processes run it: one access at a time in the cluster.
                for (Pass pass : passes) {
                    for (int r = 0; r < nodes; r++) {
                        runPass(pass, nodes, r, n + 1, n, guest[r], word, null, scratch, scratch);
                    }
                }
                for (Pass pass : passes) {
                    for (int r = 0; r < nodes; r++) {
                        runPass(pass, nodes, r, 1, n, guest[r], word, null, two, three);
                    }
                }
                if (trace != null) {
                    for (int r = 0; r < nodes; r++) {
                        c.node(r).setTrace(trace);
                    }
                    for (Pass pass : passes) {
                        for (int r = 0; r < nodes; r++) {
                            runPass(pass, nodes, r, 2 * n + 1, n, guest[r], word, trace, scratch, scratch);
                        }
                    }
                }
            });
            if (c.failure() != null) {
                throw new IllegalStateException("DSM failed during the benchmark: " + c.failure());
            }
        }
        progress.println(tag + "local userfaultfd baseline");
        Histogram writeProtect = histogram();
        Histogram local = localBaselines(n, writeProtect);
        progress.println(tag + "4 KiB round trip baseline");
        Histogram rtt = roundTrip(Math.max(n, 5000), transport);
        return new Round(two, three, trace, local, writeProtect, rtt);
    }

    private static String[][] stages(FaultTrace trace, int nodes) {
        String[][] stages = new String[2 * KIND.length][];
        for (int party = 0; party < (nodes > 2 ? 2 : 1); party++) {
            for (int k = 0; k < KIND.length; k++) {
                stages[party * KIND.length + k] = FaultStages.frequentPaths(trace, nodes, k, party == 1);
            }
        }
        return stages;
    }

    /**
     * One round with one process per node. The passes go to the nodes one at a time (node by node within a pass), so
     * as in one process there is one access at a time in the cluster. Each node times its own accesses and records its
     * own trace; the histograms and traces come back at the end and are merged. The local baselines run in node
     * process 0, in the same kind of process as the faults they are compared with.
     */
    private static Round processRound(NodeProcesses procs, int nodes, int n, long busyPollMicros, String transport,
                                      boolean oneSidedReads, boolean traced, java.io.PrintStream progress, String tag) {
        progress.println(tag + "remote faults (node processes)");
        List<Pass> passes = passes(nodes);
        String[] endpoints = procs.all(nodes, "dsm " + nodes + " " + (3 * n + 1) + " 0 " + busyPollMicros * 1000 + " "
                + transport + " " + oneSidedReads + " " + traceCapacity(n));
        procs.all(nodes, "connect " + NodeProcesses.endpointList(endpoints, "endpoint "));
        for (String kind : traced ? List.of("warm-up", "measured", "traced") : List.of("warm-up", "measured")) {
            if (kind.equals("traced")) {
                procs.all(nodes, "trace-on"); // every node records from the first traced access on
            }
            for (int i = 0; i < passes.size(); i++) {
                for (int r = 0; r < nodes; r++) {
                    procs.call(r, "pass " + i + " " + kind);
                }
            }
        }
        Histogram[] two = {histogram(), histogram(), histogram(), histogram()};
        Histogram[] three = {histogram(), histogram(), histogram(), histogram()};
        List<long[]> events = new ArrayList<>();
        int total = 0;
        procs.all(nodes, "stop");
        for (int r = 0; r < nodes; r++) {
            String[] f = procs.call(r, "results").split(" ", -1);
            for (int k = 0; k < KIND.length; k++) {
                two[k].add(NodeProcesses.decodeHistogram(f[1 + k]));
                three[k].add(NodeProcesses.decodeHistogram(f[1 + KIND.length + k]));
            }
            long[] e = NodeProcesses.decodeLongs(f[1 + 2 * KIND.length]);
            events.add(e);
            total += e.length / 2;
        }
        procs.all(nodes, "close");
        FaultTrace trace = mergedByTime(events, total);
        // In a node process like the faults it is compared with, not in the driver (which has run no fault path).
        progress.println(tag + "local userfaultfd baseline (in node process 0)");
        String[] baselines = procs.call(0, "local " + n).split(" ", -1);
        if (baselines.length != 3) {
            throw new BenchmarkException("node process 0 answered the local baseline with " + baselines.length
                    + " fields, not 3");
        }
        Histogram local = NodeProcesses.decodeHistogram(baselines[1]);
        Histogram writeProtect = NodeProcesses.decodeHistogram(baselines[2]);
        progress.println(tag + "4 KiB round trip baseline (between two node processes)");
        String[] echo = procs.all(2, "echo " + transport);
        procs.all(2, "connect " + NodeProcesses.endpointList(echo, "endpoint "));
        Histogram rtt = NodeProcesses.decodeHistogram(procs.call(0, "rtt " + Math.max(n, 5000)).substring("histogram ".length()));
        procs.all(2, "close");
        return new Round(two, three, trace, local, writeProtect, rtt);
    }

    /** One trace of the events of all processes ({time, packed} pairs each), in time order as one process records. */
    private static FaultTrace mergedByTime(List<long[]> events, int total) {
        long[][] all = new long[total][];
        int i = 0;
        for (long[] e : events) {
            for (int j = 0; j < e.length; j += 2) {
                all[i++] = new long[] {e[j], e[j + 1]};
            }
        }
        Arrays.sort(all, (a, b) -> Long.compare(a[0], b[0]));
        FaultTrace trace = new FaultTrace(Math.max(1, total));
        for (long[] e : all) {
            trace.add(e[0], e[1]);
        }
        return trace;
    }

    /** {@link #pingPong(long, long, String)} with the two nodes in node processes 0 and 1. */
    private static double[] pingPong(NodeProcesses procs, long holdNanos, long busyPollNanos, String kind) {
        String[] endpoints = procs.all(2, "dsm 2 2 " + holdNanos + " " + busyPollNanos + " " + kind + " false 0");
        procs.all(2, "connect " + NodeProcesses.endpointList(endpoints, "endpoint "));
        // Both start at one instant of the shared clock and stop 2 s later, as the two threads of the in-process run.
        long start = System.nanoTime() + 300_000_000L;
        String[] done = procs.all(2, "ping-pong " + start + " " + (start + 2_000_000_000L));
        String[] stopped = procs.all(2, "stop");
        procs.all(2, "close");
        long stores = 0;
        long transfers = 0;
        for (int r = 0; r < 2; r++) {
            stores += Long.parseLong(done[r].substring("done ".length()));
            transfers += Long.parseLong(stopped[r].substring("stopped ".length()));
        }
        return new double[] {transfers / 2.0, stores / 2.0};
    }

    /** Measured runs of the local baselines; the one with the median fault p50 is reported. */
    static final int LOCAL_ROUNDS = 3;

    /**
     * {@link #localUffd} after an untimed run of it (this process's JIT must have compiled the fault reader and the
     * page install first, which a driver of node processes has not run before, nor a single process fully), then
     * {@link #LOCAL_ROUNDS} measured runs of which the median one (by fault p50) is kept: on a host whose cross-CPU
     * wake-ups are slow in some spells, one run of this baseline came out at 40-74 us p50 against 5-8 us usually
     * (3 of 12 node-process runs), which would make any ratio over it meaningless.
     */
    static Histogram localBaselines(int pages, Histogram writeProtect) throws Exception {
        localUffd(pages, histogram());
        Histogram[] local = new Histogram[LOCAL_ROUNDS];
        Histogram[] wp = new Histogram[LOCAL_ROUNDS];
        Integer[] order = new Integer[LOCAL_ROUNDS];
        for (int i = 0; i < LOCAL_ROUNDS; i++) {
            wp[i] = histogram();
            local[i] = localUffd(pages, wp[i]);
            order[i] = i;
        }
        java.util.Arrays.sort(order, (a, b) -> Long.compare(local[a].getValueAtPercentile(50),
                local[b].getValueAtPercentile(50)));
        int median = order[LOCAL_ROUNDS / 2];
        writeProtect.add(wp[median]);
        return local[median];
    }

    /**
     * A local fault resolved with UFFDIO_COPY, per page, with the faulting thread and the fault reader confined to one
     * CPU (where the host allows it); then, into {@code writeProtect}, what write-protecting a page
     * that was just written costs on this host (the downgrade an owner does before it serves a read): a TLB flush on
     * every CPU where this process's threads ran, cheap on bare metal, an expensive IPI on some nested hosts.
     */
    private static Histogram localUffd(int pages, Histogram writeProtect) throws Exception {
        Histogram h = histogram();
        Posix px = Posix.current();
        // One more page than timed: its fault confines the fault reader to the faulting thread's CPU first.
        long len = (pages + 1) * DsmPages.PAGE_SIZE;
        int rw = PosixConstants.PROT_READ | PosixConstants.PROT_WRITE;
        int fd = Posix.check(px.memfdCreate("bench-local", PosixConstants.MFD_CLOEXEC), "memfd");
        Posix.check(px.ftruncate(fd, len), "ftruncate");
        MemorySegment guest = px.mmapChecked(0, len, rw, PosixConstants.MAP_SHARED, fd, 0, "guest");
        try (Arena arena = Arena.ofShared(); Userfaultfd uffd = DsmPages.registerGuestMapping(guest);
             DsmPages dsm = new DsmPages(uffd, fd, guest)) {
            MemorySegment src = arena.allocate(DsmPages.PAGE_SIZE, DsmPages.PAGE_SIZE);
            java.util.concurrent.atomic.AtomicInteger cpu = new java.util.concurrent.atomic.AtomicInteger(-1);
            FaultReader reader = new FaultReader(uffd, guest, (page, w, wp, tid) -> {
                if (page == pages && cpu.get() >= 0) {
                    Posix.current().pinThread(0, cpu.get());
                }
                dsm.install(page, src, true);
            }, "bench-uffd");
            reader.start();
            try {
                on(() -> {
                    MemorySegment word = Arena.ofAuto().allocate(8, 8);
                    // The floor of a local fault: the faulting thread and the fault reader on one CPU, as in a node
                    // process confined to one. Unconfined, the reader's wake-up crossed CPUs, and in some spells of
                    // this host that took 40-74 us instead of 5-8 (a ratio over such a floor means nothing).
                    int here = Posix.currentCpu();
                    if (here >= 0 && Posix.current().pinThread(0, here) == 0) {
                        cpu.set(here);
                    }
                    Posix.copyNative(guest, pages * 4096L, word, 0, 8);
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
            b.start(cluster, echo(b, reply), PeerListener.NONE);
            a.awaitConnected(Duration.ofSeconds(10));
            b.awaitConnected(Duration.ofSeconds(10));
            roundTrips(a, 1, n, h);
        }
        return h;
    }

    /** Untimed round trips before the timed ones (see {@link #roundTrips}). */
    static final int RTT_WARMUP = 20_000;

    /**
     * {@code n} timed 4 KiB round trips from {@code a} to {@code peer} after {@link #RTT_WARMUP} untimed ones, into
     * {@code h}. The warm-up is long enough for C2 to have compiled the request path: on a node process confined to
     * one CPU a compilation runs on that CPU, and each yield of the transport's busy-polling threads hands it a time
     * slice; with 2,000 warm-up round trips the ucx round trip's p99 was 0.7-3.5 ms (56 us with C1 only).
     */
    static void roundTrips(Transport a, int peer, int n, Histogram h) throws Exception {
        // Shared: the transport's receive thread copies each reply into it.
        try (Arena arena = Arena.ofShared()) {
            MemorySegment into = arena.allocate(DsmPages.PAGE_SIZE, DsmPages.PAGE_SIZE);
            ReplyBuffer rb = new ReplyBuffer(into, 0, (int) DsmPages.PAGE_SIZE);
            OutboundMessage req = new OutboundMessage().type((short) 1).arg0(7);
            for (int i = 0; i < n + RTT_WARMUP; i++) {
                long t0 = System.nanoTime();
                a.request(peer, req, rb, 5_000_000_000L);
                if (i >= RTT_WARMUP) {
                    h.recordValue(System.nanoTime() - t0);
                }
            }
        }
    }

    /** A handler that answers every request with the 4 KiB {@code reply}. */
    static MessageHandler echo(Transport t, OutboundMessage reply) {
        return m -> {
            try {
                t.reply(m, reply);
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        };
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
            long start = System.nanoTime();
            Thread[] t = new Thread[2];
            for (int r = 0; r < 2; r++) {
                final int me = r;
                final MemorySegment g = c.guest(r);
                t[r] = Thread.ofPlatform().start(() -> done[me] = pingPongStores(g, start, start + 2_000_000_000L));
            }
            for (Thread x : t) {
                x.join();
            }
            long transfers = c.node(0).stats().remoteFetches() + c.node(1).stats().remoteFetches();
            return new double[] {transfers / 2.0, (done[0] + done[1]) / 2.0};
        }
    }

    /** One side of the ping-pong: from {@code start} until {@code deadline}, stores its running count; returns it. */
    static long pingPongStores(MemorySegment g, long start, long deadline) {
        MemorySegment word = Arena.ofAuto().allocate(8, 8);
        while (System.nanoTime() < start) {
            Thread.onSpinWait();
        }
        long count = 0;
        while (System.nanoTime() < deadline) {
            word.set(ValueLayout.JAVA_LONG, 0, ++count);
            Posix.copyNative(word, 0, g, 4096L, 8);
        }
        return count;
    }
}
