package dev.dvmm.dsm.bench;

import dev.dvmm.bindings.Ucp;
import dev.dvmm.bindings.UcxException;
import dev.dvmm.dsm.transport.Endpoint;
import dev.dvmm.dsm.transport.InboundMessage;
import dev.dvmm.dsm.transport.MessageHandler;
import dev.dvmm.dsm.transport.OutboundMessage;
import dev.dvmm.dsm.transport.PeerListener;
import dev.dvmm.dsm.transport.RemoteReadHandler;
import dev.dvmm.dsm.transport.ReplyBuffer;
import dev.dvmm.dsm.transport.ReplyHandler;
import dev.dvmm.dsm.transport.TcpTransport;
import dev.dvmm.dsm.transport.TcpTransportConfig;
import dev.dvmm.dsm.transport.Transport;
import dev.dvmm.dsm.transport.TransportException;
import dev.dvmm.dsm.transport.UcxTransport;
import dev.dvmm.dsm.transport.UcxTransportConfig;
import java.io.File;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.HdrHistogram.Histogram;

/**
 * The TCP and UCX transports next to UCX's own {@code ucx_perftest}, in one run, on 127.0.0.1.
 *
 * <p>For each transport: a 4 KiB echo (request and reply both carry 4 KiB, like {@code tag_lat}'s
 * ping-pong of 4 KiB messages) as blocking round trips (p50/p99), then as pipelined callback requests
 * with {@code window} in flight (requests/s). Then {@code ucx_perftest -t tag_lat -s 4096} runs as a
 * server and a client process. ucx_perftest prints one-way latency (half a round trip), so the ratios
 * compare our round trip with twice its figure. The floor runs over the transports dvmm's UCX
 * transport can use: without an RDMA device (and without UCX_TLS set) that is TCP, because UCX's
 * shared-memory transports lack the peer-failure detection dvmm asks for; ucx_perftest's own default
 * (shared memory between two local processes) is reported beside it for reference.
 *
 * <p>Then one-sided 4 KiB reads over ucx with remote reads on ({@code readRemote}: blocking p50/p99 and pipelined
 * rate), beside {@code ucx_perftest -t ucp_get -s 4096} over the same transports. Without an RDMA device UCX
 * emulates the get in software over TCP (about a millisecond each), so then only {@value #EMULATED_READS} reads run.
 *
 * <p>The shapes differ: ucx_perftest is two single-threaded processes busy-polling; here both ends
 * live in one JVM, each with a progress thread, and the client has a requesting thread, so a round
 * trip includes thread hand-offs, and on a machine with few free cores the threads compete.
 */
public final class TransportComparison {
    private static final short ECHO = 1;
    private static final int PAYLOAD = 4096;
    private static final long TIMEOUT = TimeUnit.SECONDS.toNanos(30);
    /** Targets for the p50 round trip relative to ucx_perftest's. */
    public static final double UCX_TARGET = 1.3;
    public static final double TCP_TARGET = 2.0;
    /** Reads measured (and pipelined) when UCX emulates them over TCP. */
    static final int EMULATED_READS = 2000;
    /** Pages in the exposed region the reads walk through. */
    private static final int READ_PAGES = 256;
    /** What dvmm sets in its own environment before loading UCX (see Ucp): not passed to ucx_perftest. */
    private static final List<String> DVMM_UCX_SETTINGS = List.of("UCX_ERROR_SIGNALS", "UCX_DEBUG_SIGNO",
            "UCX_MEM_EVENTS");

    private TransportComparison() {
    }

    /**
     * One transport's numbers: blocking round trips of all rounds together, the median pipelined rate of the rounds,
     * and each round's own round-trip p50 (the ratios pair it with the floor measured in the same round).
     */
    public record Measured(String name, Histogram roundTripNanos, double pipelinedPerSecond, double[] roundP50Micros) {
        double micros(double percentile) {
            return roundTripNanos.getValueAtPercentile(percentile) / 1000.0;
        }

