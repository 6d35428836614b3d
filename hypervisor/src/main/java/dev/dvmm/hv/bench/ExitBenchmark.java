package dev.dvmm.hv.bench;

import dev.dvmm.boot.testguest.TestGuest;
import dev.dvmm.hv.machine.TestGuestSession;
import dev.dvmm.hv.vcpu.VcpuRunner;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * Port-I/O exit cost: the long-mode test guest's T_PIO_LOOP run by dvmm's Java vCPU loop and by a
 * minimal C program (compiled here with gcc from the bundled pio_exits.c) in the same invocation,
 * alternating rounds; medians, their ratio, and the Java loop's allocation per exit.
 */
public final class ExitBenchmark {
    public record Result(long exitsPerRound, int rounds, double javaNsPerExit, double cNsPerExit, double ratio,
                         double[] javaRounds, double[] cRounds, double javaAllocatedBytesPerExit) {
        public String toJson() {
            return String.format(Locale.ROOT, "{%n  \"benchmark\": \"exits\",%n  \"exits_per_round\": %d,%n"
                    + "  \"rounds\": %d,%n  \"java_ns_per_exit\": %.1f,%n  \"c_ns_per_exit\": %.1f,%n"
                    + "  \"ratio_java_over_c\": %.3f,%n  \"target_ratio\": 1.15,%n  \"java_rounds_ns_per_exit\": %s,%n"
                    + "  \"c_rounds_ns_per_exit\": %s,%n  \"java_loop_allocated_bytes_per_exit\": %.4f%n}%n",
                    exitsPerRound, rounds, javaNsPerExit, cNsPerExit, ratio, json(javaRounds), json(cRounds),
                    javaAllocatedBytesPerExit);
        }

        public String toTable() {
            return String.format(Locale.ROOT, "%-28s %12s%n%-28s %12.1f%n%-28s %12.1f%n%-28s %12.3f%n%-28s %12.4f%n",
                    "port-I/O exit round trip", "ns/exit", "dvmm (Java, FFM)", javaNsPerExit, "C, raw ioctls", cNsPerExit,
                    "ratio Java/C (target 1.15)", ratio, "Java bytes allocated/exit", javaAllocatedBytesPerExit);
        }

        private static String json(double[] v) {
            StringBuilder b = new StringBuilder("[");
            for (int i = 0; i < v.length; i++) {
                b.append(i == 0 ? "" : ", ").append(String.format(Locale.ROOT, "%.1f", v[i]));
            }
            return b.append(']').toString();
        }
    }

    private ExitBenchmark() {}

    public static Result run(long exits, int rounds, java.io.PrintStream progress) throws Exception {
        Path dir = Files.createTempDirectory("dvmm-bench-exits");
        try {
            Path guest = dir.resolve("longmode.bin");
            Files.write(guest, TestGuest.LONG_MODE.image());
            Path exe = compileBaseline(dir);
            progress.println("warming up the Java loop (" + exits / 5 + " exits)");
            javaRound(exits / 5);
            double[] j = new double[rounds];
            double[] c = new double[rounds];
            long allocated = 0;
            for (int r = 0; r < rounds; r++) {
                long[] jr = javaRound(exits);
                j[r] = (double) jr[0] / exits;
                allocated += jr[1];
                c[r] = cRound(exe, guest, exits);
                progress.printf(Locale.ROOT, "round %d/%d: java %.1f ns/exit, c %.1f ns/exit%n", r + 1, rounds, j[r], c[r]);
            }
            double jm = median(j);
            double cm = median(c);
            return new Result(exits, rounds, jm, cm, jm / cm, j, c, (double) allocated / (exits * (double) rounds));
        } finally {
            try (var w = Files.walk(dir)) {
                w.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    /** Returns {elapsed ns, bytes allocated by the vCPU loop}. */
    static long[] javaRound(long exits) throws Exception {
        try (TestGuestSession s = TestGuestSession.longMode(1, 16 << 20, TestGuest.T_PIO_LOOP, exits, null)) {
            VcpuRunner runner = s.machine().runner(0);
            int[] status = s.run(Duration.ofMinutes(5));
            if (status[0] != 0 || s.benchPort().writes() != exits) {
                throw new IllegalStateException("benchmark guest ended with status " + status[0] + " after "
                        + s.benchPort().writes() + " of " + exits + " exits");
            }
            runner.awaitStop(1, TimeUnit.SECONDS);
            // Like the C program: the run loop only, from the first KVM_RUN to the debug exit.
            return new long[] {runner.loopNanos(), runner.loopAllocatedBytes()};
        }
    }

    private static Path compileBaseline(Path dir) throws IOException, InterruptedException {
        Path src = dir.resolve("pio_exits.c");
        try (InputStream in = ExitBenchmark.class.getResourceAsStream("pio_exits.c")) {
            Files.write(src, in.readAllBytes());
        }
        Path exe = dir.resolve("pio_exits");
        String out = exec(List.of("gcc", "-O2", "-o", exe.toString(), src.toString()));
        if (!Files.isExecutable(exe)) {
            throw new IOException("could not compile the C baseline with gcc: " + out.strip());
        }
        return exe;
    }

    private static double cRound(Path exe, Path guest, long exits) throws IOException, InterruptedException {
        String out = exec(List.of(exe.toString(), guest.toString(), Long.toString(exits))).strip();
        // "exits=<n> ns=<t>"
        String[] parts = out.split("\\s+");
        if (parts.length != 2 || !parts[0].equals("exits=" + exits) || !parts[1].startsWith("ns=")) {
            throw new IOException("C baseline failed: " + out);
        }
        return Long.parseLong(parts[1].substring(3)) / (double) exits;
    }

    private static String exec(List<String> cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(new ArrayList<>(cmd)).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        p.waitFor();
        return out;
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
