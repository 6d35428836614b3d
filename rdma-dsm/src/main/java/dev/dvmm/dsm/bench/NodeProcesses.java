package dev.dvmm.dsm.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.PrintStream;
import java.io.Writer;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.zip.DataFormatException;
import org.HdrHistogram.Histogram;

/**
 * The node processes of {@code dvmm bench fault --node-processes}: one JVM per DSM node ({@link FaultBenchmarkNode}),
 * driven from this process over their stdin and stdout, one command line and one reply line at a time.
 *
 * <p>This process is a pure driver and every node, rank 0 included, is a child: the nodes are then alike (same JVM,
 * same flags, same warm-up), none shares its process with the driver's threads or with the baselines measured here,
 * and a failing node is reported the same way whatever its rank. The price is one more JVM, idle while nodes work.
 *
 * <p>Every wait has a timeout; a child that dies, answers {@code error ...} or stays silent fails the benchmark with
 * a {@link BenchmarkException} naming its rank and its last line on stderr. A child whose stdin closes exits.
 */
final class NodeProcesses implements AutoCloseable {
    /** Replies start with this; anything else on a child's stdout (a native library's log line) is not a reply. */
    static final String REPLY = "fault-bench-node: ";
    /** Queued when a child's stdout ends; no reply line can be this one (replies are split at line ends). */
    private static final String END = "\n";
    private static final Duration REPLY_TIMEOUT = Duration.ofSeconds(120);
    private static final Duration EXIT_GRACE = Duration.ofSeconds(5);

    private final Process[] process;
    private final Writer[] commands;
    private final List<BlockingQueue<String>> replies = new ArrayList<>();
    private final AtomicReferenceArray<String> lastStderr;
    private final List<Thread> pumps = new ArrayList<>();
    private final PrintStream progress;

    /** Whether node r runs confined to CPU r (see {@link #canPin}). */
    private final boolean pinned;

    private NodeProcesses(int count, PrintStream progress) {
        this.pinned = canPin(count);
        this.process = new Process[count];
        this.commands = new Writer[count];
        this.lastStderr = new AtomicReferenceArray<>(count);
        this.progress = progress;
    }

    /**
     * Starts {@code count} node processes (ranks 0..count-1) with this JVM's binary and class path, and the flags the
     * {@code dvmm} launcher gives a node; their stderr and stray stdout lines go to {@code progress}, prefixed by rank.
     */
    static NodeProcesses start(int count, PrintStream progress) throws IOException {
        NodeProcesses procs = new NodeProcesses(count, progress);
        try {
            for (int r = 0; r < count; r++) {
                procs.launch(r);
            }
            return procs;
        } catch (IOException | RuntimeException e) {
            procs.close();
            throw e;
        }
    }

    /**
     * Whether {@code count} node processes can each be confined to a CPU of its own (taskset, node r on CPU r): as on
     * separate machines, a node's own threads then hand work to each other on one CPU, and never share it with
     * another node's. Measured with 2 nodes here: remote read p50 23.5-25.5 us pinned against 25.8-30.0 unpinned,
     * ratio 1.36-1.40 against 1.14-1.65 (3 alternating runs).
     */
    static boolean canPin(int count) {
        return count <= Runtime.getRuntime().availableProcessors() && TransportComparison.onPath("taskset");
    }

    boolean pinned() { return pinned; }

