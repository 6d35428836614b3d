package dev.dvmm.dsm.bench;

import dev.dvmm.bindings.Posix;
import dev.dvmm.bindings.abi.PosixConstants;
import dev.dvmm.dsm.fault.DsmPages;
import dev.dvmm.dsm.fault.FaultReader;
import dev.dvmm.dsm.fault.Userfaultfd;
import dev.dvmm.dsm.node.DsmNode;
import dev.dvmm.dsm.protocol.ProtocolConfig;
import dev.dvmm.dsm.transport.Endpoint;
import dev.dvmm.dsm.transport.OutboundMessage;
import dev.dvmm.dsm.transport.PeerListener;
import dev.dvmm.dsm.transport.ReplyBuffer;
import dev.dvmm.dsm.transport.TcpTransport;
import dev.dvmm.dsm.transport.TcpTransportConfig;
import dev.dvmm.dsm.transport.Transport;
import dev.dvmm.dsm.transport.TransportException;
import dev.dvmm.dsm.transport.UcxTransport;
import dev.dvmm.dsm.transport.UcxTransportConfig;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import org.HdrHistogram.Histogram;

/**
 * DSM fault cost, measured end to end by the faulting thread (the time its access to guest memory
 * takes), with the baselines from the same run: a local userfaultfd fault resolved with UFFDIO_COPY
 * and no network, and a 4 KiB request/response round trip over the same transport. Also the page
 * ping-pong rate between two nodes with and without the hold-time guard.
 */
public final class FaultBenchmark {
    private static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();
    private static final byte[] SECRET = "dvmm-fault-benchmark-secret-0123".getBytes();

    public record Result(int pages, Histogram remoteRead, Histogram remoteWrite, Histogram localUffd, Histogram rtt,
                         double pingPongPagesPerSec, double pingPongHeldPagesPerSec, long holdMicros,
                         double incrementsPerSec, double incrementsHeldPerSec, String transport) {
        private static double us(Histogram h, double p) {
            return h.getValueAtPercentile(p) / 1e3;
        }

        public double ratio() {
            return us(remoteRead, 50) / (us(localUffd, 50) + us(rtt, 50));
        }

        public String toJson() {
            return String.format(Locale.ROOT, "{%n  \"benchmark\": \"fault\",%n  \"nodes\": 2,%n  \"transport\": \"%s\",%n"
                    + "  \"faults_per_kind\": %d,%n"
                    + "  \"remote_read_fault_us\": {\"p50\": %.1f, \"p99\": %.1f},%n"
                    + "  \"remote_write_fault_us\": {\"p50\": %.1f, \"p99\": %.1f},%n"
                    + "  \"local_uffd_fault_us\": {\"p50\": %.1f, \"p99\": %.1f},%n"
                    + "  \"rtt_4k_us\": {\"p50\": %.1f, \"p99\": %.1f},%n"
                    + "  \"ratio_remote_read_p50_over_local_plus_rtt\": %.3f,%n  \"target_ratio\": 1.3,%n"
                    + "  \"ping_pong_pages_per_s\": {\"hold_0\": %.0f, \"hold_%dus\": %.0f},%n"
                    + "  \"ping_pong_increments_per_s\": {\"hold_0\": %.0f, \"hold_%dus\": %.0f}%n}%n",
                    transport, pages, us(remoteRead, 50), us(remoteRead, 99), us(remoteWrite, 50), us(remoteWrite, 99),
                    us(localUffd, 50), us(localUffd, 99), us(rtt, 50), us(rtt, 99), ratio(), pingPongPagesPerSec,
                    holdMicros, pingPongHeldPagesPerSec, incrementsPerSec, holdMicros, incrementsHeldPerSec);
        }

        public String toTable() {
            return String.format(Locale.ROOT, "%-34s %10s %10s%n%-34s %10.1f %10.1f%n%-34s %10.1f %10.1f%n"
                    + "%-34s %10.1f %10.1f%n%-34s %10.1f %10.1f%n%-34s %10.3f (target 1.3)%n"
                    + "%-34s %10.0f pages/s (%.0f increments/s)%n%-34s %10.0f pages/s (%.0f increments/s)%n",
                    "DSM fault cost (2 nodes, " + transport + ")", "p50 us", "p99 us",
                    "remote read fault", us(remoteRead, 50), us(remoteRead, 99),
                    "remote write fault", us(remoteWrite, 50), us(remoteWrite, 99),
                    "local uffd fault (baseline)", us(localUffd, 50), us(localUffd, 99),
                    "4 KiB round trip (baseline)", us(rtt, 50), us(rtt, 99),
                    "remote read / (local + rtt), p50", ratio(),
                    "ping-pong, hold 0", pingPongPagesPerSec, incrementsPerSec,
                    "ping-pong, hold " + holdMicros + " us", pingPongHeldPagesPerSec, incrementsHeldPerSec);
        }
    }

