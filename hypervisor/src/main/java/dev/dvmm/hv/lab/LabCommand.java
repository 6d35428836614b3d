package dev.dvmm.hv.lab;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code dvmm lab}: run dvmm (or a shell command) inside QEMU VMs whose /dev/kvm has SVM semantics. */
@Command(name = "lab", mixinStandardHelpOptions = true,
        description = {
            "Run dvmm inside QEMU VMs with software-emulated AMD SVM, so that /dev/kvm inside behaves like"
                    + " hardware KVM (for hosts whose own /dev/kvm is nested PVM or missing).",
            "Each VM boots Debian's kernel with kvm-amd, sees the host's root read-only (writes go to RAM)"
                    + " and runs '<repo>/dvmm <arguments>' as root in the current directory.",
            "With --hosts N the VMs are hosts lab0..lab(N-1) at 10.77.0.1..N on a private virtual network;"
                    + " the command gets DVMM_LAB_RANK, DVMM_LAB_HOSTS, DVMM_LAB_ADDRESS and DVMM_LAB_PEERS"
                    + " (every host's address in rank order).",
            "Exit status: the command's (the first non-zero among the hosts); " + Lab.LAB_FAILURE
                    + " if the lab itself fails."},
        footer = {"", "Examples:",
            "  dvmm lab -- info",
            "  dvmm lab --exec 'grep -c svm /proc/cpuinfo; ls -l /dev/kvm'",
            "  dvmm lab --hosts 2 --exec 'ping -c 3 lab$(( (DVMM_LAB_RANK + 1) %% 2 ))'",
            "  dvmm lab --memory 4G -- test -o      (the project's test suite, inside)"})
public final class LabCommand implements Callable<Integer> {
    @Option(names = "--hosts", paramLabel = "N", description = "number of VMs (default: ${DEFAULT-VALUE})")
    int hosts = 1;

    @Option(names = "--cpus", paramLabel = "C", description = "vCPUs per VM (default: host cores / N)")
    Integer cpus;

    @Option(names = "--memory", paramLabel = "SIZE", description = "memory per VM, e.g. 3G or 2048M (default: 3G)")
    String memory = LabOptions.DEFAULT_MEMORY_MIB + "M";

    @Option(names = "--exec", paramLabel = "SHELL-COMMAND",
            description = "run this shell command inside instead of dvmm")
    String exec;

    @Option(names = "--env", paramLabel = "NAME=VALUE", description = "extra environment variable inside (repeatable)")
    Map<String, String> env = Map.of();

    @Option(names = "--timeout", paramLabel = "SECONDS", description = "stop the VMs after this long (default: no limit)")
    long timeoutSeconds;

    @Option(names = "--qemu", paramLabel = "PATH", description = "QEMU binary (default: qemu-system-x86_64 on the PATH,"
            + " installed from Debian on first use when run as root)")
    Path qemu;

    @Option(names = "--cache-dir", paramLabel = "DIR", description = "where the L1 image is cached (default: "
            + "$DVMM_LAB_CACHE or ~/.cache/dvmm/lab)")
    Path cacheDir;

    @Option(names = "--repo", paramLabel = "DIR", description = "repository whose dvmm runs inside (default: this one)")
    Path repo;

    @Option(names = "--rebuild-image", description = "build the L1 image even if it is cached")
    boolean rebuildImage;

    @Option(names = "--root-cache", paramLabel = "MODE", description = "9p cache mode for the host root inside:"
            + " loose (fast, default) or none")
    String rootCache = "loose";

    @Option(names = "--keep", description = "keep the run directory (console logs) after a successful run")
    boolean keep;

    @Option(names = "--timings", description = "print boot and run timings to stderr at the end")
    boolean timings;

    @Option(names = {"-q", "--quiet"}, description = "no progress lines")
    boolean quiet;

    @Parameters(paramLabel = "DVMM-ARGS", description = "arguments of the dvmm run inside (after '--')")
    List<String> dvmmArgs = new ArrayList<>();

    private final PrintStream out;
    private final PrintStream err;

    public LabCommand() {
        this(System.out, System.err);
    }

    public LabCommand(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    @Override
    public Integer call() {
        try {
            LabOptions options = options();
            Lab.Report report = Lab.run(options, out, err, quiet ? line -> { } : line -> err.println("dvmm lab: " + line));
            if (timings) {
                err.println(timings(report));
            }
            return report.exitStatus();
        } catch (LabException e) {
            err.println("dvmm lab: " + e.getMessage());
            return Lab.LAB_FAILURE;
        }
    }

    LabOptions options() {
        return new LabOptions(hosts, cpus != null ? cpus : LabOptions.defaultCpus(hosts), LabOptions.parseMemoryMiB(memory),
                dvmmArgs, exec, qemu, cacheDir != null ? cacheDir : LabImage.defaultCacheRoot(), timeoutSeconds,
                rebuildImage, repo != null ? repo : defaultRepo(), Path.of(System.getProperty("user.dir")),
                rootCache, env, keep);
    }

    /** The repository this dvmm runs from: -Ddvmm.root (set by the launcher), else the working directory. */
    static Path defaultRepo() {
        String root = System.getProperty("dvmm.root");
        return Path.of(root != null && !root.isBlank() ? root : System.getProperty("user.dir"));
    }

    static String timings(Lab.Report report) {
        StringBuilder s = new StringBuilder(String.format("dvmm lab: timings: image %s in %.1f s",
                report.imageWasCached() ? "cached" : "built", report.imageSeconds()));
        for (LabHost.HostResult h : report.hosts()) {
            s.append(String.format("%n  host %d: command start %.2f s after lab start (guest uptime %s s),"
                    + " command %.2f s, status %s", h.rank(), h.secondsToCommandStart(), h.guestUptimeAtStart(),
                    h.commandSeconds(), h.status()));
            for (String e : h.events()) {
                s.append(String.format("%n    %s", e));
            }
        }
        return s.toString();
    }
}
