package dev.dvmm.hv.cli;

import dev.dvmm.dsm.transport.Endpoint;
import dev.dvmm.hv.node.ClusterNode;
import dev.dvmm.hv.node.TestProgram;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** One node of a multi-node guest (normally started by {@code dvmm guest --nodes N}). */
@Command(name = "node", description = "Run one node of a guest spread over several nodes (see 'guest --nodes').")
final class NodeCommand implements Callable<Integer> {
    @Option(names = "--rank", required = true, description = "this node's rank, 0..N-1")
    int rank;

    @Option(names = "--peers", required = true, split = ",", description = "host:port of every node, in rank order")
    List<String> peers;

    @Option(names = "--secret-file", required = true, description = "file holding the cluster secret (hex)")
    Path secretFile;

    @Option(names = "--cpus", defaultValue = "2", description = "vCPUs of the whole guest")
    int cpus;

    @Option(names = "--memory", defaultValue = "64M", converter = ByteSize.GuestRam.class, description = "guest RAM")
    long memory;

    @Option(names = "--program", defaultValue = "counters", description = "hello, counters, pattern or handoff")
    String program;

    @Option(names = "--iterations", defaultValue = "2000", description = "loop count of the program")
    long iterations;

    @Option(names = "--hold-us", defaultValue = "0", description = "minimum page hold time against ping-pong, us")
    long holdMicros;

    @Option(names = "--timeout", defaultValue = "300", description = "seconds")
    long timeoutSeconds;

    @Option(names = "--stats-json", description = "write this node's DSM statistics as JSON")
    Path statsJson;

    @Option(names = "--transport", defaultValue = "tcp", description = "tcp or ucx (default: ${DEFAULT-VALUE})")
    String transport;

    @Option(names = "--remote-reads", defaultValue = "auto", description = "with ucx: one-sided page reads from the "
            + "owner's memory: off, on (also where UCX must emulate them over TCP) or auto (only with an RDMA "
            + "transport); every node must be given the same (default: ${DEFAULT-VALUE})")
    String remoteReads;

    @Option(names = "--busy-poll-us", description = "how long the transport's receive (tcp) or progress (ucx) thread "
            + "polls awake after input before it sleeps; 0 where every core runs a vCPU (default: the transport's, "
            + "50 for tcp, 100 for ucx)")
    Long busyPollMicros;

    @Override
    public Integer call() throws Exception {
        List<Endpoint> cluster = new ArrayList<>();
        for (String p : peers) {
            try {
                cluster.add(Endpoint.parse(p));
            } catch (RuntimeException e) {
                throw new UserError("--peers: '" + p + "' is not host:port");
            }
        }
        if (rank < 0 || rank >= cluster.size()) {
            throw new UserError("--rank " + rank + " is not in 0.." + (cluster.size() - 1));
        }
        byte[] secret;
        try {
            secret = HexFormat.of().parseHex(Files.readString(secretFile, StandardCharsets.US_ASCII).strip());
        } catch (java.io.IOException | IllegalArgumentException e) {
            throw new UserError("cannot read the cluster secret from " + secretFile + ": " + e.getMessage());
        }
        TestProgram prog = GuestCommand.clusterProgram(program);
        if (!transport.equals("tcp") && !transport.equals("ucx")) {
            throw new UserError("--transport must be tcp or ucx, got '" + transport + "'");
        }
        ClusterNode.Config cfg = new ClusterNode.Config(rank, cluster, secret, cpus, memory, prog, iterations,
                holdMicros * 1000, Duration.ofSeconds(timeoutSeconds), statsJson, transport, parseRemoteReads(remoteReads,
                transport), busyPollNanos(busyPollMicros));
        return new ClusterNode(cfg, System.out).run();
    }

    /** --busy-poll-us in nanoseconds (null: the transport's default), refused in one sentence outside 0..1 s. */
    static long busyPollNanos(Long micros) {
        if (micros == null) {
            return ClusterNode.Config.TRANSPORT_DEFAULT;
        }
        if (micros < 0 || micros > 1_000_000) {
            throw new UserError("--busy-poll-us takes microseconds in 0..1000000, not " + micros);
        }
        return micros * 1000;
    }

    /** The --remote-reads choice, refused in one sentence when it is not off/on/auto or asks tcp for them. */
    static dev.dvmm.dsm.transport.UcxTransportConfig.RemoteReads parseRemoteReads(String text, String transport) {
        dev.dvmm.dsm.transport.UcxTransportConfig.RemoteReads r;
        try {
            r = dev.dvmm.dsm.transport.UcxTransportConfig.RemoteReads.parse(text);
        } catch (IllegalArgumentException e) {
            throw new UserError("--remote-reads: " + e.getMessage());
        }
        if (r == dev.dvmm.dsm.transport.UcxTransportConfig.RemoteReads.ON && !transport.equals("ucx")) {
            throw new UserError("--remote-reads on needs --transport ucx: tcp has no one-sided reads");
        }
        return r;
    }
}
