package dev.dvmm.hv.cli;

import dev.dvmm.boot.BootException;
import dev.dvmm.boot.image.GuestInitramfs;
import dev.dvmm.boot.kernel.KernelFile;
import dev.dvmm.boot.linux.KernelCommandLine;
import dev.dvmm.boot.smp.SmpEnumeration;
import dev.dvmm.hv.lab.HostMode;
import dev.dvmm.hv.machine.LinuxGuestSession;
import dev.dvmm.hv.machine.PcPlatform;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** Boots a Linux guest on this node (or inside the lab when this host's KVM cannot run one). */
@Command(name = "run", description = "Boot a Linux guest: the default image (a minimal kernel built from Debian's "
        + "linux-source-6.1 + busybox + OpenMP programs) or --kernel/--initrd.")
final class RunCommand implements Callable<Integer> {
    enum LabMode { auto, always, never }

    @Spec
    CommandSpec spec;

    @Option(names = "--cpus", defaultValue = "2", description = "vCPUs (default: ${DEFAULT-VALUE})")
    int cpus;

    @Option(names = "--memory", defaultValue = "512M", converter = ByteSize.GuestRam.class,
            description = "guest RAM (default: ${DEFAULT-VALUE})")
    long memory;

    @Option(names = "--image", defaultValue = "default", description = "default (minimal kernel built from Debian's "
            + "linux-source-6.1) or debian (Debian's stock linux-image-amd64, unmodified); both with the same initramfs")
    String image;

    @Option(names = "--kernel", description = "kernel image (bzImage or vmlinux) instead of --image")
    Path kernel;

    @Option(names = "--initrd", description = "initramfs (cpio); default with the default image: its initramfs")
    Path initrd;

    @Option(names = "--append", defaultValue = "", description = "extra kernel command line")
    String append;

    @Option(names = "--cmdline", description = "the whole kernel command line, instead of dvmm's (console, "
            + "earlyprintk, timer options, dvmm.run=) and --append")
    String exactCmdline;

    @Option(names = "--programs", defaultValue = "reduction,stencil,matmul",
            description = "OpenMP programs the default image runs (dvmm.run=)")
    String programs;

    @Option(names = "--lab", defaultValue = "auto", description = "auto, always or never: run inside the lab "
            + "(QEMU with emulated SVM) when this host's KVM cannot run Linux (default: ${DEFAULT-VALUE})")
    LabMode lab;

    @Option(names = "--timeout", defaultValue = "900", description = "seconds")
    long timeoutSeconds;

    @Option(names = "--quiet-report", defaultValue = "5", paramLabel = "SECONDS", description = "when the console "
            + "is silent this long, print where each vCPU is (kernel symbol) and its exit rate; 0: never "
            + "(default: ${DEFAULT-VALUE})")
    long quietSeconds;

    private Path bootedKernel;

    @Option(names = "--exit-stats", description = "print where vCPU time went at the end: exits by reason, port "
            + "and LAPIC register; time in KVM_RUN, halted and in the VMM")
    boolean exitStats;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        boolean inLab = "1".equals(System.getenv("DVMM_LAB"));
        boolean useLab = !inLab && (lab == LabMode.always
                || (lab == LabMode.auto && HostMode.detect().mode() != HostMode.HARDWARE_KVM));
        if (useLab) {
            return runInLab(out);
        }
        if (cpus < 1 || cpus > 64) {
            throw new UserError("--cpus must be between 1 and 64");
        }
        KernelFile kernelFile;
        KernelFile initrdFile = null;
        KernelCommandLine cmdline = new KernelCommandLine().add("console", "ttyS0").add("earlyprintk", "serial")
                .add("panic", -1).add("no_timer_check").add("tsc=reliable");
        checkImage(image);
        if (kernel == null) {
            Path k = imageKernel(image, out);
            bootedKernel = k;
            kernelFile = KernelFile.open(k);
            initrdFile = KernelFile.open(GuestInitramfs.build(cacheRoot()));
            cmdline.add("dvmm.run", programs);
        } else {
            kernelFile = KernelFile.open(kernel);
            if (initrd != null) {
                initrdFile = KernelFile.open(initrd);
            }
        }
        if (!append.isBlank()) {
            cmdline.addAll(append);
        }
        if (exactCmdline != null) {
            cmdline = new KernelCommandLine().addAll(exactCmdline);
        }
        out.printf("dvmm: booting %s on %d vCPU(s), %d MiB%n", kernel == null ? "the " + image + " image" : kernel, cpus,
                memory >> 20);
        out.flush();
        long t0 = System.nanoTime();
        try (LinuxGuestSession s = LinuxGuestSession.boot(cpus, memory, kernelFile, initrdFile, cmdline,
                SmpEnumeration.BOTH, System.out)) {
            if (exitStats) {
                s.profileExits();
            }
            Path kernelPath = kernel != null ? kernel : bootedKernel;
            var symbols = dev.dvmm.boot.kernel.KernelSymbols.besideKernel(kernelPath).orElse(null);
            var progress = new dev.dvmm.hv.machine.QuietConsoleReporter(s.platform()::lastConsoleNanos, s.machine(), symbols, System.out,
                    quietSeconds * 1_000_000_000L);
            int status = s.run(Duration.ofSeconds(timeoutSeconds), quietSeconds > 0 ? progress : null);
            System.out.flush();
            out.print(s.exitReport());
            PcPlatform.Ending how = s.platform().ending();
            long exits = 0;
            for (var r : s.machine().runners()) {
                exits += r.exits();
            }
            out.printf(Locale.ROOT, "dvmm: guest ended (%s) after %.1f s, %,d exits%n",
                    how.name().toLowerCase(Locale.ROOT).replace('_', ' '), (System.nanoTime() - t0) / 1e9, exits);
            String text = s.platform().consoleText();
            boolean failed = text.lines().anyMatch(l -> l.startsWith("DVMM-RESULT") && l.contains("check=fail"));
            boolean clean = how == PcPlatform.Ending.POWER_OFF || how == PcPlatform.Ending.HALT;
            return clean && !failed ? 0 : Math.max(1, status);
        } finally {
            kernelFile.close();
            if (initrdFile != null) {
                initrdFile.close();
            }
        }
    }

    static Path cacheRoot() {
        String env = System.getenv("DVMM_CACHE");
        return env != null ? Path.of(env, "images") : Path.of(System.getProperty("user.home"), ".cache", "dvmm", "images");
    }

    /** A one-line error unless {@code image} names an image: "default" or "debian". */
    static void checkImage(String image) {
        if (!image.equals("default") && !image.equals("debian")) {
            throw new UserError("--image must be default or debian, got '" + image + "'");
        }
    }

    /** The kernel of {@code image}: the default one built on first use, Debian's fetched on first use. */
    static Path imageKernel(String image, PrintWriter out) throws IOException, InterruptedException {
        checkImage(image);
        return image.equals("debian") ? dev.dvmm.hv.lab.DebianKernel.vmlinuz(cacheRoot()) : prepareDefaultImage(out);
    }

    /** The default image's bzImage (built on first use). */
    static Path prepareDefaultImage(PrintWriter out) throws IOException, InterruptedException {
        return defaultKernel(out).resolve("bzImage");
    }

    /** The default kernel, built from the recipe in guest-boot/image on first use (minutes), cached by hash. */
    private static Path defaultKernel(PrintWriter out) throws IOException, InterruptedException {
        Path root = Path.of(System.getProperty("dvmm.root", "."));
        Path script = root.resolve("guest-boot/image/build-kernel.sh");
        if (!Files.isRegularFile(script)) {
            throw new UserError("the image recipe " + script + " is missing; run from the dvmm repository or pass --kernel");
        }
        out.println("dvmm: preparing the default kernel (built once per machine from Debian's linux-source-6.1; "
                + "the first build takes several minutes)");
        out.flush();
        Process p = new ProcessBuilder("bash", script.toString(), cacheRoot().toString())
                .redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String dir = new String(p.getInputStream().readAllBytes()).strip();
        if (p.waitFor() != 0 || dir.isEmpty()) {
            throw new UserError("building the default kernel failed (see the lines above)");
        }
        return Path.of(dir);
    }

    private int runInLab(PrintWriter out) {
        out.println("dvmm: this host's /dev/kvm cannot run Linux guests at a usable speed ("
                + HostMode.detect().mode() + "); running inside the lab (QEMU with emulated SVM)");
        out.flush();
        // One L1 CPU: with two, QEMU's multi-threaded TCG sometimes ran half-patched JIT code of the JVM
        // inside (SIGILL in a C1 method being re-entered); the guest's vCPUs share the one L1 CPU.
        List<String> args = new ArrayList<>(List.of("lab", "--cpus", "1", "--timeout", Long.toString(timeoutSeconds + 300),
                "--memory", Long.toString(Math.max(3L << 30, memory + (2L << 30)) >> 20) + "M", "--",
                "run", "--lab", "never", "--cpus", Integer.toString(cpus), "--memory", Long.toString(memory),
                "--programs", programs, "--timeout", Long.toString(timeoutSeconds), "--image", image));
        if (kernel != null) {
            args.addAll(List.of("--kernel", kernel.toAbsolutePath().toString()));
        }
        if (initrd != null) {
            args.addAll(List.of("--initrd", initrd.toAbsolutePath().toString()));
        }
        if (!append.isBlank()) {
            args.addAll(List.of("--append", append));
        }
        if (exactCmdline != null) {
            args.addAll(List.of("--cmdline", exactCmdline));
        }
        if (exitStats) {
            args.add("--exit-stats");
        }
        args.addAll(List.of("--quiet-report", Long.toString(quietSeconds)));
        if (kernel == null) {
            // Build or fetch the image on the host (fast) rather than inside the emulated VM.
            try {
                imageKernel(image, out);
                GuestInitramfs.build(cacheRoot());
            } catch (IOException | InterruptedException | BootException | dev.dvmm.hv.lab.LabException e) {
                throw new UserError("preparing the default image failed: " + e.getMessage());
            }
        }
        return Main.run(args.toArray(String[]::new));
    }
}
