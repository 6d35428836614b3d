package dev.dvmm.hv.lab;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * One lab VM: a QEMU process (software emulation, -cpu max, so the guest sees SVM) booting the lab
 * image with the host's root as its read-only root and a run share that carries the command in and
 * the status out. Status and boot events also arrive on the control port; the share's status file
 * is the fallback if that port loses the last line.
 */
final class LabHost implements AutoCloseable {
    private final int rank;
    private final Path share;
    private final Path console;
    private final Path qemuLog;
    private final long labStart;
    private final GuestChannel control;
    private final GuestChannel stdout;
    private final GuestChannel stderr;
    private final List<String> events = new ArrayList<>();
    private Process process;
    private volatile Integer status;
    private volatile String failure;
    private volatile boolean killedByLab;
    private volatile long commandStartNanos;
    private volatile long commandEndNanos;
    private volatile String guestUptimeAtStart;

    /** Where a lab VM's guest-visible and host-side files live. */
    record Layout(Path share, Path console, Path qemuLog, Path control, Path stdout, Path stderr) {
        static Layout of(Path runDir, int rank) {
            String h = "h" + rank;
            return new Layout(runDir.resolve(h), runDir.resolve(h + "-console.log"), runDir.resolve(h + "-qemu.log"),
                    runDir.resolve(h + ".ctl"), runDir.resolve(h + ".out"), runDir.resolve(h + ".err"));
        }
    }

    LabHost(int rank, Path runDir, long labStart, OutputStream out, OutputStream err) {
        this.rank = rank;
        this.labStart = labStart;
        Layout layout = Layout.of(runDir, rank);
        this.share = layout.share();
        this.console = layout.console();
        this.qemuLog = layout.qemuLog();
        try {
            Files.createDirectories(share);
        } catch (IOException e) {
            throw new LabException("cannot create " + share + ": " + e.getMessage(), e);
        }
        this.control = new GuestChannel(layout.control(), new ControlLines(), "lab-h" + rank + "-control");
        this.stdout = new GuestChannel(layout.stdout(), out, "lab-h" + rank + "-stdout");
        this.stderr = new GuestChannel(layout.stderr(), err, "lab-h" + rank + "-stderr");
    }

    int rank() {
        return rank;
    }

    Path share() {
        return share;
    }

    Path console() {
        return console;
    }

    /**
     * panic=-1 with -no-reboot: a guest panic ends QEMU at once instead of hanging. tsc=reliable keeps
     * the TSC clocksource (vDSO clock reads; the fallback, HPET, is an emulated MMIO read). The rest trims
     * boot work that is slow under emulation and that the lab does not use (crypto self-tests,
     * X.509 certificate loading, kprobe tracing, zswap, encrypted keys): 2.6 s -> 1.8 s to init.
     */
    static final String KERNEL_COMMAND_LINE = "console=ttyS0 quiet panic=-1 mitigations=off tsc=reliable cryptomgr.notests"
            + " initcall_blacklist=load_system_certificate_list,init_kprobe_trace,crypto_kdf108_init,init_zswap,"
            + "init_encrypted";

    /** The QEMU command line for this VM. Paths must not contain commas (QEMU's option separator). */
    static List<String> qemuArguments(Path qemu, LabImage.Built image, Layout layout, int cpus, long memoryMiB,
                                      Path switchSocket, int rank) {
        for (Path p : List.of(image.kernel(), image.initramfs(), layout.share(), layout.console(), layout.control())) {
            if (p.toString().contains(",")) {
                throw new LabException("lab paths must not contain ',' (QEMU option syntax): " + p);
            }
        }
        List<String> a = new ArrayList<>(List.of(qemu.toString(),
                "-nodefaults", "-no-user-config", "-machine", "pc,accel=tcg", "-cpu", "max",
                "-smp", Integer.toString(cpus), "-m", memoryMiB + "M", "-display", "none", "-no-reboot",
                "-kernel", image.kernel().toString(), "-initrd", image.initramfs().toString(),
                "-append", KERNEL_COMMAND_LINE,
                "-chardev", "file,id=con,path=" + layout.console(), "-serial", "chardev:con",
                "-fsdev", "local,id=root,path=/,readonly=on,security_model=none,multidevs=remap",
                "-device", "virtio-9p-pci,fsdev=root,mount_tag=dvmm_root",
                "-fsdev", "local,id=run,path=" + layout.share() + ",security_model=none",
                "-device", "virtio-9p-pci,fsdev=run,mount_tag=dvmm_run",
                "-device", "virtio-serial-pci",
                "-chardev", "socket,id=ctl,path=" + layout.control(),
                "-device", "virtserialport,chardev=ctl,name=dvmm.control",
                "-chardev", "socket,id=out,path=" + layout.stdout(),
                "-device", "virtserialport,chardev=out,name=dvmm.stdout",
                "-chardev", "socket,id=err,path=" + layout.stderr(),
                "-device", "virtserialport,chardev=err,name=dvmm.stderr"));
        if (switchSocket != null) {
            a.addAll(List.of("-netdev", "stream,id=net,server=off,addr.type=unix,addr.path=" + switchSocket,
                    "-device", "virtio-net-pci,netdev=net,mac=" + mac(rank)));
        } else {
            // No NIC at all: QEMU's default would be user networking to the outside world.
            a.addAll(List.of("-nic", "none"));
        }
        return a;
    }

