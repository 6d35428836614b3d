package dev.dvmm.hv.lab;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * For tests that need a Linux host with hardware-KVM semantics (JUnit tag "lab"): runs a command in
 * the lab in this JVM and returns its status and output, echoing the output as it streams so the
 * test log shows it. Use {@link #unavailableReason()} with an assumption to skip where the lab
 * cannot run.
 */
public final class LabRunner {
    /** Test default: a lab run that takes longer than this is stopped (and fails the run). */
    public static final long DEFAULT_TIMEOUT_SECONDS = 900;

    private LabRunner() {}

    /** The outcome of a lab run. {@code stdout}/{@code stderr} hold all hosts' lines (prefixed "[rank] " when N > 1). */
    public record Result(int exitStatus, String stdout, String stderr, Lab.Report report) {}

    /** Runs {@code <repo>/dvmm <dvmmArgs>} on {@code hosts} VMs. */
    public static Result dvmm(int hosts, List<String> dvmmArgs) {
        return run(hosts, dvmmArgs, null, Map.of());
    }

    /** Runs a shell command on {@code hosts} VMs (the same command on each; it can tell them apart by DVMM_LAB_RANK). */
    public static Result exec(int hosts, String shellCommand) {
        return run(hosts, List.of(), shellCommand, Map.of());
    }

    /**
     * Runs in the lab with the defaults of {@code dvmm lab} (memory 3 GiB per VM, host cores shared
     * among the VMs) and {@link #DEFAULT_TIMEOUT_SECONDS}.
     *
     * @throws LabException if the lab itself fails (no QEMU, no memory, guest crashed)
     */
    public static Result run(int hosts, List<String> dvmmArgs, String shellCommand, Map<String, String> env) {
        var out = new ByteArrayOutputStream();
        var err = new ByteArrayOutputStream();
        LabOptions options = new LabOptions(hosts, LabOptions.defaultCpus(hosts), LabOptions.DEFAULT_MEMORY_MIB,
                dvmmArgs, shellCommand, null, LabImage.defaultCacheRoot(), DEFAULT_TIMEOUT_SECONDS, false,
                LabCommand.defaultRepo(), Path.of(System.getProperty("user.dir")), "loose", env, false);
        Lab.Report report = Lab.run(options, new Tee(out, System.out), new Tee(err, System.err),
                line -> System.err.println("dvmm lab: " + line));
        return new Result(report.exitStatus(), out.toString(StandardCharsets.UTF_8),
                err.toString(StandardCharsets.UTF_8), report);
    }

    /**
     * Why the lab cannot run on this machine, or null if it can: it needs Linux on x86-64, and
     * either QEMU on the PATH or root to install it, and memory for one VM.
     */
    public static String unavailableReason() {
        if (!System.getProperty("os.name").equals("Linux") || !System.getProperty("os.arch").equals("amd64")) {
            return "the lab needs Linux on x86-64";
        }
        if (QemuBinary.onPath(QemuBinary.NAME) == null && !"root".equals(System.getProperty("user.name"))) {
            return QemuBinary.NAME + " is not installed and installing it needs root";
        }
        long available = Lab.availableMemoryMiB(Path.of("/proc/meminfo"));
        if (available >= 0 && available < LabOptions.DEFAULT_MEMORY_MIB) {
            return "less than " + LabOptions.DEFAULT_MEMORY_MIB + " MiB of memory available for a lab VM";
        }
        return null;
    }

    /** Copies everything to two streams. */
    private static final class Tee extends OutputStream {
        private final OutputStream a;
        private final OutputStream b;

        Tee(OutputStream a, OutputStream b) {
            this.a = a;
            this.b = b;
        }

        @Override
        public void write(int c) throws IOException {
            a.write(c);
            b.write(c);
        }

        @Override
        public void write(byte[] buf, int off, int len) throws IOException {
            a.write(buf, off, len);
            b.write(buf, off, len);
        }

        @Override
        public void flush() throws IOException {
            a.flush();
            b.flush();
        }
    }
}
