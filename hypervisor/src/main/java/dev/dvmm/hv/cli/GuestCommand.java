package dev.dvmm.hv.cli;

import dev.dvmm.boot.testguest.TestGuest;
import dev.dvmm.hv.machine.TestGuestSession;
import java.io.PrintWriter;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** Runs one of the built-in test guests on this node's KVM. */
@Command(name = "guest", description = "Run a built-in test guest (real mode or 64-bit) on /dev/kvm.")
final class GuestCommand implements Callable<Integer> {
    enum Program { realmode, hello, counters, exceptions, pattern, handoff }

    @Spec
    CommandSpec spec;

    @Option(names = "--program", defaultValue = "counters",
            description = "realmode, hello, counters, exceptions, pattern or handoff (default: ${DEFAULT-VALUE})")
    Program program;

    @Option(names = "--nodes", defaultValue = "1",
            description = "node processes to spread the guest over, on this machine (default: ${DEFAULT-VALUE})")
    int nodes;

    @Option(names = "--hold-us", defaultValue = "0", description = "with --nodes: minimum page hold time, us")
    long holdMicros;

    @Option(names = "--stats-json", description = "with --nodes: write every node's DSM statistics as JSON")
    java.nio.file.Path statsJson;

    @Option(names = "--transport", defaultValue = "tcp", description = "with --nodes: tcp or ucx (default: ${DEFAULT-VALUE})")
    String transport;

    @Option(names = "--remote-reads", defaultValue = "auto", description = "with --nodes and ucx: one-sided page reads: "
            + "off, on (emulated over TCP where there is no RDMA device) or auto (default: ${DEFAULT-VALUE})")
    String remoteReads;

    @Option(names = "--busy-poll-us", description = "with --nodes: how long each node's transport thread polls "
            + "awake after input before it sleeps; 0 where every core runs a vCPU (default: the transport's, 50 for "
            + "tcp, 100 for ucx)")
    Long busyPollMicros;

    @Option(names = "--cpus", defaultValue = "2", description = "vCPUs (default: ${DEFAULT-VALUE})")
    int cpus;

    @Option(names = "--memory", defaultValue = "64M", converter = ByteSize.GuestRam.class,
            description = "guest RAM, whole 4 KiB pages (default: ${DEFAULT-VALUE})")
    long memory;

    @Option(names = "--iterations", description = "loop count for counters/pattern/handoff "
            + "(default: 1000000 on one node, 2000 across nodes)")
    Long iterations;

