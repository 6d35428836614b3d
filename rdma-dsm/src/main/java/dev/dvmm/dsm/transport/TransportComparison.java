package dev.dvmm.dsm.transport;

import dev.dvmm.bindings.Ucp;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import org.HdrHistogram.Histogram;

/**
 * The TCP and UCX transports next to UCX's own {@code ucx_perftest}, in one invocation, on 127.0.0.1.
 *
 * <p>For each transport: a 4 KiB echo (request and reply both carry 4 KiB, like {@code tag_lat}'s
 * ping-pong of 4 KiB messages) as blocking round trips (p50/p99), then as pipelined callback requests
 * with {@code --window} in flight (messages/s). Then {@code ucx_perftest -t tag_lat -s 4096} runs as a
 * server and a client subprocess. ucx_perftest reports latency as half a round trip (one way), so
 * the ratios compare our round trip with twice its figure: round trip with round trip. The UCX
 * transport runs with its default 50 us progress spin and with 200 us (more runs with
 * {@code -Ddvmm.bench.spins=0,10,...} in microseconds). UCX_TLS and friends apply to the UCX
 * transport and to ucx_perftest alike. Note the shapes differ: ucx_perftest is two single-threaded
 * processes busy-polling; here each side has a progress thread and the client a requesting thread,
 * so a round trip includes thread hand-offs, and on a machine with fewer free cores than spinning
 * threads, spinning makes it worse.
 * <pre>
 * java --enable-native-access=ALL-UNNAMED -cp rdma-dsm/target/classes:kvm-bindings/target/classes:$(cat cp.txt) \
 *      dev.dvmm.dsm.transport.TransportComparison [--iterations 20000] [--warmup 5000] [--window 16] [--json f]
 * </pre>
 */
public final class TransportComparison {
    private static final short ECHO = 1;
    private static final int PAYLOAD = 4096;
    private static final long TIMEOUT = TimeUnit.SECONDS.toNanos(30);
    /** Targets for the p50 round trip relative to ucx_perftest's. */
    private static final double UCX_TARGET = 1.3;
    private static final double TCP_TARGET = 2.0;

    private TransportComparison() {
    }

    /** One transport's numbers. */
    record Result(String name, double p50Micros, double p99Micros, double meanMicros, double messagesPerSecond) {
    }

    /** ucx_perftest's numbers (one way, as it prints them). */
    record PerftestResult(double p50OneWayMicros, double averageOneWayMicros, double messagesPerSecond,
                          String error) {
    }

    private interface TransportFactory {
        Transport create(int rank) throws TransportException;
    }

    /** Rank 1: echoes every request from its receive/progress thread. */
    private static final class Echo implements MessageHandler, PeerListener {
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