    private FaultBenchmark() {}

    /** Two DSM nodes in this process over loopback TCP, each with its own memfd guest memory. */
    private static final class Pair implements AutoCloseable {
        final MemorySegment[] guest = new MemorySegment[2];
        final MemorySegment[] alias = new MemorySegment[2];
        final int[] fd = new int[2];
        final Transport[] transport = new Transport[2];
        final DsmNode[] node = new DsmNode[2];

        Pair(int pages, long holdNanos, String kind) throws Exception {
            Posix px = Posix.current();
            long len = pages * DsmPages.PAGE_SIZE;
            int rw = PosixConstants.PROT_READ | PosixConstants.PROT_WRITE;
            for (int r = 0; r < 2; r++) {
                fd[r] = Posix.check(px.memfdCreate("bench-" + r, PosixConstants.MFD_CLOEXEC), "memfd");
                Posix.check(px.ftruncate(fd[r], len), "ftruncate");
                guest[r] = px.mmapChecked(0, len, rw, PosixConstants.MAP_SHARED, fd[r], 0, "guest");
                alias[r] = px.mmapChecked(0, len, rw, PosixConstants.MAP_SHARED, fd[r], 0, "alias");
                transport[r] = open(kind, r);
                node[r] = new DsmNode(transport[r], new ProtocolConfig(2, pages, 1, holdNanos, 1 << 14), fd[r],
                        guest[r], alias[r]);
            }
            List<Endpoint> cluster = List.of(transport[0].localEndpoint(), transport[1].localEndpoint());
            for (int r = 0; r < 2; r++) {
                transport[r].start(cluster, node[r]::onMessage, PeerListener.NONE);
            }
            for (int r = 0; r < 2; r++) {
                transport[r].awaitConnected(Duration.ofSeconds(10));
                node[r].start();
            }
        }

        @Override
        public void close() {
            Posix px = Posix.current();
            for (int r = 0; r < 2; r++) {
                node[r].close();
                transport[r].close();
                px.munmap(guest[r]);
                px.munmap(alias[r]);
                px.close(fd[r]);
            }
        }
    }

    /** Runs {@code body} on a fresh platform thread and waits (guest-memory access must not be on the caller). */
    private static void on(Runnable body) throws InterruptedException {
        Thread t = Thread.ofPlatform().start(body);
        t.join();
    }

    public static Result run(int pages, long holdMicros, java.io.PrintStream progress) throws Exception {
        return run(pages, holdMicros, "tcp", progress);
    }

    /** A loopback transport of a 2-node pair: "tcp" or "ucx". */
    private static Transport open(String kind, int rank) throws TransportException {
        return switch (kind) {
            case "tcp" -> new TcpTransport(TcpTransportConfig.loopback(rank, 2, SECRET));
            case "ucx" -> new UcxTransport(UcxTransportConfig.loopback(rank, 2, SECRET));
            default -> throw new IllegalArgumentException("unknown transport '" + kind + "': use tcp or ucx");
        };
    }