    @Option(names = "--timeout", defaultValue = "120", description = "seconds before the guest is stopped")
    long timeoutSeconds;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        if (cpus < 1 || cpus > 64) {
            throw new UserError("--cpus must be between 1 and 64, got " + cpus);
        }
        if (iterations == null) {
            iterations = nodes > 1 ? 2000L : 1_000_000L;
        }
        if (nodes > 1) {
            return runCluster();
        }
        if (iterations < 1) {
            throw new UserError("--iterations must be positive");
        }
        if (program == Program.pattern && iterations * 8 * cpus + TestGuest.PATTERN > memory) {
            throw new UserError("--iterations " + iterations + " x " + cpus + " vCPUs does not fit in " + memory
                    + " bytes of guest memory");
        }
        Duration timeout = Duration.ofSeconds(timeoutSeconds);
        long t0 = System.nanoTime();
        try (TestGuestSession s = open()) {
            out.printf("dvmm: %s guest on %d vCPU(s), %d MiB%n", program, s.machine().runners().size(), memory >> 20);
            out.flush();
            int[] status = s.run(timeout);
            double secs = (System.nanoTime() - t0) / 1e9;
            out.printf(Locale.ROOT, "dvmm: guest finished in %.2f s, exit status per vCPU %s%n", secs, Arrays.toString(status));
            return report(out, s, status);
        }
    }

    static dev.dvmm.hv.node.TestProgram clusterProgram(String name) {
        try {
            return dev.dvmm.hv.node.TestProgram.valueOf(name.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new UserError("program '" + name + "' cannot run across nodes; use hello, counters, pattern or handoff");
        }
    }

    private int runCluster() throws Exception {
        if (nodes > 64) {
            throw new UserError("--nodes must be at most 64");
        }
        if (cpus < nodes) {
            throw new UserError("--cpus " + cpus + " is fewer than --nodes " + nodes + ": every node runs at least one vCPU");
        }
        clusterProgram(program.name());
        NodeCommand.parseRemoteReads(remoteReads, transport);
        NodeCommand.busyPollNanos(busyPollMicros);
        PrintWriter out = spec.commandLine().getOut();
        out.printf("dvmm: %s guest on %d vCPUs across %d node processes, %d MiB shared through the DSM%n", program,
                cpus, nodes, memory >> 20);
        out.flush();
        java.util.List<String> args = new java.util.ArrayList<>(java.util.List.of("--cpus", Integer.toString(cpus),
                "--memory", Long.toString(memory), "--program", program.name(), "--iterations", Long.toString(iterations),
                "--hold-us", Long.toString(holdMicros), "--timeout", Long.toString(timeoutSeconds), "--transport",
                transport, "--remote-reads", remoteReads));
        if (busyPollMicros != null) {
            args.add("--busy-poll-us");
            args.add(Long.toString(busyPollMicros));
        }
        int rc = dev.dvmm.hv.node.LocalCluster.run(nodes, args, Duration.ofSeconds(timeoutSeconds), statsJson, System.out);
        System.out.flush();
        return rc;
    }

    private TestGuestSession open() {
        System.out.flush();
        return switch (program) {
            case realmode -> TestGuestSession.realMode(memory, System.out);
            case hello -> TestGuestSession.longMode(cpus, memory, TestGuest.T_HELLO, 0, System.out);
            case counters -> TestGuestSession.longMode(cpus, memory, TestGuest.T_COUNTERS, iterations, System.out);
            case exceptions -> TestGuestSession.longMode(cpus, memory, TestGuest.T_EXCEPTIONS, 0, System.out);
            case pattern -> TestGuestSession.longMode(cpus, memory, TestGuest.T_PATTERN, iterations, System.out);
            case handoff -> TestGuestSession.longMode(cpus, memory, TestGuest.T_HANDOFF, iterations, System.out);
        };
    }

    private int report(PrintWriter out, TestGuestSession s, int[] status) {
        MemorySegment m = s.machine().memory().aliasMapping();
        switch (program) {
            case counters -> {
                long expect = iterations * cpus;
                long atomic = m.get(ValueLayout.JAVA_LONG, TestGuest.DATA);
                long locked = m.get(ValueLayout.JAVA_LONG, TestGuest.DATA + 0x80);
                out.printf("lock xadd counter %d, spinlock counter %d, expected %d: %s%n", atomic, locked, expect,
                        atomic == expect && locked == expect ? "ok" : "WRONG");
                return atomic == expect && locked == expect ? 0 : 1;
            }
            case realmode -> {
                return status[0] == 5050 ? 0 : 1;
            }
            case hello -> {
                return Arrays.stream(status).allMatch(x -> x == 0x42) ? 0 : 1;
            }
            case exceptions -> {
                boolean ok = true;
                for (int v = 0; v < status.length; v++) {
                    long r = TestGuest.RESULTS + v * TestGuest.RESULTS_PER_VCPU;
                    boolean vok = m.get(ValueLayout.JAVA_LONG, r) == 6 && m.get(ValueLayout.JAVA_LONG, r + 24) == 0
                            && m.get(ValueLayout.JAVA_LONG, r + 48) == 3;
                    out.printf("vCPU %d: #UD, #DE and #BP handled by the guest IDT: %s%n", v, vok ? "ok" : "WRONG");
                    ok &= vok;
                }
                return ok ? 0 : 1;
            }
            default -> {
                return Arrays.stream(status).allMatch(x -> x == 0) ? 0 : 1;
            }
        }
    }
}
