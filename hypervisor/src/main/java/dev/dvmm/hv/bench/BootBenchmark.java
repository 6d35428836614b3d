package dev.dvmm.hv.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * Linux boot time, dvmm next to QEMU with KVM on the same kernel, initramfs and command line, in the same
 * run: time from VMM start to the guest's {@code DVMM-GUEST} init line and to power off.
 */
public final class BootBenchmark {
    public record Times(double initSeconds, double poweroffSeconds) {}

    public record Result(int cpus, long memoryMiB, int rounds, Times dvmm, Times qemu, long dvmmExits) {
        public String toJson() {
            return String.format(Locale.ROOT, "{%n  \"benchmark\": \"boot\",%n  \"cpus\": %d,%n  \"memory_mib\": %d,%n"
                    + "  \"rounds\": %d,%n  \"statistic\": \"median\",%n"
                    + "  \"dvmm\": {\"init_s\": %.3f, \"poweroff_s\": %.3f, \"exits\": %d},%n"
                    + "  \"qemu_kvm\": {\"init_s\": %.3f, \"poweroff_s\": %.3f},%n"
                    + "  \"ratio_init\": %.3f,%n  \"ratio_poweroff\": %.3f%n}%n", cpus, memoryMiB, rounds,
                    dvmm.initSeconds, dvmm.poweroffSeconds, dvmmExits, qemu.initSeconds, qemu.poweroffSeconds,
                    dvmm.initSeconds / qemu.initSeconds, dvmm.poweroffSeconds / qemu.poweroffSeconds);
        }

        public String toTable() {
            return String.format(Locale.ROOT, "%-22s %10s %12s%n%-22s %10.2f %12.2f%n%-22s %10.2f %12.2f%n%-22s %10.3f %12.3f%n",
                    "Linux boot (s)", "to init", "to poweroff", "dvmm", dvmm.initSeconds, dvmm.poweroffSeconds,
                    "qemu -enable-kvm", qemu.initSeconds, qemu.poweroffSeconds, "ratio dvmm/qemu",
                    dvmm.initSeconds / qemu.initSeconds, dvmm.poweroffSeconds / qemu.poweroffSeconds);
        }
    }

    /** Far above a boot here (20-60 s even inside the lab); a boot that takes longer has hung. */
    static final long BOOT_TIMEOUT_SECONDS = 600;

    private BootBenchmark() {}

    /**
     * Boots each VMM {@code rounds} times, alternating which goes first (dvmm-qemu, qemu-dvmm, ...) so
     * that drift in the host's load falls on both; reports the medians. {@code progress} hears a line per boot.
     */
    public static Result run(Path kernel, Path initrd, String cmdline, int cpus, long memory, int rounds,
                             Consumer<String> progress) throws Exception {
        List<Times> d = new ArrayList<>();
        List<Times> q = new ArrayList<>();
        long[] exits = new long[rounds];
        for (int r = 0; r < rounds; r++) {
            for (int k = 0; k < 2; k++) {
                boolean dvmmTurn = (k == 0) == (r % 2 == 0);
                Times t;
                if (dvmmTurn) {
                    long[] e = new long[1];
                    t = dvmm(kernel, initrd, cmdline, cpus, memory, e);
                    exits[r] = e[0];
                    d.add(t);
                } else {
                    t = qemu(kernel, initrd, cmdline, cpus, memory);
                    q.add(t);
                }
                progress.accept(String.format(Locale.ROOT, "round %d/%d: %-4s init %.2f s, power off %.2f s%s", r + 1,
                        rounds, dvmmTurn ? "dvmm" : "qemu", t.initSeconds, t.poweroffSeconds,
                        dvmmTurn ? String.format(Locale.ROOT, ", %,d exits", exits[r]) : ""));
            }
        }
        java.util.Arrays.sort(exits);
        return new Result(cpus, memory >> 20, rounds, median(d), median(q), exits[rounds / 2]);
    }

    private static Times median(List<Times> ts) {
        double[] init = ts.stream().mapToDouble(Times::initSeconds).sorted().toArray();
        double[] off = ts.stream().mapToDouble(Times::poweroffSeconds).sorted().toArray();
        int n = init.length;
        return new Times(n % 2 == 1 ? init[n / 2] : (init[n / 2 - 1] + init[n / 2]) / 2,
                n % 2 == 1 ? off[n / 2] : (off[n / 2 - 1] + off[n / 2]) / 2);
    }

    /**
     * dvmm in a fresh JVM (this one's java, class path and flags), as a user starts it: the time includes
     * JVM start-up, as QEMU's includes its process start.
     */
    private static Times dvmm(Path kernel, Path initrd, String cmdline, int cpus, long memory, long[] exits)
            throws IOException, InterruptedException {
        String javaBin = ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        List<String> cmd = new ArrayList<>(List.of(javaBin));
        cmd.addAll(java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments());
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), "dev.dvmm.hv.cli.Main", "run", "--lab", "never",
                "--cpus", Integer.toString(cpus), "--memory", Long.toString(memory), "--kernel", kernel.toString(),
                "--initrd", initrd.toString(), "--cmdline", cmdline, "--quiet-report", "0"));
        Timed t = timed(cmd, "dvmm");
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("guest ended \\([a-z ]+\\) after [0-9.]+ s, ([0-9,]+) exits").matcher(t.output);
        if (m.find()) {
            exits[0] = Long.parseLong(m.group(1).replace(",", ""));
        }
        return t.times;
    }

    private record Timed(Times times, String output) {}

    /** Runs {@code cmd} to its end; times from start to the guest's init line and to the process's exit. */
    private static Timed timed(List<String> cmd, String what) throws IOException, InterruptedException {
        long t0 = System.nanoTime();
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getOutputStream().close();
        // A boot that hangs would block the read loop below forever: a watchdog ends it.
        Thread watchdog = Thread.ofPlatform().daemon().name("boot-watchdog").start(() -> {
            try {
                if (!p.waitFor(BOOT_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                }
            } catch (InterruptedException e) {
                p.destroyForcibly();
            }
        });
        long init = 0;
        StringBuilder out = new StringBuilder();
        try (BufferedReader in = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.ISO_8859_1))) {
            String line;
            while ((line = in.readLine()) != null) {
                if (init == 0 && line.contains("DVMM-GUEST")) {
                    init = System.nanoTime();
                }
                if (out.length() < (1 << 20)) {
                    out.append(line).append('\n');
                }
            }
        }
        boolean ended = p.waitFor(BOOT_TIMEOUT_SECONDS, TimeUnit.SECONDS);
        watchdog.interrupt();
        if (!ended || init == 0 || p.exitValue() != 0) {
            p.destroyForcibly();
            String tail = out.length() > 3000 ? out.substring(out.length() - 3000) : out.toString();
            throw new IllegalStateException(what + " did not reach init and power off within " + BOOT_TIMEOUT_SECONDS
                    + " s; its last output:\n" + tail);
        }
        return new Timed(new Times((init - t0) / 1e9, (System.nanoTime() - t0) / 1e9), out.toString());
    }

    private static Times qemu(Path kernel, Path initrd, String cmdline, int cpus, long memory) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of("qemu-system-x86_64", "-enable-kvm", "-cpu", "host", "-smp",
                Integer.toString(cpus), "-m", (memory >> 20) + "M", "-kernel", kernel.toString(), "-initrd", initrd.toString(),
                "-append", cmdline, "-nographic", "-nodefaults", "-serial", "stdio", "-no-reboot", "-monitor", "none"));
        return timed(cmd, "qemu").times;
    }
}
