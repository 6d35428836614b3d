package dev.dvmm.hv.cli;

import dev.dvmm.hv.bench.ExitBenchmark;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** Benchmarks: JSON results plus a table, baselines measured in the same run. */
@Command(name = "bench", description = "Benchmarks (JSON + table, baselines measured in the same run).",
        subcommands = {BenchCommand.Exits.class, BenchCommand.Fault.class, BenchCommand.Transport.class,
            BenchCommand.Boot.class})
final class BenchCommand implements Callable<Integer> {

    /** Prints a benchmark's table, writes its JSON to {@code json} when given; exit status 0. */
    static int report(PrintWriter out, String table, String jsonText, Path json) throws java.io.IOException {
        out.print(table);
        out.flush();
        if (json != null) {
            Files.writeString(json, jsonText);
            out.println("wrote " + json);
        }
        return 0;
    }
    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getOut());
        return 2;
    }

    @Command(name = "exits", description = "Port-I/O exit round trip: dvmm's Java loop vs a C loop with raw ioctls.")
    static final class Exits implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Option(names = "--json", description = "write results as JSON to this file")
        Path json;

        @Option(names = "--exits", defaultValue = "100000", description = "exits per round (default: ${DEFAULT-VALUE})")
        long exits;

        @Option(names = "--rounds", defaultValue = "5", description = "alternating rounds (default: ${DEFAULT-VALUE})")
        int rounds;

        @Override
        public Integer call() throws Exception {
            if (exits < 1000 || rounds < 1) {
                throw new UserError("--exits must be at least 1000 and --rounds at least 1");
            }
            PrintWriter out = spec.commandLine().getOut();
            ExitBenchmark.Result r = ExitBenchmark.run(exits, rounds, System.err);
            return report(out, r.toTable(), r.toJson(), json);
        }
    }

    @Command(name = "fault", description = "DSM fault latency between 2 or 4 nodes vs a local uffd fault and a 4 KiB "
            + "round trip (with 4 nodes also faults where requester, home and owner differ), the stages of a typical "
            + "fault, and the page ping-pong rate with and without the hold-time guard.")
    static final class Fault implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Option(names = "--json", description = "write results as JSON to this file")
        Path json;

        @Option(names = "--nodes", defaultValue = "2", description = "nodes in the loopback cluster: 2 or 4 "
                + "(default: ${DEFAULT-VALUE})")
        int nodes;

        @Option(names = "--pages", defaultValue = "4000", description = "faults per kind (default: ${DEFAULT-VALUE})")
        int pages;

        @Option(names = "--hold-us", defaultValue = "200", description = "hold time for the guarded ping-pong run")
        long holdMicros;

        @Option(names = "--busy-poll-us", defaultValue = "0", description = "transport thread busy-polls this long "
                + "while a fault awaits a peer, serving new faults meanwhile (default: ${DEFAULT-VALUE}: off)")
        long busyPollMicros;

        @Option(names = "--transport", defaultValue = "tcp", description = "tcp or ucx (default: ${DEFAULT-VALUE})")
        String transport;

        @Option(names = "--one-sided-reads", description = "with --transport ucx and --nodes 4: reads of clean pages "
                + "whose home holds no copy fetch the page from the owner's memory (RDMA get; emulated over TCP "
                + "where there is no RDMA device)")
        boolean oneSidedReads;

        @Option(names = "--node-processes", description = "run each node in a JVM process of its own (this process "
                + "drives them), as a deployment does, each confined to a CPU of its own where there are enough, the "
                + "4 KiB round trip and ping-pong between two of them and the local baselines in one of them "
                + "(the default when every node can have a CPU of its own)")
        boolean nodeProcesses;

        @Option(names = "--rounds", defaultValue = "5", description = "rounds of faults, each followed by both "
                + "baselines; the ratio is the median of the rounds' own ratios (default: ${DEFAULT-VALUE})")
        int rounds;

        @Option(names = "--in-process", description = "run all nodes in this process instead (the default when there "
                + "are more nodes than CPUs); every write-protect or punch of a page then also interrupts the CPUs "
                + "running the other nodes' threads (a TLB shootdown), which separate machines do not pay")
        boolean inProcess;

        @Override
        public Integer call() throws Exception {
            if (oneSidedReads && (!transport.equals("ucx") || nodes != 4)) {
                throw new UserError("--one-sided-reads needs --transport ucx and --nodes 4 (with 2 nodes no read "
                        + "can be one-sided: the home or the reader holds every copy)");
            }
            if (nodes != 2 && nodes != 4) {
                throw new UserError("--nodes must be 2 or 4, not " + nodes);
            }
            if (pages < 100) {
                throw new UserError("--pages must be at least 100");
            }
            if (!transport.equals("tcp") && !transport.equals("ucx")) {
                throw new UserError("unknown transport '" + transport + "': use tcp or ucx");
            }
            if (holdMicros < 0 || busyPollMicros < 0) {
                throw new UserError("--hold-us and --busy-poll-us must not be negative");
            }
            if (rounds < 1 || rounds > 20) {
                throw new UserError("--rounds must be 1..20, not " + rounds);
            }
            if (nodeProcesses && inProcess) {
                throw new UserError("--node-processes and --in-process exclude each other");
            }
            boolean processes = nodeProcesses
                    || !inProcess && dev.dvmm.dsm.bench.FaultBenchmark.nodeProcessesByDefault(nodes);
            PrintWriter out = spec.commandLine().getOut();
            dev.dvmm.dsm.bench.FaultBenchmark.Result r = dev.dvmm.dsm.bench.FaultBenchmark.run(nodes, pages, holdMicros,
                    busyPollMicros, transport, oneSidedReads, processes, rounds, System.err);
            return report(out, r.toTable(), r.toJson(), json);
        }
    }

    @Command(name = "transport", description = "4 KiB request/reply round trip (p50/p99) and pipelined rate of the tcp "
            + "and ucx transports, with ucx_perftest tag_lat 4 KiB as the floor, same run, on 127.0.0.1.")
    static final class Transport implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Option(names = "--json", description = "write results as JSON to this file")
        Path json;

        @Option(names = "--iterations", defaultValue = "20000",
                description = "round trips per transport, also pipelined requests (default: ${DEFAULT-VALUE})")
        int iterations;

        @Option(names = "--warmup", defaultValue = "5000", description = "warm-up round trips (default: ${DEFAULT-VALUE})")
        int warmup;

        @Option(names = "--window", defaultValue = "16", description = "pipelined requests in flight (default: ${DEFAULT-VALUE})")
        int window;

        @Option(names = "--rounds", defaultValue = "5", description = "rounds of tcp, ucx and ucx_perftest in turn; "
                + "each ratio is the median of the rounds' own ratios (default: ${DEFAULT-VALUE})")
        int rounds;

        @Option(names = "--ucx-busy-poll-us", split = ",", paramLabel = "US[,US...]",
                description = "also measure ucx with these progress-thread busy-poll times (microseconds)")
        long[] busyPollMicros = new long[0];

        @Override
        public Integer call() throws Exception {
            if (iterations < 1000 || warmup < 0 || window < 1 || window > 1024 || rounds < 1 || rounds > 100) {
                throw new UserError("--iterations must be at least 1000, --warmup at least 0, --window 1..1024,"
                        + " --rounds 1..100");
            }
            for (long micros : busyPollMicros) {
                if (micros < 0 || micros > 1_000_000) {
                    throw new UserError("--ucx-busy-poll-us takes microseconds in 0..1000000, not " + micros);
                }
            }
            PrintWriter out = spec.commandLine().getOut();
            dev.dvmm.dsm.bench.TransportComparison.Result r =
                    dev.dvmm.dsm.bench.TransportComparison.run(iterations, warmup, window, busyPollMicros, rounds,
                            System.err);
            return report(out, r.toTable(), r.toJson(), json);
        }
    }

    @Command(name = "boot", description = "Linux boot time to init and to power off: dvmm vs qemu -enable-kvm, same "
            + "kernel and initramfs, same run (inside the lab when this host's KVM cannot run Linux).")
    static final class Boot implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Option(names = "--json", description = "write results as JSON to this file (on the host, also from the lab)")
        Path json;

        @Option(names = "--cpus", defaultValue = "2", description = "vCPUs")
        int cpus;

        @Option(names = "--rounds", defaultValue = "1", description = "boots of each VMM, alternating (median "
                + "reported; default: ${DEFAULT-VALUE})")
        int rounds;

        @Override
        public Integer call() throws Exception {
            PrintWriter out = spec.commandLine().getOut();
            if (rounds < 1 || rounds > 20 || cpus < 1 || cpus > 64) {
                throw new UserError("--rounds must be 1..20 and --cpus 1..64");
            }
            boolean inLab = "1".equals(System.getenv("DVMM_LAB"));
            if (!inLab && dev.dvmm.hv.lab.HostMode.detect().mode() != dev.dvmm.hv.lab.HostMode.HARDWARE_KVM) {
                out.println("dvmm: running the boot benchmark inside the lab (this host's KVM cannot run Linux)");
                out.flush();
                // Prepare the image on the host; the JSON comes back through the console.
                RunCommand.prepareDefaultImage(out);
                // The lab cannot write host files: its output (with the JSON block) is captured on the way out.
                java.io.ByteArrayOutputStream captured = new java.io.ByteArrayOutputStream();
                java.io.PrintStream original = System.out;
                int status;
                System.setOut(new java.io.PrintStream(new java.io.OutputStream() {
                    @Override
                    public void write(int b) {
                        original.write(b);
                        captured.write(b);
                    }

                    @Override
                    public void write(byte[] b, int off, int len) {
                        original.write(b, off, len);
                        captured.write(b, off, len);
                    }

                    @Override
                    public void flush() {
                        original.flush();
                    }
                }, true, java.nio.charset.StandardCharsets.UTF_8));
                try {
                    // A lab VM that freezes (seen: the whole VM stopped, its watchdogs too) is ended from here.
                    status = Main.run("lab", "--cpus", "1", "--memory", "3G", "--timeout",
                            Long.toString(600 + rounds * 2L * 300), // two boots a round, under a minute each here
                            "--", "bench", "boot", "--cpus",
                            Integer.toString(cpus), "--rounds", Integer.toString(rounds));
                } finally {
                    System.setOut(original);
                }
                if (json != null) {
                    String text = captured.toString(java.nio.charset.StandardCharsets.UTF_8);
                    int start = text.indexOf("{" + System.lineSeparator() + "  \"benchmark\": \"boot\"");
                    int end = start < 0 ? -1 : text.indexOf(System.lineSeparator() + "}", start);
                    if (status != 0 || end < 0) {
                        throw new UserError("the boot benchmark in the lab gave no result (exit status " + status + ")");
                    }
                    Files.writeString(json, text.substring(start, end + 1 + System.lineSeparator().length()) + System.lineSeparator());
                    out.println("wrote " + json);
                }
                return status;
            }
            Path kernel = RunCommand.prepareDefaultImage(out);
            Path initrd = dev.dvmm.boot.image.GuestInitramfs.build(RunCommand.cacheRoot());
            String cmdline = "console=ttyS0 panic=-1 no_timer_check tsc=reliable dvmm.run=reduction";
            dev.dvmm.hv.bench.BootBenchmark.Result r = dev.dvmm.hv.bench.BootBenchmark.run(kernel, initrd, cmdline, cpus, 512L << 20,
                    rounds, line -> {
                        out.println("dvmm: " + line);
                        out.flush();
                    });
            // The JSON goes to the console as well: from inside the lab that is how it reaches the host.
            return report(out, r.toTable() + r.toJson(), r.toJson(), json);
        }
    }
}
