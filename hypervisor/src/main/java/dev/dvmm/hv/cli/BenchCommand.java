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
            out.print(r.toTable());
            out.flush();
            if (json != null) {
                Files.writeString(json, r.toJson());
                out.println("wrote " + json);
            }
            return 0;
        }
    }

    @Command(name = "fault", description = "DSM fault latency between 2 nodes vs a local uffd fault and a 4 KiB round "
            + "trip, and the page ping-pong rate with and without the hold-time guard.")
    static final class Fault implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Option(names = "--json", description = "write results as JSON to this file")
        Path json;

        @Option(names = "--nodes", defaultValue = "2", description = "nodes (only 2 is measured today)")
        int nodes;

        @Option(names = "--pages", defaultValue = "4000", description = "faults per kind (default: ${DEFAULT-VALUE})")
        int pages;

        @Option(names = "--hold-us", defaultValue = "200", description = "hold time for the guarded ping-pong run")
        long holdMicros;

        @Option(names = "--transport", defaultValue = "tcp", description = "tcp or ucx (default: ${DEFAULT-VALUE})")
        String transport;

        @Override
        public Integer call() throws Exception {
            if (nodes != 2) {
                throw new UserError("bench fault measures 2 nodes; --nodes " + nodes + " is not supported yet");
            }
            if (pages < 100) {
                throw new UserError("--pages must be at least 100");
            }
            if (!transport.equals("tcp") && !transport.equals("ucx")) {
                throw new UserError("unknown transport '" + transport + "': use tcp or ucx");
            }
            PrintWriter out = spec.commandLine().getOut();
            dev.dvmm.dsm.bench.FaultBenchmark.Result r = dev.dvmm.dsm.bench.FaultBenchmark.run(pages, holdMicros, transport,
                    System.err);
            out.print(r.toTable());
            out.flush();
            if (json != null) {
                Files.writeString(json, r.toJson());
                out.println("wrote " + json);
            }
            return 0;
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

        @Option(names = "--ucx-busy-poll-us", split = ",", paramLabel = "US[,US...]",
                description = "also measure ucx with these progress-thread busy-poll times (microseconds)")
        long[] busyPollMicros = new long[0];

        @Override
        public Integer call() throws Exception {
            if (iterations < 1000 || warmup < 0 || window < 1 || window > 1024) {
                throw new UserError("--iterations must be at least 1000, --warmup at least 0, --window 1..1024");
            }
            for (long micros : busyPollMicros) {
                if (micros < 0 || micros > 1_000_000) {
                    throw new UserError("--ucx-busy-poll-us takes microseconds in 0..1000000, not " + micros);
                }
            }
            PrintWriter out = spec.commandLine().getOut();
            dev.dvmm.dsm.bench.TransportComparison.Result r =
                    dev.dvmm.dsm.bench.TransportComparison.run(iterations, warmup, window, busyPollMicros, System.err);
            out.print(r.toTable());
            out.flush();
            if (json != null) {
                Files.writeString(json, r.toJson());
                out.println("wrote " + json);
            }
            return 0;
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

        @Override
        public Integer call() throws Exception {
            PrintWriter out = spec.commandLine().getOut();
            boolean inLab = "1".equals(System.getenv("DVMM_LAB"));
            if (!inLab && dev.dvmm.hv.lab.HostMode.detect().mode() != dev.dvmm.hv.lab.HostMode.HARDWARE_KVM) {
                out.println("dvmm: running the boot benchmark inside the lab (this host's KVM cannot run Linux)");
                out.flush();
                // Prepare the image on the host; the JSON comes back through the console.
                RunCommand.prepareDefaultImage(out);
                return Main.run("lab", "--cpus", "1", "--memory", "3G", "--", "bench", "boot", "--cpus", Integer.toString(cpus));
            }
            Path kernel = RunCommand.prepareDefaultImage(out);
            Path initrd = dev.dvmm.boot.image.GuestInitramfs.build(RunCommand.cacheRoot());
            String cmdline = "console=ttyS0 panic=-1 no_timer_check tsc=reliable dvmm.run=reduction";
            dev.dvmm.hv.bench.BootBenchmark.Result r = dev.dvmm.hv.bench.BootBenchmark.run(kernel, initrd, cmdline, cpus, 512L << 20);
            out.print(r.toTable());
            out.print(r.toJson());
            out.flush();
            if (json != null) {
                Files.writeString(json, r.toJson());
                out.println("wrote " + json);
            }
            return 0;
        }
    }
}
