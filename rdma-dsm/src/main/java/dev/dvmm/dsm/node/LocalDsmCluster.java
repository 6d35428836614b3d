package dev.dvmm.dsm.node;

import dev.dvmm.bindings.Posix;
import dev.dvmm.bindings.abi.PosixConstants;
import dev.dvmm.dsm.fault.DsmPages;
import dev.dvmm.dsm.protocol.ProtocolConfig;
import dev.dvmm.dsm.transport.Endpoint;
import dev.dvmm.dsm.transport.PeerListener;
import dev.dvmm.dsm.transport.Transport;
import dev.dvmm.dsm.transport.TransportException;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * A cluster of {@link DsmNode}s inside this process, over loopback TCP, each node with its own memfd guest memory
 * (a guest mapping registered with its userfaultfd and an alias mapping): for benchmarks and tests. Threads that
 * touch {@link #guest} memory act as that node's vCPUs or device models.
 */
public final class LocalDsmCluster implements AutoCloseable {
    private static final byte[] SECRET = "dvmm-local-dsm-cluster-secret-01".getBytes(StandardCharsets.US_ASCII);

    private final int size;
    private final int[] memfd;
    private final MemorySegment[] guest;
    private final MemorySegment[] alias;
    private final Transport[] transport;
    private final DsmNode[] node;

    /** Builds and starts {@code config.nodeCount()} connected nodes; {@code trace} (or null) records their faults. */
    public LocalDsmCluster(ProtocolConfig config, FaultTrace trace) throws TransportException {
        this(config, trace, 0);
    }

    /** As above, each node busy-polling up to {@code busyPollNanos} while a fault awaits a peer (DsmNode.setBusyPoll). */
    public LocalDsmCluster(ProtocolConfig config, FaultTrace trace, long busyPollNanos) throws TransportException {
        this(config, trace, busyPollNanos, "tcp");
    }

    /**
     * As above over loopback {@code transportKind}: "tcp" or "ucx". With {@code config.oneSidedReads()} the transports
     * offer one-sided reads (only ucx can: in software over TCP where there is no RDMA device).
     */
    public LocalDsmCluster(ProtocolConfig config, FaultTrace trace, long busyPollNanos, String transportKind)
            throws TransportException {
        this(config, trace, busyPollNanos, transportKind, java.util.function.UnaryOperator.identity());
    }

    /** As above, each transport passed through {@code wrap} first (tests: a transport that delays or drops). */
    public LocalDsmCluster(ProtocolConfig config, FaultTrace trace, long busyPollNanos, String transportKind,
                           java.util.function.UnaryOperator<Transport> wrap) throws TransportException {
        size = config.nodeCount();
        memfd = new int[size];
        guest = new MemorySegment[size];
        alias = new MemorySegment[size];
        transport = new Transport[size];
        node = new DsmNode[size];
        java.util.Arrays.fill(memfd, -1);
        try {
            Posix px = Posix.current();
            long length = config.pageCount() * DsmPages.PAGE_SIZE;
            int rw = PosixConstants.PROT_READ | PosixConstants.PROT_WRITE;
            for (int r = 0; r < size; r++) {
                memfd[r] = Posix.check(px.memfdCreate("dsm-node-" + r, PosixConstants.MFD_CLOEXEC), "memfd_create");
                Posix.check(px.ftruncate(memfd[r], length), "ftruncate");
                guest[r] = px.mmapChecked(0, length, rw, PosixConstants.MAP_SHARED, memfd[r], 0, "guest mapping");
                alias[r] = px.mmapChecked(0, length, rw, PosixConstants.MAP_SHARED, memfd[r], 0, "alias mapping");
                transport[r] = wrap.apply(Transport.loopback(transportKind, r, size, SECRET, config.oneSidedReads()));
                node[r] = new DsmNode(transport[r], config, memfd[r], guest[r], alias[r]);
                node[r].setTrace(trace);
                node[r].setBusyPoll(busyPollNanos);
            }
            List<Endpoint> cluster = new ArrayList<>();
            for (int r = 0; r < size; r++) {
                cluster.add(transport[r].localEndpoint());
            }
            for (int r = 0; r < size; r++) {
                transport[r].start(cluster, node[r]::onMessage, PeerListener.NONE);
            }
            for (int r = 0; r < size; r++) {
                transport[r].awaitConnected(Duration.ofSeconds(20));
            }
            for (int r = 0; r < size; r++) {
                node[r].start();
            }
        } catch (TransportException | RuntimeException e) {
            close();
            throw e;
        }
    }

    public int size() { return size; }

    public DsmNode node(int rank) { return node[rank]; }

    /** Rank {@code rank}'s guest mapping: accesses fault into its DSM node. */
    public MemorySegment guest(int rank) { return guest[rank]; }

    public Transport transport(int rank) { return transport[rank]; }

    /** The first node failure, as "node R: ...", or null if every node is healthy. */
    public String failure() {
        for (int r = 0; r < size; r++) {
            if (node[r] != null && node[r].failure() != null) {
                return "node " + r + ": " + node[r].failure();
            }
        }
        return null;
    }

    /** Stops every node and transport (joining their threads), then unmaps and closes the memory. Idempotent. */
    @Override
    public void close() {
        Posix px = Posix.current();
        for (int r = 0; r < size; r++) {
            if (node[r] != null) {
                node[r].close();
                node[r] = null;
            }
        }
        for (int r = 0; r < size; r++) {
            if (transport[r] != null) {
                transport[r].close();
                transport[r] = null;
            }
        }
        for (int r = 0; r < size; r++) {
            if (guest[r] != null) {
                px.munmap(guest[r]);
                guest[r] = null;
            }
            if (alias[r] != null) {
                px.munmap(alias[r]);
                alias[r] = null;
            }
            if (memfd[r] >= 0) {
                px.close(memfd[r]);
                memfd[r] = -1;
            }
        }
    }
}
