package dev.dvmm.dsm.bench;

import dev.dvmm.bindings.Posix;
import dev.dvmm.bindings.abi.PosixConstants;
import dev.dvmm.dsm.fault.DsmPages;
import dev.dvmm.dsm.node.DsmNode;
import dev.dvmm.dsm.node.FaultTrace;
import dev.dvmm.dsm.protocol.ProtocolConfig;
import dev.dvmm.dsm.transport.Endpoint;
import dev.dvmm.dsm.transport.MessageHandler;
import dev.dvmm.dsm.transport.OutboundMessage;
import dev.dvmm.dsm.transport.PeerListener;
import dev.dvmm.dsm.transport.Transport;
import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import org.HdrHistogram.Histogram;

/**
 * One node of {@code dvmm bench fault --node-processes}, a JVM process of its own ({@code main(rank)}), driven by
 * {@link NodeProcesses} with one command per stdin line, each answered by one stdout line that starts with
 * {@link NodeProcesses#REPLY}: {@code done}, a value, or {@code error <one line>}. It holds one thing at a time, a DSM
 * node ({@code dsm}) or a bare transport that echoes requests ({@code echo}), and closes it on {@code close}:
 * <ul>
 * <li>{@code clock}: {@code clock <System.nanoTime()>}
 * <li>{@code dsm NODES PAGES HOLD_NS BUSY_POLL_NS TRANSPORT ONE_SIDED TRACE_EVENTS}: {@code endpoint host:port}
 * <li>{@code echo TRANSPORT}: a transport of rank 0 or 1 of 2, rank 1 answering every request with 4 KiB; its endpoint
 * <li>{@code connect host:port,...}: the cluster, by rank; {@code done} once every peer is connected
 * <li>{@code pass I warm-up|measured|traced}: pass {@code I} of {@link FaultBenchmark#passes} over this node's pages
 *     (the warm-up, timed, and traced thirds of the pages; only the traced pass records the trace)
 * <li>{@code trace-on}: the DSM node records its steps into the trace from now on (off after dsm)
 * <li>{@code stop} (ends the DSM node, keeps the transport: {@code stopped <remote fetches>})
 * <li>{@code results}: {@code results} and 8 Base64 histograms (two-party kinds, three-party kinds), then the trace
 * <li>{@code rtt N}: N timed round trips to rank 1: {@code histogram <Base64>}
 * <li>{@code ping-pong START DEADLINE}: stores between two System.nanoTime() instants: {@code done <stores>}
 * </ul>
 * The process exits when its stdin ends: at once if idle, within seconds (halted) if stuck in a command.
 */
public final class FaultBenchmarkNode {
    private final int rank;
    private int nodes;
    private int measured;
    private int memfd = -1;
    private MemorySegment guest;
    private MemorySegment alias;
    private Transport transport;
    private DsmNode node;
    private boolean stopped;
    private MessageHandler handler;
    private Arena echoArena;
    private FaultTrace trace;
    /** The DSM node records into {@link #trace} (after trace-on, until the node closes). */
    private boolean tracing;
    private final Histogram[] two = new Histogram[4];
    private final Histogram[] three = new Histogram[4];

    private FaultBenchmarkNode(int rank) {
        this.rank = rank;
    }