    /** As {@link #run(int, long, java.io.PrintStream)} over {@code transport} ("tcp" or "ucx"). */
    public static Result run(int pages, long holdMicros, String transport, java.io.PrintStream progress)
            throws Exception {
        Histogram read = new Histogram(3_600_000_000_000L, 3);
        Histogram write = new Histogram(3_600_000_000_000L, 3);
        progress.println("remote faults over " + pages + " pages (2 nodes, " + transport + " loopback)");
        try (Pair p = new Pair(pages + 1, 0, transport)) {
            // Node 0 writes every page (zero fills, local to their homes or one hop), node 1 then reads each
            // (remote read: data from node 0), node 0 then writes each again (remote write: invalidates node 1).
            on(() -> {
                for (int i = 1; i <= pages; i++) {
                    p.guest[0].set(ValueLayout.JAVA_LONG, i * 4096L, i);
                }
            });
            on(() -> {
                for (int i = 1; i <= pages; i++) {
                    long t0 = System.nanoTime();
                    long v = p.guest[1].get(ValueLayout.JAVA_LONG, i * 4096L);
                    read.recordValue(System.nanoTime() - t0);
                    if (v != i) {
                        throw new IllegalStateException("page " + i + " read " + v);
                    }
                }
            });
            on(() -> {
                for (int i = 1; i <= pages; i++) {
                    long t0 = System.nanoTime();
                    p.guest[1].set(ValueLayout.JAVA_LONG, i * 4096L + 8, i);
                    long t1 = System.nanoTime();
                    write.recordValue(t1 - t0);
                }
            });
        }
        progress.println("local userfaultfd baseline");
        Histogram local = localUffd(pages);
        progress.println("4 KiB round trip baseline");
        Histogram rtt = roundTrip(Math.max(pages, 5000), transport);
        progress.println("page ping-pong, hold 0");
        double[] free = pingPong(0, transport);
        progress.println("page ping-pong, hold " + holdMicros + " us");
        double[] held = pingPong(holdMicros * 1000, transport);
        return new Result(pages, read, write, local, rtt, free[0], held[0], holdMicros, free[1], held[1], transport);
    }

    private static Histogram localUffd(int pages) throws Exception {
        Histogram h = new Histogram(3_600_000_000_000L, 3);
        Posix px = Posix.current();
        long len = pages * DsmPages.PAGE_SIZE;
        int rw = PosixConstants.PROT_READ | PosixConstants.PROT_WRITE;
        int fd = Posix.check(px.memfdCreate("bench-local", PosixConstants.MFD_CLOEXEC), "memfd");
        Posix.check(px.ftruncate(fd, len), "ftruncate");
        MemorySegment guest = px.mmapChecked(0, len, rw, PosixConstants.MAP_SHARED, fd, 0, "guest");
        MemorySegment alias = px.mmapChecked(0, len, rw, PosixConstants.MAP_SHARED, fd, 0, "alias");
        try (Arena arena = Arena.ofShared(); Userfaultfd uffd = DsmPages.registerGuestMapping(guest);
             DsmPages dsm = new DsmPages(uffd, fd, guest, alias)) {
            MemorySegment src = arena.allocate(DsmPages.PAGE_SIZE, DsmPages.PAGE_SIZE);
            FaultReader reader = new FaultReader(uffd, guest, (page, w, wp, tid) -> dsm.install(page, src, true), "bench-uffd");
            reader.start();
            try {
                on(() -> {
                    for (int i = 0; i < pages; i++) {
                        long t0 = System.nanoTime();
                        guest.get(ValueLayout.JAVA_LONG, i * 4096L);
                        h.recordValue(System.nanoTime() - t0);
                    }
                });
            } finally {
                reader.close();
            }
        } finally {
            px.munmap(guest);
            px.munmap(alias);
            px.close(fd);
        }
        return h;
    }

    private static Histogram roundTrip(int n, String kind) throws Exception {
        Histogram h = new Histogram(3_600_000_000_000L, 3);
        Transport a = open(kind, 0);
        Transport b = open(kind, 1);
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

    /** Two threads on two nodes incrementing the same word for 2 s: {page transfers/s, increments/s}. */
    private static double[] pingPong(long holdNanos, String kind) throws Exception {
        try (Pair p = new Pair(2, holdNanos, kind)) {
            long[] done = new long[2];
            long deadline = System.nanoTime() + 2_000_000_000L;
            Thread[] t = new Thread[2];
            for (int r = 0; r < 2; r++) {
                final int me = r;
                t[r] = Thread.ofPlatform().start(() -> {
                    long n = 0;
                    while (System.nanoTime() < deadline) {
                        LONG.getAndAdd(p.guest[me], 4096L, 1L);
                        n++;
                    }
                    done[me] = n;
                });
            }
            for (Thread x : t) {
                x.join();
            }
            long transfers = p.node[0].stats().remoteFetches() + p.node[1].stats().remoteFetches();
            return new double[] {transfers / 2.0, (done[0] + done[1]) / 2.0};
        }
    }
}
