package dev.dvmm.hv.lab;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Runs a command (the repository's dvmm, or any shell command) inside N QEMU VMs whose KVM has
 * hardware-virtualization semantics: QEMU's software emulation of SVM with nested paging. Each VM
 * boots Debian's stock kernel, loads kvm-amd, mounts the host's root read-only (9p) under a tmpfs
 * overlay and runs the command as root in the caller's working directory; its output streams to
 * the host and its exit status is the lab's. With several VMs they share a virtual Ethernet
 * (10.77.0.0/24, addresses 10.77.0.(rank+1), names lab0, lab1...) that exists only in this process.
 */
public final class Lab {
    /** Exit status of the lab itself failing (no QEMU, image build failed, guest died). */
    public static final int LAB_FAILURE = 125;
    static final String NETWORK_PREFIX = "10.77.0.";
    static final int NETWORK_BITS = 24;

    /** Variables of the caller's environment that the command inside also gets. */
    private static final List<String> PASSED_ENV = List.of(
            "PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TERM", "JAVA_HOME", "MAVEN_OPTS", "CI");

    private Lab() {}

    /** The result of a lab run: the exit status (first non-zero among the hosts) and each host's details. */
    public record Report(int exitStatus, List<LabHost.HostResult> hosts, double imageSeconds, boolean imageWasCached) {}

    /**
     * Boots the VMs, runs the command in each, and waits for all of them.
     *
     * @throws LabException when the lab cannot run (missing QEMU, not enough memory, image build failure)
     *                      or a guest fails before reporting a status
     */
    public static Report run(LabOptions o, OutputStream out, OutputStream err, Consumer<String> progress) {
        long start = System.nanoTime();
        QemuBinary qemu = QemuBinary.locate(o.qemu(), o.qemu() == null, progress);
        checkMemory(o.hosts(), o.memoryMiB(), availableMemoryMiB(Path.of("/proc/meminfo")));
        Path repo = o.repo().toAbsolutePath().normalize();
        Path launcher = repo.resolve("dvmm");
        if (o.exec() == null && !Files.isExecutable(launcher)) {
            throw new LabException("no executable dvmm launcher at " + launcher + " (give --repo)");
        }

        LabImage.Recipe recipe = LabImage.Recipe.standard();
        boolean cached = !o.rebuildImage() && LabImage.cached(o.cacheDir(), recipe) != null;
        LabImage.Built image = LabImage.ensure(o.cacheDir(), recipe, o.rebuildImage(), progress);
        double imageSeconds = (System.nanoTime() - start) / 1e9;

        Path runDir;
        try {
            runDir = Files.createTempDirectory("dvmm-lab-");
        } catch (IOException e) {
            throw new LabException("cannot create a run directory: " + e.getMessage(), e);
        }
        List<LabHost> hosts = new ArrayList<>();
        List<OutputStream> sinks = new ArrayList<>();
        Thread cleanup = new Thread(() -> hosts.forEach(LabHost::close), "lab-cleanup");
        Runtime.getRuntime().addShutdownHook(cleanup);
        boolean success = false;
        try (LabSwitch network = o.hosts() > 1 ? new LabSwitch(runDir.resolve("switch.sock")) : null) {
            String command = o.exec() != null ? o.exec() + "\n" : commandLine(launcher, o.dvmmArgs());
            for (int rank = 0; rank < o.hosts(); rank++) {
                OutputStream hostOut = o.hosts() > 1 ? new PrefixedLines(out, "[" + rank + "] ") : out;
                OutputStream hostErr = o.hosts() > 1 ? new PrefixedLines(err, "[" + rank + "] ") : err;
                sinks.add(hostOut);
                sinks.add(hostErr);
                LabHost host = new LabHost(rank, runDir, start, hostOut, hostErr);
                hosts.add(host);
                writeShare(host.share(), o, rank, command);
            }
            for (LabHost host : hosts) {
                progress.accept("booting VM " + (host.rank() + 1) + " of " + o.hosts() + " (" + o.cpus() + " vCPU, "
                        + o.memoryMiB() + " MiB, software-emulated SVM)");
                host.start(LabHost.qemuArguments(qemu.path(), image, LabHost.Layout.of(runDir, host.rank()),
                        o.cpus(), o.memoryMiB(), network == null ? null : network.socket(), host.rank()));
            }
            progress.accept("waiting for the guest" + (o.hosts() > 1 ? "s" : "") + " (run directory " + runDir + ")");
            String stopReason = supervise(hosts, o.timeoutSeconds() > 0 ? start + o.timeoutSeconds() * 1_000_000_000L : 0,
                    start, progress);
            List<LabHost.HostResult> results = new ArrayList<>();
            for (LabHost host : hosts) {
                results.add(host.result(stopReason));
            }
            for (OutputStream s : sinks) {
                // Ends each host's last unterminated line; the caller's own streams stay open.
                if (s instanceof PrefixedLines) {
                    s.close();
                } else {
                    s.flush();
                }
            }
            // The host that failed first tells why; the ones the lab stopped because of it do not.
            LabHost.HostResult failed = null;
            int exit = 0;
            for (LabHost.HostResult r : results) {
                if (r.failure() != null && (failed == null || failed.failure().equals(stopReason))) {
                    failed = r;
                }
                if (exit == 0 && r.status() != null && r.status() != 0) {
                    exit = r.status();
                }
            }
            if (failed != null) {
                throw new LabException((o.hosts() > 1 ? "host " + failed.rank() + ": " : "") + failed.failure()
                        + " (run directory kept: " + runDir + ")");
            }
            success = true;
            return new Report(exit, List.copyOf(results), imageSeconds, cached);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new LabException("interrupted while waiting for the lab VMs", e);
        } catch (IOException e) {
            throw new LabException("lab output failed: " + e.getMessage(), e);
        } finally {
            hosts.forEach(LabHost::close);
            try {
                Runtime.getRuntime().removeShutdownHook(cleanup);
            } catch (IllegalStateException e) {
                // The JVM is already shutting down; the hook does the same cleanup.
            }
            if (success && !o.keepRunDir()) {
                LabImage.deleteTree(runDir);
            }
        }
    }

    /**
     * Waits until every VM has ended, reporting command starts. Stops all VMs when the deadline
     * passes or when one fails before reporting a status (its peers would wait for it forever).
     *
     * @return why the lab stopped the VMs, or null if they all ended by themselves
     */
    private static String supervise(List<LabHost> hosts, long deadline, long start, Consumer<String> progress)
            throws InterruptedException {
        boolean[] reported = new boolean[hosts.size()];
        while (true) {
            boolean anyAlive = false;
            for (LabHost host : hosts) {
                if (!reported[host.rank()] && host.commandStarted()) {
                    reported[host.rank()] = true;
                    progress.accept(String.format("host %d: command started %.1f s after lab start",
                            host.rank(), host.commandStartSeconds()));
                }
                anyAlive |= host.isAlive();
            }
            if (!anyAlive) {
                return null;
            }
            String reason = null;
            if (deadline != 0 && System.nanoTime() - deadline > 0) {
                reason = String.format("timed out after %.0f s", (System.nanoTime() - start) / 1e9);
            } else {
                for (LabHost host : hosts) {
                    if (hosts.size() > 1 && host.failedEarly()) {
                        reason = "stopped because host " + host.rank() + " failed";
                        break;
                    }
                }
            }
            if (reason != null) {
                hosts.forEach(LabHost::kill);
                return reason;
            }
            Thread.sleep(100);
        }
    }

    /** The shell line that runs the repository's launcher with the given arguments. */
    static String commandLine(Path launcher, List<String> args) {
        StringBuilder s = new StringBuilder("exec ").append(quote(launcher.toString()));
        for (String a : args) {
            s.append(' ').append(quote(a));
        }
        return s.append('\n').toString();
    }

    /** Single-quotes a word for POSIX sh. */
    static String quote(String word) {
        return "'" + word.replace("'", "'\\''") + "'";
    }

    /** The environment of the command on host {@code rank}, in order: passed-through, lab, extra. */
    static Map<String, String> environment(LabOptions o, int rank, Map<String, String> callerEnv) {
        Map<String, String> env = new LinkedHashMap<>();
        for (String k : PASSED_ENV) {
            if (callerEnv.containsKey(k)) {
                env.put(k, callerEnv.get(k));
            }
        }
        callerEnv.forEach((k, v) -> {
            if (k.startsWith("DVMM_") && !k.startsWith("DVMM_LAB_")) {
                env.put(k, v);
            }
        });
        env.putIfAbsent("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        env.putIfAbsent("HOME", "/root");
        List<String> peers = new ArrayList<>();
        for (int i = 0; i < o.hosts(); i++) {
            peers.add(address(i));
        }
        // /tmp and /run inside are fresh tmpfs: a checkout or working directory there (a CI clone in /tmp)
        // is carried over from the host root so that the command can see it.
        List<String> keep = new ArrayList<>();
        for (Path p : new Path[] {o.repo(), o.cwd()}) {
            if (p != null) {
                String d = p.toAbsolutePath().normalize().toString();
                boolean inside = keep.stream().anyMatch(k -> d.equals(k) || d.startsWith(k + "/"));
                if ((d.startsWith("/tmp/") || d.startsWith("/run/")) && !inside && !d.contains(" ")) {
                    keep.add(d);
                }
            }
        }
        env.put("DVMM_LAB_KEEP", String.join(" ", keep));
        env.put("DVMM_LAB", "1");
        env.put("DVMM_LAB_RANK", Integer.toString(rank));
        env.put("DVMM_LAB_HOSTS", Integer.toString(o.hosts()));
        env.put("DVMM_LAB_CPUS", Integer.toString(o.cpus()));
        env.put("DVMM_LAB_ADDRESS", o.hosts() > 1 ? address(rank) : "");
        env.put("DVMM_LAB_PREFIX", Integer.toString(NETWORK_BITS));
        env.put("DVMM_LAB_PEERS", o.hosts() > 1 ? String.join(",", peers) : "");
        env.put("DVMM_LAB_HOSTS_FILE", o.hosts() > 1 ? "1" : "");
        env.put("DVMM_LAB_ROOT_CACHE", o.rootCache());
        env.put("DVMM_LAB_CWD", o.cwd().toAbsolutePath().toString());
        env.putAll(o.env());
        return env;
    }

    static String address(int rank) {
        return NETWORK_PREFIX + (rank + 1);
    }

    private static void writeShare(Path share, LabOptions o, int rank, String command) {
        StringBuilder env = new StringBuilder();
        environment(o, rank, System.getenv()).forEach((k, v) ->
                env.append("export ").append(k).append('=').append(quote(v)).append('\n'));
        StringBuilder hosts = new StringBuilder();
        for (int i = 0; i < o.hosts(); i++) {
            hosts.append(address(i)).append(" lab").append(i).append('\n');
        }
        try {
            Files.writeString(share.resolve("env"), env, StandardCharsets.UTF_8);
            Files.writeString(share.resolve("command"), command, StandardCharsets.UTF_8);
            Files.writeString(share.resolve("hosts"), hosts, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new LabException("cannot write the run share " + share + ": " + e.getMessage(), e);
        }
    }

    private static final Pattern MEM_AVAILABLE = Pattern.compile("^MemAvailable:\\s+(\\d+) kB", Pattern.MULTILINE);

    /** MemAvailable from a meminfo file, in MiB; -1 if unknown. */
    static long availableMemoryMiB(Path meminfo) {
        try {
            Matcher m = MEM_AVAILABLE.matcher(Files.readString(meminfo));
            return m.find() ? Long.parseLong(m.group(1)) / 1024 : -1;
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
    }

    /** Refuses to boot VMs whose memory the host does not have available. */
    static void checkMemory(int hosts, long memoryMiB, long availableMiB) {
        long needed = hosts * memoryMiB;
        if (availableMiB >= 0 && needed > availableMiB) {
            throw new LabException(String.format("not enough memory for %d VM%s of %d MiB: %d MiB needed, %d MiB"
                    + " available (MemAvailable); use fewer --hosts or less --memory", hosts, hosts > 1 ? "s" : "",
                    memoryMiB, needed, availableMiB));
        }
    }
}