        /** The rounds of one transport, merged. */
        static Measured merge(List<Measured> rounds) {
            Histogram all = new Histogram(TimeUnit.SECONDS.toNanos(10), 3);
            double[] rates = new double[rounds.size()];
            double[] p50s = new double[rounds.size()];
            for (int i = 0; i < rounds.size(); i++) {
                all.add(rounds.get(i).roundTripNanos());
                rates[i] = rounds.get(i).pipelinedPerSecond();
                p50s[i] = rounds.get(i).roundP50Micros()[0];
            }
            return new Measured(rounds.get(0).name(), all, median(rates), p50s);
        }
    }

    /** One ucx_perftest run: one-way figures as it prints them, or why it did not run. */
    public record Perftest(String tls, double oneWayP50Micros, double oneWayAverageMicros, double messagesPerSecond,
                           String error) {
        double roundTripP50Micros() {
            return 2 * oneWayP50Micros;
        }

        boolean ran() {
            return error == null;
        }
    }

    /**
     * Everything one run measured. {@code floor} is the ucx_perftest run the ratios use (null if it
     * could not run: see {@code floorMissing}); {@code perftestDefault} is ucx_perftest with UCX's own
     * choice of transports when that differs from the floor's (else null).
     */
    public record Result(int iterations, int warmup, int window, String ucxTls, List<Measured> transports,
                         String ucxMissing, Perftest floor, Perftest perftestDefault, Measured remoteRead,
                         Perftest getFloor, List<Perftest> floorRounds) {

        /**
         * The median over rounds of (this round's p50 / this round's floor): the floor runs in every round, between
         * the transports, so a host that drifts between a fast and a slow state moves both sides of each ratio.
         */
        private double ratio(Measured m) {
            double[] r = roundRatios(m);
            return r.length == 0 ? Double.NaN : median(r);
        }

        private double[] roundRatios(Measured m) {
            int n = Math.min(m.roundP50Micros().length, floorRounds.size());
            for (int i = 0; i < n; i++) {
                if (!floorRounds.get(i).ran()) {
                    return new double[0];
                }
            }
            double[] r = new double[n];
            for (int i = 0; i < n; i++) {
                r[i] = m.roundP50Micros()[i] / floorRounds.get(i).roundTripP50Micros();
            }
            return r;
        }

        private String roundList(Measured m) {
            StringBuilder b = new StringBuilder();
            for (double r : roundRatios(m)) {
                b.append(b.isEmpty() ? "" : ", ").append(String.format(Locale.ROOT, "%.3f", r));
            }
            return b.toString();
        }

        public String toTable() {
            StringBuilder b = new StringBuilder();
            b.append(String.format(Locale.ROOT, "4 KiB request/reply round trips on 127.0.0.1: %d rounds of %d after"
                    + " %d warm-up, pipelined with %d in flight; UCX_TLS=%s%n", floorRounds.size(), iterations, warmup,
                    window, ucxTls));
            if (ucxMissing != null) {
                b.append(ucxMissing).append('\n');
            }
            b.append(String.format(Locale.ROOT, "%-22s %9s %9s %9s %13s %14s%n", "transport", "p50 us", "p99 us",
                    "mean us", "pipelined/s", "p50/perftest"));
            for (Measured m : transports) {
                double ratio = ratio(m);
                String target = m.name().startsWith("ucx") ? " (target " + UCX_TARGET + ")"
                        : m.name().equals("tcp") ? " (target " + TCP_TARGET + ")" : "";
                b.append(String.format(Locale.ROOT, "%-22s %9.2f %9.2f %9.2f %13.0f %14s%s%n", m.name(), m.micros(50),
                        m.micros(99), m.roundTripNanos().getMean() / 1000.0, m.pipelinedPerSecond(),
                        Double.isNaN(ratio) ? "-" : String.format(Locale.ROOT, "%.2f", ratio), target));
            }
            appendPerftest(b, floor, "ucx_perftest", floorRounds.size() > 1 ? "floor, median round" : "floor");
            if (floorRounds.size() > 1 && floor != null && floor.ran()) {
                b.append("p50/perftest is the median of the rounds' own ratios (transport and floor measured in the"
                        + " same round):\n");
                for (Measured m : transports) {
                    b.append(String.format(Locale.ROOT, "  %-20s %s%n", m.name(), roundList(m)));
                }
            }
            appendPerftest(b, perftestDefault, "ucx_perftest", "UCX's default transports, for reference");
            if (remoteRead != null) {
                b.append(String.format(Locale.ROOT, "%n4 KiB one-sided reads (readRemote, remote reads on): %d after"
                        + " warm-up, pipelined with %d in flight%n", remoteRead.roundTripNanos().getTotalCount(), window));
                b.append(String.format(Locale.ROOT, "%-22s %9s %9s %9s %13s %14s%n", "read", "p50 us", "p99 us",
                        "mean us", "pipelined/s", "p50/ucp_get"));
                // Over TCP ucx_perftest's target does not progress its worker for a get (it expects the NIC to
                // answer), so UCX's emulation answers from a slow timer there: no floor to compare with.
                double ratio = getFloor != null && getFloor.ran() && !"tcp".equals(getFloor.tls())
                        ? remoteRead.micros(50) / getFloor.oneWayP50Micros() : Double.NaN;
                b.append(String.format(Locale.ROOT, "%-22s %9.2f %9.2f %9.2f %13.0f %14s%n", remoteRead.name(),
                        remoteRead.micros(50), remoteRead.micros(99), remoteRead.roundTripNanos().getMean() / 1000.0,
                        remoteRead.pipelinedPerSecond(),
                        Double.isNaN(ratio) ? "-" : String.format(Locale.ROOT, "%.2f", ratio)));
                if (getFloor != null && !getFloor.ran()) {
                    b.append("ucx_perftest ucp_get: ").append(getFloor.error()).append('\n');
                } else if (getFloor != null) {
                    b.append(String.format(Locale.ROOT, "%-22s %9.2f %9s %9.2f %13.0f %14s  per get; UCX_TLS=%s%n",
                            "ucx_perftest ucp_get", getFloor.oneWayP50Micros(), "-", getFloor.oneWayAverageMicros(),
                            getFloor.messagesPerSecond(), "-", getFloor.tls()));
                }
            }
            return b.toString();
        }

        private static void appendPerftest(StringBuilder b, Perftest p, String name, String role) {
            if (p == null) {
                return;
            }
            if (!p.ran()) {
                b.append(name).append(" (").append(role).append("): ").append(p.error()).append('\n');
                return;
            }
            b.append(String.format(Locale.ROOT, "%-22s %9.2f %9s %9.2f %13.0f %14s  one way %.2f us x2; %s, UCX_TLS=%s%n",
                    name, p.roundTripP50Micros(), "-", 2 * p.oneWayAverageMicros(), p.messagesPerSecond(), "-",
                    p.oneWayP50Micros(), role, p.tls()));
        }

        public String toJson() {
            StringBuilder b = new StringBuilder("{\n  \"benchmark\": \"transport\",\n");
            b.append(String.format(Locale.ROOT, "  \"payload_bytes\": %d,%n  \"rounds\": %d,%n  \"iterations\": %d,%n"
                    + "  \"warmup\": %d,%n  \"window\": %d,%n  \"ucx_tls\": \"%s\",%n", PAYLOAD, floorRounds.size(),
                    iterations, warmup, window, json(ucxTls)));
            if (ucxMissing != null) {
                b.append("  \"ucx_missing\": \"").append(json(ucxMissing)).append("\",\n");
            }
            b.append("  \"note\": \"ucx_perftest tag_lat prints one-way latency; round_trip_p50_us doubles it, and"
                    + " the ratios compare round trip with round trip\",\n");
            b.append("  \"transports\": {\n");
            for (int i = 0; i < transports.size(); i++) {
                Measured m = transports.get(i);
                double ratio = ratio(m);
                b.append(String.format(Locale.ROOT, "    \"%s\": {\"rtt_p50_us\": %.2f, \"rtt_p99_us\": %.2f,"
                        + " \"rtt_mean_us\": %.2f, \"pipelined_per_s\": %.0f%s}%s%n", m.name(), m.micros(50),
                        m.micros(99), m.roundTripNanos().getMean() / 1000.0, m.pipelinedPerSecond(),
                        Double.isNaN(ratio) ? "" : String.format(Locale.ROOT, ", \"p50_over_perftest\": %.3f,"
                                + " \"p50_over_perftest_rounds\": [%s]", ratio, roundList(m)),
                        i + 1 < transports.size() ? "," : ""));
            }
            b.append("  },\n");
            b.append("  \"ucx_perftest\": ").append(perftestJson(floor)).append(",\n");
            b.append("  \"ucx_perftest_rounds\": [");
            for (int i = 0; i < floorRounds.size(); i++) {
                b.append(i == 0 ? "" : ", ").append(perftestJson(floorRounds.get(i)));
            }
            b.append("],\n");
            b.append("  \"ucx_perftest_default_tls\": ").append(perftestJson(perftestDefault)).append(",\n");
            if (remoteRead != null) {
                b.append(String.format(Locale.ROOT, "  \"ucx_read_remote\": {\"reads\": %d, \"p50_us\": %.2f,"
                        + " \"p99_us\": %.2f, \"mean_us\": %.2f, \"pipelined_per_s\": %.0f},%n",
                        remoteRead.roundTripNanos().getTotalCount(), remoteRead.micros(50), remoteRead.micros(99),
                        remoteRead.roundTripNanos().getMean() / 1000.0, remoteRead.pipelinedPerSecond()));
                b.append("  \"ucx_perftest_ucp_get\": ").append(getFloor == null ? "null" : !getFloor.ran()
                        ? "{\"error\": \"" + json(getFloor.error()) + "\"}"
                        : String.format(Locale.ROOT, "{\"tls\": \"%s\", \"per_get_p50_us\": %.3f,"
                        + " \"per_get_mean_us\": %.3f, \"gets_per_s\": %.0f}", json(getFloor.tls()),
                        getFloor.oneWayP50Micros(), getFloor.oneWayAverageMicros(), getFloor.messagesPerSecond()))
                        .append(",\n");
            }
            b.append(String.format(Locale.ROOT, "  \"targets\": {\"ucx_over_perftest\": %.1f, \"tcp_over_perftest\": %.1f}%n}%n",
                    UCX_TARGET, TCP_TARGET));
            return b.toString();
        }

        private static String perftestJson(Perftest p) {
            if (p == null) {
                return "null";
            }
            if (!p.ran()) {
                return "{\"error\": \"" + json(p.error()) + "\"}";
            }
            return String.format(Locale.ROOT, "{\"tls\": \"%s\", \"one_way_p50_us\": %.3f, \"one_way_mean_us\": %.3f,"
                    + " \"round_trip_p50_us\": %.3f, \"messages_per_s\": %.0f}", json(p.tls()), p.oneWayP50Micros(),
                    p.oneWayAverageMicros(), p.roundTripP50Micros(), p.messagesPerSecond());
        }

        private static String json(String s) {
            return s.replace("\\", "\\\\").replace("\"", "\\\"");
        }
    }

