package dev.dvmm.hv.bench;

import dev.dvmm.boot.kernel.KernelFile;
import dev.dvmm.boot.linux.KernelCommandLine;
import dev.dvmm.boot.smp.SmpEnumeration;
import dev.dvmm.hv.machine.LinuxGuestSession;
import dev.dvmm.hv.machine.PcPlatform;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
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

    private static Times dvmm(Path kernel, Path initrd, String cmdline, int cpus, long memory, long[] exits)
            throws Exception {
        long t0 = System.nanoTime();
        long[] init = {0};
        OutputStream watch = new OutputStream() {
            private final StringBuilder line = new StringBuilder();

            @Override
            public void write(int b) {
                if (b == '\n') {
                    if (init[0] == 0 && line.indexOf("DVMM-GUEST") >= 0) {
                        init[0] = System.nanoTime();
                    }
                    line.setLength(0);
                } else {
                    line.append((char) b);
                }
            }
        };
        try (KernelFile k = KernelFile.open(kernel); KernelFile i = KernelFile.open(initrd);
             LinuxGuestSession s = LinuxGuestSession.boot(cpus, memory, k, i, new KernelCommandLine().addAll(cmdline),
                     SmpEnumeration.BOTH, watch)) {
            s.run(Duration.ofMinutes(15));
            for (var r : s.machine().runners()) {
                exits[0] += r.exits();
            }
            if (s.platform().ending() != PcPlatform.Ending.POWER_OFF || init[0] == 0) {
                throw new IllegalStateException("dvmm boot did not reach init and power off (" + s.platform().ending() + ")");
            }
        }
        return new Times((init[0] - t0) / 1e9, (System.nanoTime() - t0) / 1e9);
    }

    private static Times qemu(Path kernel, Path initrd, String cmdline, int cpus, long memory) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of("qemu-system-x86_64", "-enable-kvm", "-cpu", "host", "-smp",
                Integer.toString(cpus), "-m", (memory >> 20) + "M", "-kernel", kernel.toString(), "-initrd", initrd.toString(),
                "-append", cmdline, "-nographic", "-nodefaults", "-serial", "stdio", "-no-reboot", "-monitor", "none"));
        long t0 = System.nanoTime();
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getOutputStream().close();
        long init = 0;
        try (BufferedReader in = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.ISO_8859_1))) {
            String line;
            while ((line = in.readLine()) != null) {
                if (init == 0 && line.contains("DVMM-GUEST")) {
                    init = System.nanoTime();
                }
            }
        }
        if (!p.waitFor(15, TimeUnit.MINUTES) || init == 0) {
            p.destroyForcibly();
            throw new IllegalStateException("qemu did not reach init and exit");
        }
        return new Times((init - t0) / 1e9, (System.nanoTime() - t0) / 1e9);
    }
}
