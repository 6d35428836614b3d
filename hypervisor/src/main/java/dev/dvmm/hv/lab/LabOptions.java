package dev.dvmm.hv.lab;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What to run in the lab and on how many VMs.
 *
 * @param hosts       number of VMs (separate hosts on one virtual network)
 * @param cpus        vCPUs per VM
 * @param memoryMiB   memory per VM
 * @param dvmmArgs    arguments for the repository's {@code dvmm} launcher inside (when {@code exec} is null)
 * @param exec        a shell command to run inside instead of dvmm, or null
 * @param qemu        the QEMU binary, or null for qemu-system-x86_64 on the PATH (installed on first use)
 * @param cacheDir    where built images are kept
 * @param timeoutSeconds kill the VMs after this long; 0 for no limit
 * @param rebuildImage build the image even if it is cached
 * @param repo        the repository whose {@code dvmm} runs inside
 * @param cwd         working directory of the command inside (the host's root is the guest's root)
 * @param rootCache   9p cache mode of the guest's view of the host root (loose or none)
 * @param env         extra environment variables for the command
 * @param keepRunDir  keep the run directory (console logs, shares) after a successful run
 */
public record LabOptions(int hosts, int cpus, long memoryMiB, List<String> dvmmArgs, String exec, Path qemu,
                         Path cacheDir, long timeoutSeconds, boolean rebuildImage, Path repo, Path cwd,
                         String rootCache, Map<String, String> env, boolean keepRunDir) {
    public static final int MAX_HOSTS = 16;
    public static final long DEFAULT_MEMORY_MIB = 3072;

    public LabOptions {
        dvmmArgs = List.copyOf(dvmmArgs);
        env = Map.copyOf(env);
        if (hosts < 1 || hosts > MAX_HOSTS) {
            throw new LabException("--hosts must be 1.." + MAX_HOSTS + ", not " + hosts);
        }
        if (cpus < 1 || cpus > 64) {
            throw new LabException("--cpus must be 1..64, not " + cpus);
        }
        if (memoryMiB < 256) {
            throw new LabException("--memory must be at least 256M (the guest JVM needs room), not " + memoryMiB + "M");
        }
        if (exec == null && dvmmArgs.isEmpty()) {
            throw new LabException("nothing to run: give dvmm arguments after '--', or --exec 'shell command'");
        }
        if (exec != null && !dvmmArgs.isEmpty()) {
            throw new LabException("give either --exec or dvmm arguments after '--', not both");
        }
        if (!rootCache.equals("loose") && !rootCache.equals("none")) {
            throw new LabException("root cache mode must be loose or none, not " + rootCache);
        }
        if (timeoutSeconds < 0) {
            throw new LabException("--timeout must be >= 0 seconds");
        }
        for (String k : env.keySet()) {
            if (!k.matches("[A-Za-z_][A-Za-z0-9_]*")) {
                throw new LabException("not an environment variable name: '" + k + "'");
            }
        }
    }

    /** Default vCPUs per VM: the host's cores shared among the VMs, at least one each. */
    public static int defaultCpus(int hosts) {
        return Math.max(1, Runtime.getRuntime().availableProcessors() / Math.max(1, hosts));
    }

    private static final Pattern SIZE = Pattern.compile("(\\d+)\\s*([KMGT]?)(i?B)?", Pattern.CASE_INSENSITIVE);

    /** Parses a memory size such as 3G, 2048M, 4GiB; a bare number is MiB. */
    public static long parseMemoryMiB(String text) {
        Matcher m = SIZE.matcher(text.strip());
        if (!m.matches()) {
            throw new LabException("not a memory size: '" + text + "' (use e.g. 3G or 2048M)");
        }
        long n;
        try {
            n = Long.parseLong(m.group(1));
        } catch (NumberFormatException e) {
            throw new LabException("memory size too large: '" + text + "'");
        }
        long mib;
        try {
            mib = switch (m.group(2).toUpperCase(Locale.ROOT)) {
                case "K" -> n / 1024;
                case "G" -> Math.multiplyExact(n, 1024L);
                case "T" -> Math.multiplyExact(n, 1024L * 1024);
                default -> n;
            };
        } catch (ArithmeticException e) {
            throw new LabException("memory size too large: '" + text + "'");
        }
        if (mib <= 0) {
            throw new LabException("memory size must be positive: '" + text + "'");
        }
        return mib;
    }
}