    /**
     * Measures tcp, ucx (default settings, then each of {@code ucxBusyPollMicros}) and ucx_perftest, in that order,
     * {@code rounds} times. Without UCX only tcp runs; without ucx_perftest there is no floor; each is said in one line.
     */
    public static Result run(int iterations, int warmup, int window, long[] ucxBusyPollMicros, int rounds,
                             PrintStream progress) throws TransportException, InterruptedException {
        if (rounds < 1) {
            throw new IllegalArgumentException("rounds must be at least 1, not " + rounds);
        }
        byte[] secret = new byte[32];
        new SecureRandom().nextBytes(secret);
        String ucxMissing = null;
        boolean rdma = false;
        try {
            Ucp.load();
            try (UcxTransport probe = new UcxTransport(UcxTransportConfig.loopback(0, 1, secret))) {
                rdma = probe.rdmaDevicePresent();
            }
        } catch (UcxException e) {
            ucxMissing = e.getMessage() + ": reporting tcp only";
        }
        String userTls = System.getenv("UCX_TLS");
        String shownTls = userTls != null ? userTls : "(unset: UCX picks)";
        // What the floor runs over; null with 'noFloor' saying why it cannot run.
        String floorTls = userTls != null ? userTls : rdma ? null : "tcp";
        Perftest noFloor = ucxMissing != null ? new Perftest("", 0, 0, 0, "not run: UCX is not installed")
                : !onPath("ucx_perftest") ? new Perftest("", 0, 0, 0, "ucx_perftest is not installed (apt-get install"
                + " ucx-utils): no floor, tcp and ucx reported alone") : null;
        List<List<Measured>> byTransport = new ArrayList<>();
        List<Perftest> floorRounds = new ArrayList<>();
        long defaultPoll = UcxTransportConfig.DEFAULT_BUSY_POLL_NANOS / 1000;
        for (int round = 1; round <= rounds; round++) {
            String of = rounds > 1 ? "round " + round + "/" + rounds + ": " : "";
            List<Measured> these = new ArrayList<>();
            progress.println(of + "tcp: " + iterations + " round trips, then pipelined");
            these.add(measure("tcp", rank -> new TcpTransport(TcpTransportConfig.loopback(rank, 2, secret)),
                    warmup, iterations, window));
            if (ucxMissing == null) {
                progress.println(of + "ucx (busy poll " + defaultPoll + " us): " + iterations
                        + " round trips, then pipelined");
                these.add(measure("ucx", rank -> new UcxTransport(UcxTransportConfig.loopback(rank, 2, secret)),
                        warmup, iterations, window));
                for (long micros : ucxBusyPollMicros) {
                    progress.println(of + "ucx, busy poll " + micros + " us");
                    these.add(measure("ucx-busy-poll-" + micros + "us", rank -> new UcxTransport(UcxTransportConfig
                            .loopback(rank, 2, secret).withBusyPollNanos(micros * 1000)), warmup, iterations, window));
                }
            }
            if (noFloor == null) {
                progress.println(of + "ucx_perftest tag_lat 4 KiB over " + (floorTls == null ? "UCX's choice of"
                        + " transports" : floorTls) + (userTls == null && !rdma
                        ? " (what dvmm's UCX transport uses here)" : ""));
                floorRounds.add(perftest(floorTls, iterations, warmup));
            } else {
                floorRounds.add(noFloor);
            }
            for (int t = 0; t < these.size(); t++) {
                if (byTransport.size() <= t) {
                    byTransport.add(new ArrayList<>());
                }
                byTransport.get(t).add(these.get(t));
            }
        }
        List<Measured> results = new ArrayList<>();
        for (List<Measured> one : byTransport) {
            results.add(Measured.merge(one));
        }
        Perftest floor = medianRound(floorRounds);
        Perftest perftestDefault = null;
        if (noFloor == null && userTls == null && !rdma) {
            progress.println("ucx_perftest tag_lat 4 KiB, UCX's default transports");
            perftestDefault = perftest(null, iterations, warmup);
        }
        Measured remoteRead = null;
        Perftest getFloor = null;
        if (ucxMissing == null) {
            int reads = rdma ? iterations : Math.min(iterations, EMULATED_READS);
            int readWarmup = rdma ? warmup : Math.min(warmup, EMULATED_READS / 10);
            progress.println("ucx one-sided reads: " + reads + " blocking, then pipelined" + (rdma ? ""
                    : " (UCX emulates them over TCP here: fewer)"));
            remoteRead = measureReads(secret, readWarmup, reads, window);
            if (onPath("ucx_perftest")) {
                String tls = userTls != null ? userTls : rdma ? null : "tcp";
                progress.println("ucx_perftest ucp_get 4 KiB");
                getFloor = perftest(tls, "ucp_get", reads, readWarmup);
            }
        }
        return new Result(iterations, warmup, window, shownTls, results, ucxMissing, floor, perftestDefault,
                remoteRead, getFloor, floorRounds);
    }