        @Override
        public void onPeerDown(int peer, TransportException cause) {
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

    static Result measure(String name, TransportFactory factory, int warmup, int iterations, int window)
            throws TransportException, InterruptedException {
        Transport client = factory.create(0);
        Transport server = factory.create(1);
        Echo echo = new Echo();
        echo.transport = server;
        try (client; server; Arena arena = Arena.ofShared()) {
            List<Endpoint> endpoints = List.of(client.localEndpoint(), server.localEndpoint());
            client.start(endpoints, message -> { }, PeerListener.NONE);
            server.start(endpoints, echo, echo);
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
            return new Result(name, histogram.getValueAtPercentile(50) / 1000.0,
                    histogram.getValueAtPercentile(99) / 1000.0, histogram.getMean() / 1000.0, iterations / seconds);
        }
    }

    /** Runs ucx_perftest tag_lat with 4 KiB messages, server and client on 127.0.0.1. */
    static PerftestResult perftest(int iterations, int warmup) {
        int port;
        try (ServerSocket probe = new ServerSocket(0)) {
            port = probe.getLocalPort();
        } catch (IOException e) {
            return new PerftestResult(0, 0, 0, "no free port: " + e.getMessage());
        }
        Process server = null;
        try {
            server = new ProcessBuilder("ucx_perftest", "-p", Integer.toString(port))
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            String output = null;
            for (int attempt = 0; attempt < 50 && output == null; attempt++) {
                Thread.sleep(100);
                Process client = new ProcessBuilder("ucx_perftest", "127.0.0.1", "-p", Integer.toString(port),
                        "-t", "tag_lat", "-s", Integer.toString(PAYLOAD), "-n", Integer.toString(iterations),
                        "-w", Integer.toString(warmup)).redirectErrorStream(true).start();
                String text = new String(client.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                if (!client.waitFor(120, TimeUnit.SECONDS)) {
                    client.destroyForcibly();
                    return new PerftestResult(0, 0, 0, "ucx_perftest client did not finish in 120 s");
                }
                if (client.exitValue() == 0 && text.contains("Final:")) {
                    output = text;
                }
            }
            if (output == null) {
                return new PerftestResult(0, 0, 0, "ucx_perftest client never reached its server on port " + port);
            }
            return parsePerftest(output);
        } catch (IOException e) {
            return new PerftestResult(0, 0, 0, "cannot run ucx_perftest (apt-get install ucx-utils): " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new PerftestResult(0, 0, 0, "interrupted");
        } finally {
            if (server != null) {
                server.destroy();
            }
        }
    }

    /**
     * Reads the "Final:" line: iterations, then latency p50, average, overall (usec, one way),
     * bandwidth average and overall (MB/s), message rate average and overall.
     */
    static PerftestResult parsePerftest(String output) {
        for (String line : output.split("\n")) {
            String trimmed = line.strip();
            if (trimmed.startsWith("Final:")) {
                String[] f = trimmed.split("\\s+");
                if (f.length < 9) {
                    break;
                }
                return new PerftestResult(Double.parseDouble(f[2]), Double.parseDouble(f[3]),
                        Double.parseDouble(f[8]), null);
            }
        }
        return new PerftestResult(0, 0, 0, "no 'Final:' line in ucx_perftest output");
    }

    public static void main(String[] args) throws Exception {
        int iterations = 20_000;
        int warmup = 5_000;
        int window = 16;
        Path json = Path.of("transport-comparison.json");
        for (int i = 0; i < args.length; i++) {
            String value = i + 1 < args.length ? args[i + 1] : null;
            switch (args[i]) {
                case "--iterations" -> iterations = Integer.parseInt(require(value, args[i]));
                case "--warmup" -> warmup = Integer.parseInt(require(value, args[i]));
                case "--window" -> window = Integer.parseInt(require(value, args[i]));
                case "--json" -> json = Path.of(require(value, args[i]));
                default -> {
                    System.err.println("unknown option " + args[i]
                            + " (expected --iterations N --warmup N --window N --json FILE)");
                    System.exit(2);
                }
            }
            i++;
        }
        byte[] secret = new byte[32];
        new SecureRandom().nextBytes(secret);
        List<Result> results = new ArrayList<>();
        results.add(measure("tcp", rank -> new TcpTransport(TcpTransportConfig.loopback(rank, 2, secret)),
                warmup, iterations, window));
        boolean ucx = Ucp.isInstalled();
        if (ucx) {
            results.add(measure("ucx", rank -> new UcxTransport(UcxTransportConfig.loopback(rank, 2, secret)),
                    warmup, iterations, window));
            if (System.getProperty("dvmm.bench.spins") != null) {
                for (String spin : System.getProperty("dvmm.bench.spins").split(",")) {
                    long nanos = Long.parseLong(spin) * 1000;
                    results.add(measure("ucx-spin-" + spin + "us", rank -> new UcxTransport(UcxTransportConfig
                            .loopback(rank, 2, secret).withSpinNanos(nanos)), warmup, iterations, window));
                }
            }
            results.add(measure("ucx-spin-200us", rank -> new UcxTransport(UcxTransportConfig.loopback(rank, 2, secret)
                    .withSpinNanos(200_000)), warmup, iterations, window));
        }
        PerftestResult perftest = ucx ? perftest(iterations, warmup)
                : new PerftestResult(0, 0, 0, "UCX is not installed");
        double perftestRoundTrip = 2 * perftest.p50OneWayMicros();

        String tls = System.getenv().getOrDefault("UCX_TLS", "(default: all)");
        System.out.printf(Locale.ROOT, "4 KiB echo round trips on 127.0.0.1, %d iterations after %d warm-up;"
                + " UCX_TLS=%s%n", iterations, warmup, tls);
        System.out.printf(Locale.ROOT, "%-14s %10s %10s %10s %14s %22s%n", "transport", "p50 us", "p99 us",
                "mean us", "pipelined/s", "p50 / perftest RTT");
        for (Result r : results) {
            System.out.printf(Locale.ROOT, "%-14s %10.2f %10.2f %10.2f %14.0f %22s%n", r.name(), r.p50Micros(),
                    r.p99Micros(), r.meanMicros(), r.messagesPerSecond(),
                    perftestRoundTrip > 0 ? String.format(Locale.ROOT, "%.2f", r.p50Micros() / perftestRoundTrip)
                            : "-");
        }
        if (perftest.error() == null) {
            System.out.printf(Locale.ROOT, "%-14s %10.2f %10s %10.2f %14.0f   (one way %.2f us p50, x2 = round trip)%n",
                    "ucx_perftest", perftestRoundTrip, "-", 2 * perftest.averageOneWayMicros(),
                    perftest.messagesPerSecond(), perftest.p50OneWayMicros());
        } else {
            System.out.println("ucx_perftest: " + perftest.error());
        }

        Map<String, Object> out = new LinkedHashMap<>();
        out.put("benchmark", "transport-comparison");
        out.put("payloadBytes", PAYLOAD);
        out.put("iterations", iterations);
        out.put("warmup", warmup);
        out.put("window", window);
        out.put("ucxTls", tls);
        out.put("note", "ucx_perftest tag_lat prints one-way latency (half a round trip); roundTripP50Micros"
                + " doubles it so that ratios compare round trip with round trip");
        for (Result r : results) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("p50Micros", r.p50Micros());
            m.put("p99Micros", r.p99Micros());
            m.put("meanMicros", r.meanMicros());
            m.put("pipelinedMessagesPerSecond", r.messagesPerSecond());
            if (perftestRoundTrip > 0) {
                m.put("p50OverPerftestRoundTrip", r.p50Micros() / perftestRoundTrip);
            }
            out.put(r.name(), m);
        }
        Map<String, Object> p = new LinkedHashMap<>();
        if (perftest.error() == null) {
            p.put("oneWayP50Micros", perftest.p50OneWayMicros());
            p.put("oneWayAverageMicros", perftest.averageOneWayMicros());
            p.put("roundTripP50Micros", perftestRoundTrip);
            p.put("messagesPerSecond", perftest.messagesPerSecond());
        } else {
            p.put("error", perftest.error());
        }
        out.put("ucx_perftest", p);
        Map<String, Object> targets = new LinkedHashMap<>();
        targets.put("ucxOverPerftest", UCX_TARGET);
        targets.put("tcpOverPerftest", TCP_TARGET);
        out.put("targets", targets);
        Files.writeString(json, toJson(out, "") + "\n");
        System.out.println("wrote " + json);
    }

    private static String require(String value, String option) {
        if (value == null) {
            System.err.println(option + " needs a value");
            System.exit(2);
        }
        return value;
    }

    private static String toJson(Object value, String indent) {
        if (value instanceof Map<?, ?> map) {
            StringBuilder b = new StringBuilder("{\n");
            int i = 0;
            for (var e : map.entrySet()) {
                b.append(indent).append("  \"").append(e.getKey()).append("\": ")
                        .append(toJson(e.getValue(), indent + "  "));
                b.append(++i < map.size() ? ",\n" : "\n");
            }
            return b.append(indent).append('}').toString();
        }
        if (value instanceof Double d) {
            return String.format(Locale.ROOT, "%.3f", d);
        }
        if (value instanceof Number n) {
            return n.toString();
        }
        return "\"" + value.toString().replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }
}