    /** The command line of a node process: as the ./dvmm launcher (and LocalCluster's node processes) run a JVM. */
    static List<String> commandLine(int rank, boolean pin) {
        List<String> cmd = new ArrayList<>();
        if (pin) {
            cmd.addAll(List.of("taskset", "-c", Integer.toString(rank)));
        }
        cmd.addAll(List.of(ProcessHandle.current().info().command().orElse("java"),
                "--enable-native-access=ALL-UNNAMED", "-XX:+UnlockDiagnosticVMOptions",
                "-XX:GuaranteedSafepointInterval=0"));
        // This JVM's own -XX: flags too (the launcher's JIT choice in the lab, DVMM_JAVA_OPTS); not a flight
        // recording, whose file every child would overwrite.
        for (String arg : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            if (arg.startsWith("-XX:") && !arg.startsWith("-XX:StartFlightRecording") && !cmd.contains(arg)) {
                cmd.add(arg);
            }
        }
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), FaultBenchmarkNode.class.getName(),
                Integer.toString(rank)));
        return cmd;
    }

    private void launch(int rank) throws IOException {
        Process p = new ProcessBuilder(commandLine(rank, pinned)).start();
        process[rank] = p;
        commands[rank] = new OutputStreamWriter(p.getOutputStream(), StandardCharsets.UTF_8);
        BlockingQueue<String> queue = new LinkedBlockingQueue<>();
        replies.add(queue);
        pumps.add(pump("node-" + rank + "-stdout", p.getInputStream(), line -> {
            if (line == null) {
                queue.add(END);
            } else if (line.startsWith(REPLY)) {
                queue.add(line.substring(REPLY.length()));
            } else {
                forward(rank, line);
            }
        }));
        pumps.add(pump("node-" + rank + "-stderr", p.getErrorStream(), line -> {
            if (line != null) {
                if (!line.isBlank()) {
                    lastStderr.set(rank, line.strip());
                }
                forward(rank, line);
            }
        }));
    }

    private interface LineSink {
        /** A line, or null at the end of the stream. */
        void accept(String line);
    }

    private static Thread pump(String name, InputStream stream, LineSink sink) {
        return Thread.ofPlatform().name(name).daemon(true).start(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(stream, StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null) {
                    sink.accept(line);
                }
            } catch (IOException e) {
                // the process is gone: the end of its output
            }
            sink.accept(null);
        });
    }

    private void forward(int rank, String line) {
        synchronized (progress) {
            progress.println("[node " + rank + "] " + line);
        }
    }

    /** The process of {@code rank} (tests). */
    Process process(int rank) {
        return process[rank];
    }

    /** Sends {@code command} to {@code rank} without waiting for the reply. */
    void send(int rank, String command) {
        try {
            commands[rank].write(command + "\n");
            commands[rank].flush();
        } catch (IOException e) {
            // A closed pipe: the process is gone (or going); say how it ended.
            throw gone(rank, command);
        }
    }

    /** Waits for the reply of {@code rank} to {@code command} (sent before): the reply line, never "error ...". */
    String await(int rank, String command) {
        long deadline = System.nanoTime() + REPLY_TIMEOUT.toNanos();
        while (true) {
            String line;
            try {
                line = replies.get(rank).poll(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new BenchmarkException("interrupted while waiting for node rank " + rank);
            }
            if (line == null) {
                throw new BenchmarkException("node rank " + rank + " (pid " + process[rank].pid() + ") did not answer '"
                        + brief(command) + "' within " + REPLY_TIMEOUT.toSeconds() + " s" + stderrTail(rank));
            }
            if (line.equals(END)) {
                throw gone(rank, command);
            }
            if (line.startsWith("error ")) {
                throw new BenchmarkException("node rank " + rank + ": " + line.substring("error ".length()));
            }
            return line;
        }
    }

    /** Sends {@code command} to {@code rank} and waits for the reply. */
    String call(int rank, String command) {
        send(rank, command);
        return await(rank, command);
    }

    /** Sends {@code command} to ranks 0..count-1, then waits for all: their replies by rank. */
    String[] all(int count, String command) {
        for (int r = 0; r < count; r++) {
            send(r, command);
        }
        String[] out = new String[count];
        for (int r = 0; r < count; r++) {
            out[r] = await(r, command);
        }
        return out;
    }

    /** Checks that {@code rank} reads the same monotonic clock as this process (the stage traces depend on it). */
    void checkClock(int rank) {
        long before = System.nanoTime();
        long theirs = Long.parseLong(call(rank, "clock").substring("clock ".length()));
        long after = System.nanoTime();
        if (theirs < before || theirs > after) {
            throw new BenchmarkException("node rank " + rank + " reads another clock (System.nanoTime() " + theirs
                    + ", here between " + before + " and " + after + "): its stage traces cannot be merged");
        }
    }

    private BenchmarkException gone(int rank, String command) {
        Process p = process[rank];
        try {
            p.waitFor(EXIT_GRACE.toMillis(), TimeUnit.MILLISECONDS);
            // Its stderr may hold a last line not yet read.
            for (Thread t : pumps) {
                if (t.getName().equals("node-" + rank + "-stderr")) {
                    t.join(2000);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        String how = p.isAlive() ? "closed its output" : "exited with status " + p.exitValue();
        return new BenchmarkException("node rank " + rank + " (pid " + p.pid() + ") " + how + " during '"
                + brief(command) + "'" + stderrTail(rank));
    }

    private String stderrTail(int rank) {
        String last = lastStderr.get(rank);
        return last == null ? "; it wrote nothing on stderr" : "; its last stderr line: " + last;
    }

    private static String brief(String command) {
        return command.length() <= 60 ? command : command.substring(0, 57) + "...";
    }

    /**
     * Closes every child's stdin (it then stops its node and exits), waits a little, then destroys those still there.
     */
    @Override
    public void close() {
        for (Writer w : commands) {
            if (w != null) {
                try {
                    w.close();
                } catch (IOException e) {
                    // already gone
                }
            }
        }
        long deadline = System.nanoTime() + EXIT_GRACE.toNanos();
        for (Process p : process) {
            if (p == null) {
                continue;
            }
            try {
                if (!p.waitFor(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                    p.destroy();
                    if (!p.waitFor(2, TimeUnit.SECONDS)) {
                        p.destroyForcibly();
                    }
                }
            } catch (InterruptedException e) {
                p.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
        for (Thread t : pumps) {
            try {
                t.join(2000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** "h:p,h:p,..." from replies that each are {@code prefix} + an endpoint. */
    static String endpointList(String[] replies, String prefix) {
        StringBuilder s = new StringBuilder();
        for (String reply : replies) {
            if (!reply.startsWith(prefix)) {
                throw new BenchmarkException("a node process answered '" + brief(reply) + "' instead of its endpoint");
            }
            s.append(s.isEmpty() ? "" : ",").append(reply.substring(prefix.length()));
        }
        return s.toString();
    }

    static String encodeHistogram(Histogram h) {
        ByteBuffer b = ByteBuffer.allocate(h.getNeededByteBufferCapacity());
        int length = h.encodeIntoCompressedByteBuffer(b);
        return Base64.getEncoder().encodeToString(Arrays.copyOf(b.array(), length));
    }

    static Histogram decodeHistogram(String text) {
        try {
            return Histogram.decodeFromCompressedByteBuffer(ByteBuffer.wrap(Base64.getDecoder().decode(text)), 0);
        } catch (DataFormatException | IllegalArgumentException e) {
            throw new BenchmarkException("a node process sent a histogram that does not decode: " + e.getMessage());
        }
    }

    static String encodeLongs(long[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * Long.BYTES);
        b.asLongBuffer().put(values);
        return Base64.getEncoder().encodeToString(b.array());
    }

    static long[] decodeLongs(String text) {
        byte[] bytes;
        try {
            bytes = Base64.getDecoder().decode(text);
        } catch (IllegalArgumentException e) {
            throw new BenchmarkException("a node process sent a trace that does not decode: " + e.getMessage());
        }
        long[] values = new long[bytes.length / Long.BYTES];
        ByteBuffer.wrap(bytes).asLongBuffer().get(values);
        return values;
    }
}