    /** The round whose floor round trip is the median one (the first failure if any round failed). */
    static Perftest medianRound(List<Perftest> rounds) {
        List<Perftest> sorted = new ArrayList<>();
        for (Perftest p : rounds) {
            if (!p.ran()) {
                return p;
            }
            sorted.add(p);
        }
        sorted.sort((a, b) -> Double.compare(a.roundTripP50Micros(), b.roundTripP50Micros()));
        return sorted.get((sorted.size() - 1) / 2);
    }

    /** The median (the mean of the middle two for an even count); NaN for none. */
    static double median(double[] values) {
        if (values.length == 0) {
            return Double.NaN;
        }
        double[] v = values.clone();
        java.util.Arrays.sort(v);
        int n = v.length;
        return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    }

    /** Completes blocking reads (the waiting thread parks) and pipelined ones (window permits). */
    private static final class ReadCompletion implements RemoteReadHandler {
        final Semaphore permits;
        volatile Thread waiter;
        volatile long completed = -1;
        volatile TransportException failure;

        ReadCompletion(int window) {
            permits = new Semaphore(window);
        }

        @Override
        public void onRemoteRead(int peer, long token, TransportException cause) {
            if (cause != null) {
                failure = cause;
            }
            if (token < 0) {
                permits.release();
                return;
            }
            completed = token;
            LockSupport.unpark(waiter);
        }
    }

