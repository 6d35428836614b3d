package dev.dvmm.dsm.transport;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import org.HdrHistogram.Histogram;

/**
 * Loopback benchmark of the TCP transport: two transports in this JVM on 127.0.0.1, rank 0 asks,
 * rank 1 answers from its receive thread. Scenarios, each {@code --warmup} then {@code --iterations}:
 * <ul>
 *   <li>{@code fetch}: header-only request, reply carries a page (the DSM page-fetch shape);</li>
 *   <li>{@code echo}: request and reply both carry a page;</li>
 *   <li>{@code echo-gather}: as echo with inline payloads off, so pages are gathered zero-copy
 *       from the caller's memory instead of copied next to the header;</li>
 *   <li>{@code pipelined}: fetch-shaped callback requests with {@code --window} in flight.</li>
 * </ul>
 * Prints a table and writes the numbers as JSON. Run after {@code mvn -pl rdma-dsm -am package}:
 * <pre>
 * java -cp rdma-dsm/target/classes:$(cat cp.txt) dev.dvmm.dsm.transport.TransportBenchmark \
 *      [--iterations 100000] [--warmup 20000] [--payload 4096] [--window 32] [--json out.json]
 * </pre>
 * ({@code cp.txt} from {@code mvn -pl rdma-dsm dependency:build-classpath -Dmdep.outputFile=cp.txt}).
 */
public final class TransportBenchmark {
    private static final short FETCH = 1;
    private static final short ECHO = 2;
    private static final long REQUEST_TIMEOUT = TimeUnit.SECONDS.toNanos(30);

    private TransportBenchmark() {
    }

    /** One scenario's results. */
    record Result(String scenario, int payload, long iterations, double seconds, Histogram latencyNanos,
                  long payloadBytesMoved) {
        double messagesPerSecond() {
            return iterations / seconds;
        }

        double megabytesPerSecond() {
            return payloadBytesMoved / seconds / 1e6;
        }

        double micros(double percentile) {
            return latencyNanos.getValueAtPercentile(percentile) / 1000.0;
        }
    }

    /** Rank 1's side: answers fetches from a page-aligned "guest memory", echoes echo requests. */
    private static final class Responder implements MessageHandler, PeerListener {
        private final OutboundMessage reply = new OutboundMessage();
        private final MemorySegment memory;
        private final int payload;
        Transport transport;
        /** Set before the pair closes, when rank 0 going away is expected. */
        volatile boolean closing;

        Responder(MemorySegment memory, int payload) {
            this.memory = memory;
            this.payload = payload;
        }

        @Override
        public void onMessage(InboundMessage message) {
            reply.clear().type(message.type()).arg0(message.arg0());
            if (message.type() == FETCH) {
                long pages = memory.byteSize() / payload;
                reply.payload(memory, (message.arg0() % pages) * payload, payload);
            } else if (message.payloadLength() > 0) {
                reply.payload(message.payloadSegment(), message.payloadOffset(), message.payloadLength());
            }
            try {
                transport.reply(message, reply);
            } catch (TransportException e) {
                System.err.println("benchmark responder: " + e.getMessage());
            }
        }

        @Override
        public void onPeerDown(int peer, TransportException cause) {
            if (!closing) {
                System.err.println("benchmark: rank " + peer + " down: " + cause.getMessage());
            }
        }
    }

    /** Two connected transports and a responder. */
    private static final class Pair implements AutoCloseable {
        final TcpTransport client;
        final TcpTransport server;
        final Responder responder;

        Pair(byte[] secret, int payload, int inline, MemorySegment memory) throws TransportException {
            client = new TcpTransport(TcpTransportConfig.loopback(0, 2, secret).withInlinePayloadBytes(inline));
            server = new TcpTransport(TcpTransportConfig.loopback(1, 2, secret).withInlinePayloadBytes(inline));
            List<Endpoint> endpoints = List.of(client.localEndpoint(), server.localEndpoint());
            responder = new Responder(memory, payload);
            responder.transport = server;
            client.start(endpoints, message -> { }, PeerListener.NONE);
            server.start(endpoints, responder, responder);
            client.awaitConnected(Duration.ofSeconds(20));
            server.awaitConnected(Duration.ofSeconds(20));
        }

        @Override
        public void close() {
            responder.closing = true;
            client.close();
            server.close();
        }
    }

    private static Histogram histogram() {
        return new Histogram(TimeUnit.SECONDS.toNanos(10), 3);
    }