    public static void main(String[] args) {
        // Replies go to the real stdout; anything printing to System.out (a logger) goes to stderr instead.
        PrintStream replies = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
        System.setOut(System.err);
        int rank;
        try {
            rank = Integer.parseInt(args[0]);
        } catch (ArrayIndexOutOfBoundsException | NumberFormatException e) {
            System.err.println("usage: FaultBenchmarkNode RANK");
            System.exit(2);
            return;
        }
        System.err.println("fault benchmark node " + rank + " (pid " + ProcessHandle.current().pid() + ") started");
        BlockingQueue<String> lines = new LinkedBlockingQueue<>();
        String end = "\n";
        // Commands run on this thread; stdin is read apart, so that its end (the driver gone) is seen mid-command too.
        Thread.ofPlatform().name("stdin").daemon(true).start(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null) {
                    lines.add(line);
                }
            } catch (IOException e) {
                // the driver is gone
            }
            lines.add(end);
            // An idle node exits at once below; one stuck in a fault (its peer gone) would not: halt it.
            try {
                Thread.sleep(10_000);
            } catch (InterruptedException e) {
                // exit now
            }
            Runtime.getRuntime().halt(3);
        });
        FaultBenchmarkNode self = new FaultBenchmarkNode(rank);
        try {
            while (true) {
                String line = lines.take();
                if (line.equals(end)) {
                    break;
                }
                String reply;
                try {
                    reply = self.execute(line.strip());
                } catch (Exception e) {
                    String why = e.getMessage() == null ? e.toString() : e.getMessage();
                    reply = "error " + (e instanceof IllegalStateException || e instanceof IllegalArgumentException
                            ? "" : e.getClass().getSimpleName() + ": ") + why.replace('\n', ' ');
                }
                replies.println(NodeProcesses.REPLY + reply);
            }
            self.close();
        } catch (Throwable t) {
            System.err.println("fault benchmark node " + rank + " failed: " + String.valueOf(t).replace('\n', ' '));
            Runtime.getRuntime().halt(1);
        }
        System.exit(0);
    }

    private String execute(String line) throws Exception {
        String[] a = line.split(" ");
        try {
            return switch (a[0]) {
                case "clock" -> "clock " + System.nanoTime();
                case "dsm" -> dsm(Integer.parseInt(a[1]), Integer.parseInt(a[2]), Long.parseLong(a[3]),
                        Long.parseLong(a[4]), a[5], Boolean.parseBoolean(a[6]), Integer.parseInt(a[7]));
                case "echo" -> echo(a[1]);
                case "connect" -> connect(a[1]);
                case "pass" -> pass(Integer.parseInt(a[1]), a[2]);
                case "trace-on" -> {
                    requireNode();
                    node.setTrace(trace);
                    tracing = true;
                    yield "done";
                }
                case "stop" -> stop();
                case "results" -> results();
                case "rtt" -> rtt(Integer.parseInt(a[1]));
                case "local" -> local(Integer.parseInt(a[1]));
                case "ping-pong" -> pingPong(Long.parseLong(a[1]), Long.parseLong(a[2]));
                case "close" -> {
                    close();
                    yield "done";
                }
                default -> throw new IllegalArgumentException("unknown command '" + a[0] + "'");
            };
        } catch (ArrayIndexOutOfBoundsException | NumberFormatException e) {
            throw new IllegalArgumentException("bad command '" + line + "': " + e.getMessage());
        }
    }

    private String dsm(int nodes, int pageCount, long holdNanos, long busyPollNanos, String kind, boolean oneSided,
                       int traceEvents) throws Exception {
        requireIdle();
        if (rank >= nodes) {
            throw new IllegalArgumentException("rank " + rank + " is not in a cluster of " + nodes);
        }
        try {
            return openDsm(nodes, pageCount, holdNanos, busyPollNanos, kind, oneSided, traceEvents);
        } catch (Exception | Error e) {
            close();
            throw e;
        }
    }

    private String openDsm(int nodes, int pageCount, long holdNanos, long busyPollNanos, String kind,
                           boolean oneSided, int traceEvents) throws Exception {
        Posix px = Posix.current();
        long length = pageCount * DsmPages.PAGE_SIZE;
        int rw = PosixConstants.PROT_READ | PosixConstants.PROT_WRITE;
        memfd = Posix.check(px.memfdCreate("dsm-node-" + rank, PosixConstants.MFD_CLOEXEC), "memfd_create");
        Posix.check(px.ftruncate(memfd, length), "ftruncate");
        guest = px.mmapChecked(0, length, rw, PosixConstants.MAP_SHARED, memfd, 0, "guest mapping");
        alias = px.mmapChecked(0, length, rw, PosixConstants.MAP_SHARED, memfd, 0, "alias mapping");
        transport = Transport.loopback(kind, rank, nodes, FaultBenchmark.SECRET, oneSided);
        node = new DsmNode(transport, new ProtocolConfig(nodes, pageCount, 1, holdNanos, 1 << 14)
                .withOneSidedReads(oneSided), memfd, guest, alias);
        stopped = false;
        tracing = false;
        trace = traceEvents > 0 ? new FaultTrace(traceEvents) : null;
        node.setTrace(null); // until trace-on: the timed faults run as the DSM does, untraced
        node.setBusyPoll(busyPollNanos);
        handler = node::onMessage;
        this.nodes = nodes;
        // Pages 1..n are measured, n+1..2n are the warm-up, 2n+1..3n are traced (see FaultBenchmark.run).
        this.measured = (pageCount - 1) / 3;
        for (int k = 0; k < two.length; k++) {
            two[k] = FaultBenchmark.histogram();
            three[k] = FaultBenchmark.histogram();
        }
        return "endpoint " + transport.localEndpoint();
    }

    private String echo(String kind) throws Exception {
        requireIdle();
        if (rank > 1) {
            throw new IllegalArgumentException("the round trip runs between ranks 0 and 1, not " + rank);
        }
        transport = Transport.loopback(kind, rank, 2, FaultBenchmark.SECRET);
        echoArena = Arena.ofShared();
        MemorySegment page = echoArena.allocate(DsmPages.PAGE_SIZE, DsmPages.PAGE_SIZE);
        OutboundMessage reply = new OutboundMessage().type((short) 2).payload(page, 0, (int) DsmPages.PAGE_SIZE);
        handler = rank == 1 ? FaultBenchmark.echo(transport, reply) : m -> { };
        return "endpoint " + transport.localEndpoint();
    }

    private String connect(String list) throws Exception {
        if (transport == null) {
            throw new IllegalStateException("connect before dsm or echo");
        }
        List<Endpoint> cluster = new ArrayList<>();
        for (String e : list.split(",")) {
            cluster.add(Endpoint.parse(e));
        }
        transport.start(cluster, handler, PeerListener.NONE);
        transport.awaitConnected(Duration.ofSeconds(20));
        if (node != null) {
            node.start();
        }
        return "done";
    }

    private String pass(int index, String round) throws Exception {
        FaultTrace t = requireNode();
        List<FaultBenchmark.Pass> passes = FaultBenchmark.passes(nodes);
        if (index < 0 || index >= passes.size()) {
            throw new IllegalArgumentException("there is no pass " + index + " of " + passes.size());
        }
        int first = switch (round) {
            case "measured" -> 1;
            case "warm-up" -> measured + 1;
            case "traced" -> 2 * measured + 1;
            default -> throw new IllegalArgumentException("a pass is warm-up, measured or traced, not '" + round + "'");
        };
        boolean timed = round.equals("measured");
        FaultTrace traced = round.equals("traced") ? t : null;
        if (traced != null && !tracing) {
            throw new IllegalStateException("a traced pass comes after trace-on");
        }
        FaultBenchmark.Pass pass = passes.get(index);
        Histogram[] scratch = {FaultBenchmark.histogram(), FaultBenchmark.histogram(), FaultBenchmark.histogram(),
            FaultBenchmark.histogram()};
        FaultBenchmark.on(() -> FaultBenchmark.runPass(pass, nodes, rank, first, measured, guest,
                Arena.ofAuto().allocate(8, 8), traced, timed ? two : scratch, timed ? three : scratch));
        failIfNodeFailed();
        return "done";
    }

    private String stop() {
        if (node == null) {
            throw new IllegalStateException("stop without a DSM node");
        }
        node.close();
        stopped = true;
        return "stopped " + node.stats().remoteFetches();
    }

    private String results() {
        if (!stopped || trace == null) {
            throw new IllegalStateException("results come after a DSM node with a trace is stopped");
        }
        FaultTrace t = trace;
        StringBuilder s = new StringBuilder("results");
        for (Histogram h : two) {
            s.append(' ').append(NodeProcesses.encodeHistogram(h));
        }
        for (Histogram h : three) {
            s.append(' ').append(NodeProcesses.encodeHistogram(h));
        }
        long[] events = new long[2 * t.size()];
        for (int i = 0; i < t.size(); i++) {
            events[2 * i] = t.time(i);
            events[2 * i + 1] = t.packed(i);
        }
        return s.append(' ').append(NodeProcesses.encodeLongs(events)).toString();
    }

    private String rtt(int n) throws Exception {
        if (transport == null || node != null || rank != 0) {
            throw new IllegalStateException("rtt runs on rank 0 after echo and connect");
        }
        Histogram h = FaultBenchmark.histogram();
        FaultBenchmark.roundTrips(transport, 1, n, h);
        return "histogram " + NodeProcesses.encodeHistogram(h);
    }

    /** The local baselines in a node process, where the nodes' own faults were measured: "local LOCAL WP". */
    private String local(int pages) throws Exception {
        requireIdle();
        Histogram writeProtect = FaultBenchmark.histogram();
        Histogram local = FaultBenchmark.localBaselines(pages, writeProtect);
        return "local " + NodeProcesses.encodeHistogram(local) + " " + NodeProcesses.encodeHistogram(writeProtect);
    }

    private String pingPong(long start, long deadline) throws Exception {
        if (node == null || stopped) {
            throw new IllegalStateException("ping-pong needs a DSM node");
        }
        long[] stores = new long[1];
        MemorySegment g = guest;
        FaultBenchmark.on(() -> stores[0] = FaultBenchmark.pingPongStores(g, start, deadline));
        failIfNodeFailed();
        return "done " + stores[0];
    }

    private FaultTrace requireNode() {
        if (node == null || trace == null || stopped) {
            throw new IllegalStateException("no running DSM node with a trace (send dsm and connect first)");
        }
        return trace;
    }

    private void requireIdle() {
        if (transport != null) {
            throw new IllegalStateException("a " + (node != null ? "DSM node" : "transport") + " is open: close it first");
        }
    }

    private void failIfNodeFailed() {
        if (node.failure() != null) {
            throw new IllegalStateException("the DSM node failed: " + node.failure());
        }
    }

    /** Stops and frees whatever is open. */
    private void close() {
        Posix px = Posix.current();
        if (node != null) {
            node.close();
            node = null;
        }
        if (transport != null) {
            transport.close();
            transport = null;
        }
        if (echoArena != null) {
            echoArena.close();
            echoArena = null;
        }
        if (guest != null) {
            px.munmap(guest);
            guest = null;
        }
        if (alias != null) {
            px.munmap(alias);
            alias = null;
        }
        if (memfd >= 0) {
            px.close(memfd);
            memfd = -1;
        }
        trace = null;
        stopped = false;
    }
}