    /** Rank 0 reads 4 KiB pages of a region rank 1 exposed, one at a time and then {@code window} in flight. */
    private static Measured measureReads(byte[] secret, int warmup, int reads, int window)
            throws TransportException, InterruptedException {
        UcxTransport client = new UcxTransport(UcxTransportConfig.loopback(0, 2, secret)
                .withRemoteReads(UcxTransportConfig.RemoteReads.ON));
        UcxTransport server = new UcxTransport(UcxTransportConfig.loopback(1, 2, secret)
                .withRemoteReads(UcxTransportConfig.RemoteReads.ON));
        try (client; server; Arena arena = Arena.ofShared()) {
            MemorySegment region = arena.allocate((long) READ_PAGES * PAYLOAD, 4096);
            region.fill((byte) 0x3C);
            server.exposeMemory(region);
            List<Endpoint> endpoints = List.of(client.localEndpoint(), server.localEndpoint());
            client.start(endpoints, message -> { }, PeerListener.NONE);
            server.start(endpoints, message -> { }, PeerListener.NONE);
            client.awaitConnected(Duration.ofSeconds(20));
            server.awaitConnected(Duration.ofSeconds(20));
            MemorySegment pages = arena.allocate((long) window * PAYLOAD, 4096);
            MemorySegment[] slots = new MemorySegment[window];
            for (int w = 0; w < window; w++) {
                slots[w] = pages.asSlice((long) w * PAYLOAD, PAYLOAD);
            }
            MemorySegment page = slots[0];
            ReadCompletion done = new ReadCompletion(window);
            done.waiter = Thread.currentThread();
            Histogram histogram = new Histogram(TimeUnit.SECONDS.toNanos(10), 3);
            long deadline = System.nanoTime() + TIMEOUT;
            for (int i = 0; i < warmup + reads; i++) {
                long start = System.nanoTime();
                client.readRemote(1, (long) (i % READ_PAGES) * PAYLOAD, page, done, i);
                while (done.completed != i) {
                    LockSupport.parkNanos(done, 1_000_000);
                    if (System.nanoTime() - deadline > 0) {
                        throw new IllegalStateException("remote read " + i + " did not complete");
                    }
                }
                long elapsed = System.nanoTime() - start;
                if (i >= warmup) {
                    histogram.recordValue(elapsed);
                }
            }
            long start = System.nanoTime();
            for (int i = 0; i < reads; i++) {
                if (!done.permits.tryAcquire(30, TimeUnit.SECONDS)) {
                    throw new IllegalStateException("pipelined remote read " + i + " did not complete in 30 s");
                }
                // Timing only: a page is reused after 'window' reads, whether or not reads complete in order.
                client.readRemote(1, (long) (i % READ_PAGES) * PAYLOAD, slots[i % window], done, -1);
            }
            if (!done.permits.tryAcquire(window, 30, TimeUnit.SECONDS)) {
                throw new IllegalStateException("the last pipelined remote reads did not complete in 30 s");
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            if (done.failure != null) {
                throw done.failure;
            }
            return new Measured("ucx-read-remote", histogram, reads / seconds, new double[] {histogram.getValueAtPercentile(50) / 1000.0});
        }
    }

    private interface TransportFactory {
        Transport create(int rank) throws TransportException;
    }

    /** Rank 1: echoes every request from its receive/progress thread. */
    private static final class Echo implements MessageHandler {
        private final OutboundMessage reply = new OutboundMessage();
        Transport transport;

        @Override
        public void onMessage(InboundMessage message) {
            reply.clear().type(ECHO).arg0(message.arg0());
            if (message.payloadLength() > 0) {
                reply.payload(message.payloadSegment(), message.payloadOffset(), message.payloadLength());
            }
            try {
                transport.reply(message, reply);
            } catch (TransportException e) {
                // Only when the pair closes.
            }
        }
    }

    /** Completes pipelined requests by releasing window permits. */
    private static final class Window implements ReplyHandler {
        final Semaphore permits;
        volatile TransportException failure;

        Window(int size) {
            permits = new Semaphore(size);
        }

        @Override
        public void onReply(InboundMessage reply, long token) {
            permits.release();
        }

        @Override
        public void onFailure(long token, TransportException cause) {
            failure = cause;
            permits.release();
        }
    }

    private static Measured measure(String name, TransportFactory factory, int warmup, int iterations, int window)
            throws TransportException, InterruptedException {
        Transport client = factory.create(0);
        Transport server = factory.create(1);
        Echo echo = new Echo();
        echo.transport = server;
        try (client; server; Arena arena = Arena.ofShared()) {
            List<Endpoint> endpoints = List.of(client.localEndpoint(), server.localEndpoint());
            client.start(endpoints, message -> { }, PeerListener.NONE);
            server.start(endpoints, echo, PeerListener.NONE);
            client.awaitConnected(Duration.ofSeconds(20));
            server.awaitConnected(Duration.ofSeconds(20));
            MemorySegment page = arena.allocate(PAYLOAD, 4096);
            MemorySegment replyPage = arena.allocate(PAYLOAD, 4096);
            page.fill((byte) 0x5A);
            OutboundMessage message = new OutboundMessage();
            ReplyBuffer reply = new ReplyBuffer(replyPage, 0, PAYLOAD);
            Histogram histogram = new Histogram(TimeUnit.SECONDS.toNanos(10), 3);
            for (int i = 0; i < warmup + iterations; i++) {
                message.clear().type(ECHO).arg0(i).payload(page, 0, PAYLOAD);
                long start = System.nanoTime();
                client.request(1, message, reply, TIMEOUT);
                long elapsed = System.nanoTime() - start;
                if (i >= warmup) {
                    histogram.recordValue(elapsed);
                }
            }
            Window pipeline = new Window(window);
            long start = System.nanoTime();
            for (int i = 0; i < iterations; i++) {
                if (!pipeline.permits.tryAcquire(30, TimeUnit.SECONDS)) {
                    throw new IllegalStateException(name + ": pipelined request " + i + " got no reply in 30 s");
                }
                message.clear().type(ECHO).arg0(i).payload(page, 0, PAYLOAD);
                client.requestAsync(1, message, pipeline, i, TIMEOUT);
            }
            if (!pipeline.permits.tryAcquire(window, 30, TimeUnit.SECONDS)) {
                throw new IllegalStateException(name + ": the last pipelined requests got no reply in 30 s");
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            if (pipeline.failure != null) {
                throw pipeline.failure;
            }
            return new Measured(name, histogram, iterations / seconds, new double[] {histogram.getValueAtPercentile(50) / 1000.0});
        }
    }

    /** Whether {@code program} is an executable in a directory of $PATH. */
    static boolean onPath(String program) {
        String path = System.getenv("PATH");
        if (path == null) {
            return false;
        }
        for (String dir : path.split(File.pathSeparator)) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, program))) {
                return true;
            }
        }
        return false;
    }

    /** ucx_perftest tag_lat with 4 KiB messages, server and client on 127.0.0.1; {@code tls} null: UCX's choice. */
    static Perftest perftest(String tls, int iterations, int warmup) {
        return perftest(tls, "tag_lat", iterations, warmup);
    }

    /** ucx_perftest {@code test} ("tag_lat", "ucp_get") with 4 KiB, server and client on 127.0.0.1. */
    static Perftest perftest(String tls, String test, int iterations, int warmup) {
        String shownTls = tls == null ? "(unset: UCX picks)" : tls;
        int port;
        try (ServerSocket probe = new ServerSocket(0)) {
            port = probe.getLocalPort();
        } catch (IOException e) {
            return new Perftest(shownTls, 0, 0, 0, "no free port: " + e.getMessage());
        }
        Process server = null;
        try {
            server = perftestProcess(tls, List.of("ucx_perftest", "-p", Integer.toString(port)))
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            String output = null;
            String last = "";
            for (int attempt = 0; attempt < 50 && output == null; attempt++) {
                Thread.sleep(100);
                Process client = perftestProcess(tls, List.of("ucx_perftest", "127.0.0.1", "-p", Integer.toString(port),
                        "-t", test, "-s", Integer.toString(PAYLOAD), "-n", Integer.toString(iterations),
                        "-w", Integer.toString(warmup))).redirectErrorStream(true).start();
                String text = new String(client.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                if (!client.waitFor(120, TimeUnit.SECONDS)) {
                    client.destroyForcibly();
                    return new Perftest(shownTls, 0, 0, 0, "ucx_perftest client did not finish in 120 s");
                }
                if (client.exitValue() == 0 && text.contains("Final:")) {
                    output = text;
                }
                last = text;
            }
            if (output == null) {
                String tail = last.strip();
                int cut = tail.lastIndexOf('\n');
                return new Perftest(shownTls, 0, 0, 0, "ucx_perftest client never reached its server on port " + port
                        + (tail.isEmpty() ? "" : ": " + tail.substring(cut + 1)));
            }
            return parsePerftest(shownTls, output);
        } catch (IOException e) {
            return new Perftest(shownTls, 0, 0, 0, "cannot run ucx_perftest: " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Perftest(shownTls, 0, 0, 0, "interrupted");
        } finally {
            if (server != null) {
                server.destroy();
            }
        }
    }

    private static ProcessBuilder perftestProcess(String tls, List<String> command) {
        ProcessBuilder builder = new ProcessBuilder(command);
        Map<String, String> env = builder.environment();
        // UCX as it runs by default: without what dvmm set for its own process, unless the user set it.
        for (String name : DVMM_UCX_SETTINGS) {
            if (!startedWith(name)) {
                env.remove(name);
            }
        }
        if (tls != null) {
            env.put("UCX_TLS", tls);
        }
        return builder;
    }

    private static boolean startedWith(String name) {
        try {
            for (String entry : new String(Files.readAllBytes(Path.of("/proc/self/environ")), StandardCharsets.UTF_8)
                    .split("\0")) {
                if (entry.startsWith(name + "=")) {
                    return true;
                }
            }
            return false;
        } catch (IOException e) {
            return true;
        }
    }

    /**
     * Reads the "Final:" line: iterations, then latency p50, average, overall (usec, one way),
     * bandwidth average and overall (MB/s), message rate average and overall (the overall one is kept).
     */
    static Perftest parsePerftest(String tls, String output) {
        for (String line : output.split("\n")) {
            String trimmed = line.strip();
            if (trimmed.startsWith("Final:")) {
                String[] f = trimmed.split("\\s+");
                if (f.length < 9) {
                    break;
                }
                try {
                    return new Perftest(tls, Double.parseDouble(f[2]), Double.parseDouble(f[3]),
                            Double.parseDouble(f[8]), null);
                } catch (NumberFormatException e) {
                    break;
                }
            }
        }
        return new Perftest(tls, 0, 0, 0, "no readable 'Final:' line in ucx_perftest's output");
    }
}