    private static Result blocking(String name, Pair pair, boolean withPayload, int payload, MemorySegment page,
                                   MemorySegment replyPage, int warmup, int iterations) throws TransportException {
        OutboundMessage message = new OutboundMessage();
        ReplyBuffer reply = new ReplyBuffer(replyPage, 0, payload);
        short type = withPayload ? ECHO : FETCH;
        for (int i = 0; i < warmup; i++) {
            message.clear().type(type).arg0(i);
            if (withPayload) {
                message.payload(page, 0, payload);
            }
            pair.client.request(1, message, reply, REQUEST_TIMEOUT);
        }
        Histogram latency = histogram();
        long start = System.nanoTime();
        for (int i = 0; i < iterations; i++) {
            long sent = System.nanoTime();
            message.clear().type(type).arg0(i);
            if (withPayload) {
                message.payload(page, 0, payload);
            }
            pair.client.request(1, message, reply, REQUEST_TIMEOUT);
            latency.recordValue(System.nanoTime() - sent);
            if (reply.arg0() != i || reply.payloadLength() != payload) {
                throw new IllegalStateException("reply " + reply.arg0() + " does not answer request " + i);
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        long moved = (long) iterations * payload * (withPayload ? 2 : 1);
        return new Result(name, payload, iterations, seconds, latency, moved);
    }

    /** Callback requests with a bounded number in flight; latency from send to callback. */
    private static final class Pipeline implements ReplyHandler {
        final Histogram latency = histogram();
        final long[] sentAt;
        final Semaphore window;
        volatile boolean recording;
        volatile String failure;

        Pipeline(int iterations, int windowSize) {
            sentAt = new long[iterations];
            window = new Semaphore(windowSize);
        }

        @Override
        public void onReply(InboundMessage reply, long token) {
            if (recording) {
                latency.recordValue(System.nanoTime() - sentAt[(int) token]);
            }
            window.release();
        }

        @Override
        public void onFailure(long token, TransportException e) {
            failure = e.getMessage();
            window.release();
        }
    }

    private static Result pipelined(Pair pair, int payload, int warmup, int iterations, int windowSize)
            throws TransportException, InterruptedException {
        OutboundMessage message = new OutboundMessage();
        Pipeline warm = new Pipeline(warmup, windowSize);
        run(pair, message, warm, warmup, windowSize);
        Pipeline pipeline = new Pipeline(iterations, windowSize);
        pipeline.recording = true;
        long start = System.nanoTime();
        run(pair, message, pipeline, iterations, windowSize);
        double seconds = (System.nanoTime() - start) / 1e9;
        if (pipeline.failure != null) {
            throw new IllegalStateException("pipelined request failed: " + pipeline.failure);
        }
        return new Result("pipelined-w" + windowSize, payload, iterations, seconds, pipeline.latency,
                (long) iterations * payload);
    }

    private static void run(Pair pair, OutboundMessage message, Pipeline pipeline, int count, int windowSize)
            throws TransportException, InterruptedException {
        for (int i = 0; i < count; i++) {
            pipeline.window.acquire();
            message.clear().type(FETCH).arg0(i);
            pipeline.sentAt[i] = System.nanoTime();
            pair.client.requestAsync(1, message, pipeline, i, REQUEST_TIMEOUT);
        }
        // Wait for the tail: the whole window back.
        if (!pipeline.window.tryAcquire(windowSize, 30, TimeUnit.SECONDS)) {
            throw new IllegalStateException("pipelined replies did not all arrive");
        }
    }

    public static void main(String[] args) throws Exception {
        int iterations = 100_000;
        int warmup = 20_000;
        int payload = 4096;
        int window = 32;
        Path json = Path.of("transport-benchmark.json");
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            if (i + 1 >= args.length) {
                usage("option " + arg + " needs a value");
            }
            String value = args[++i];
            switch (arg) {
                case "--iterations" -> iterations = positive(arg, value);
                case "--warmup" -> warmup = positive(arg, value);
                case "--payload" -> payload = positive(arg, value);
                case "--window" -> window = positive(arg, value);
                case "--json" -> json = Path.of(value);
                default -> usage("unknown option " + arg);
            }
        }
        if (payload > TcpTransportConfig.DEFAULT_MAX_PAYLOAD) {
            usage("--payload is above the " + TcpTransportConfig.DEFAULT_MAX_PAYLOAD + "-byte maximum");
        }
        byte[] secret = new byte[32];
        new SecureRandom().nextBytes(secret);
        List<Result> results = new ArrayList<>();
        try (Arena arena = Arena.ofShared()) {
            MemorySegment memory = arena.allocate(256L * payload, 4096);
            MemorySegment page = arena.allocate(payload, 4096);
            MemorySegment replyPage = arena.allocate(payload, 4096);
            for (long i = 0; i < memory.byteSize(); i += 8) {
                memory.set(ValueLayout.JAVA_LONG_UNALIGNED, i, i * 0x9E37_79B9_7F4A_7C15L);
            }
            int inline = TcpTransportConfig.DEFAULT_INLINE_PAYLOAD;
            try (Pair pair = new Pair(secret, payload, inline, memory)) {
                results.add(blocking("fetch", pair, false, payload, page, replyPage, warmup, iterations));
                results.add(blocking("echo", pair, true, payload, page, replyPage, warmup, iterations));
                results.add(pipelined(pair, payload, warmup, iterations, window));
            }
            try (Pair pair = new Pair(secret, payload, 0, memory)) {
                results.add(blocking("echo-gather", pair, true, payload, page, replyPage, warmup, iterations));
            }
        }
        String table = table(results);
        System.out.print(table);
        Files.writeString(json, json(results, iterations, warmup));
        System.out.println("wrote " + json.toAbsolutePath());
    }

    private static int positive(String option, String value) {
        try {
            int parsed = Integer.parseInt(value);
            if (parsed > 0) {
                return parsed;
            }
        } catch (NumberFormatException e) {
            // Reported below.
        }
        usage(option + " needs a positive integer, got '" + value + "'");
        return 0;
    }

    private static void usage(String problem) {
        System.err.println("transport benchmark: " + problem);
        System.err.println("usage: TransportBenchmark [--iterations N] [--warmup N] [--payload BYTES] [--window N]"
                + " [--json FILE]");
        System.exit(2);
    }

    static String table(List<Result> results) {
        StringBuilder out = new StringBuilder();
        out.append(String.format(Locale.ROOT, "%-14s %7s %9s %9s %9s %9s %10s %12s %9s%n", "scenario", "payload",
                "p50 us", "p90 us", "p99 us", "max us", "mean us", "msgs/s", "MB/s"));
        for (Result r : results) {
            out.append(String.format(Locale.ROOT, "%-14s %7d %9.1f %9.1f %9.1f %9.1f %10.1f %12.0f %9.1f%n",
                    r.scenario(), r.payload(), r.micros(50), r.micros(90), r.micros(99),
                    r.latencyNanos().getMaxValue() / 1000.0, r.latencyNanos().getMean() / 1000.0,
                    r.messagesPerSecond(), r.megabytesPerSecond()));
        }
        return out.toString();
    }

    static String json(List<Result> results, int iterations, int warmup) {
        StringBuilder out = new StringBuilder();
        out.append("{\n  \"benchmark\": \"dvmm tcp transport loopback\",\n");
        out.append("  \"java\": \"").append(System.getProperty("java.version")).append("\",\n");
        out.append("  \"cpus\": ").append(Runtime.getRuntime().availableProcessors()).append(",\n");
        out.append("  \"iterations\": ").append(iterations).append(",\n");
        out.append("  \"warmup\": ").append(warmup).append(",\n");
        out.append("  \"results\": [\n");
        for (int i = 0; i < results.size(); i++) {
            Result r = results.get(i);
            out.append(String.format(Locale.ROOT, "    {\"scenario\": \"%s\", \"payloadBytes\": %d, \"iterations\": %d,"
                            + " \"seconds\": %.4f, \"p50Micros\": %.2f, \"p90Micros\": %.2f, \"p99Micros\": %.2f,"
                            + " \"p999Micros\": %.2f, \"maxMicros\": %.2f, \"meanMicros\": %.2f,"
                            + " \"messagesPerSecond\": %.1f, \"megabytesPerSecond\": %.2f}%s%n",
                    r.scenario(), r.payload(), r.iterations(), r.seconds(), r.micros(50), r.micros(90),
                    r.micros(99), r.micros(99.9), r.latencyNanos().getMaxValue() / 1000.0,
                    r.latencyNanos().getMean() / 1000.0, r.messagesPerSecond(), r.megabytesPerSecond(),
                    i + 1 < results.size() ? "," : ""));
        }
        out.append("  ]\n}\n");
        return out.toString();
    }
}