    static String mac(int rank) {
        return String.format("52:54:00:77:00:%02x", rank + 1);
    }

    void start(List<String> arguments) {
        try {
            process = new ProcessBuilder(arguments)
                    .redirectErrorStream(true)
                    .redirectOutput(qemuLog.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                    .start();
        } catch (IOException e) {
            throw new LabException("cannot start QEMU for host " + rank + ": " + e.getMessage(), e);
        }
    }

    boolean commandStarted() {
        return commandStartNanos != 0;
    }

    double commandStartSeconds() {
        return (commandStartNanos - labStart) / 1e9;
    }

    boolean isAlive() {
        return process.isAlive();
    }

    /** True once QEMU has ended without the guest having reported a status: the guest failed. */
    boolean failedEarly() {
        return !process.isAlive() && status == null && statusFile() == null;
    }

    /** Stops the VM if it still runs; its result then gives the lab's reason for stopping it. */
    void kill() {
        if (process.isAlive()) {
            killedByLab = true;
            process.destroyForcibly();
        }
    }

    /**
     * This host's result once QEMU has ended; {@code stopReason} says why the lab stopped it (time
     * limit, another host failing), or is null if it ended by itself.
     */
    HostResult result(String stopReason) throws InterruptedException {
        process.waitFor();
        // QEMU has exited, so its socket ends are closed: the pumps see EOF once the data is read.
        control.drain(5000);
        stdout.drain(5000);
        stderr.drain(5000);
        Integer rc = status;
        if (rc == null) {
            rc = statusFile();
        }
        String why = null;
        if (failure != null) {
            why = "guest init failed: " + failure;
        } else if (rc == null && killedByLab && stopReason != null) {
            why = stopReason;
        } else if (rc == null) {
            why = !control.connected() ? "QEMU ended before the guest started (exit status " + process.exitValue()
                    + "): " + lastLine(qemuLog) : "the guest ended without reporting a status: " + lastLine(console);
        }
        double boot = commandStartNanos == 0 ? Double.NaN : (commandStartNanos - labStart) / 1e9;
        double run = commandEndNanos == 0 || commandStartNanos == 0 ? Double.NaN
                : (commandEndNanos - commandStartNanos) / 1e9;
        synchronized (events) {
            return new HostResult(rank, why == null ? rc : null, why, boot, run, guestUptimeAtStart,
                    List.copyOf(events), console);
        }
    }

    private Integer statusFile() {
        try {
            return Integer.parseInt(Files.readString(share.resolve("status")).strip());
        } catch (IOException | NumberFormatException e) {
            return null;
        }
    }

    /** The line of a log that best says what went wrong: a panic or init failure, else the last line. */
    static String lastLine(Path file) {
        try {
            List<String> lines = Files.readAllLines(file, StandardCharsets.ISO_8859_1);
            String last = null;
            for (String l : lines) {
                if (l.contains("Kernel panic") || l.contains("dvmm-lab: FAILED")) {
                    return l.strip() + " (see " + file + ")";
                }
                if (!l.isBlank()) {
                    last = l;
                }
            }
            return last != null ? last.strip() + " (see " + file + ")" : "nothing in " + file;
        } catch (IOException e) {
            return "no " + file;
        }
    }

    @Override
    public void close() {
        if (process != null && process.isAlive()) {
            process.destroyForcibly();
        }
        control.close();
        stdout.close();
        stderr.close();
    }

    /** What one host did. {@code status} is null when it failed for a lab reason given in {@code failure}. */
    public record HostResult(int rank, Integer status, String failure, double secondsToCommandStart,
                             double commandSeconds, String guestUptimeAtStart, List<String> events, Path console) {}

    /** Parses the guest init's control lines: "event UPTIME NAME", "exit STATUS", "fail REASON". */
    private final class ControlLines extends OutputStream {
        private final ByteArrayOutputStream line = new ByteArrayOutputStream();

        @Override
        public void write(int b) {
            if (b == '\n') {
                handle(line.toString(StandardCharsets.UTF_8));
                line.reset();
            } else {
                line.write(b);
            }
        }

        private void handle(String l) {
            long now = System.nanoTime();
            String[] f = l.split(" ", 3);
            switch (f[0]) {
                case "event" -> {
                    if (f.length == 3) {
                        synchronized (events) {
                            events.add(String.format("%s at %.2f s (guest uptime %s s)", f[2], (now - labStart) / 1e9, f[1]));
                        }
                        if (f[2].equals("start")) {
                            commandStartNanos = now;
                            guestUptimeAtStart = f[1];
                        } else if (f[2].equals("end")) {
                            commandEndNanos = now;
                        }
                    }
                }
                case "exit" -> {
                    try {
                        status = Integer.parseInt(f[1].strip());
                    } catch (RuntimeException e) {
                        failure = "unreadable status line '" + l + "'";
                    }
                }
                case "fail" -> failure = l.substring(4).strip();
                default -> { } // Unknown lines from a newer init are ignored.
            }
        }
    }
}
