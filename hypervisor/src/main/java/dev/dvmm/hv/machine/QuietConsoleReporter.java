package dev.dvmm.hv.machine;

import dev.dvmm.boot.kernel.KernelSymbols;
import dev.dvmm.hv.vcpu.VcpuRunner;
import java.io.PrintStream;
import java.util.List;
import java.util.Locale;

/**
 * Progress while a guest is silent: when the console has said nothing for a while, prints one status
 * line naming where each vCPU is (its RIP, as a kernel symbol when the kernel's symbols are known) and
 * how fast it exits, so that a user watching a slow boot sees what it is doing rather than nothing.
 * Driven by {@link Machine#awaitCompletion(java.time.Duration, Runnable)}'s tick on the waiting thread.
 */
public final class QuietConsoleReporter implements Runnable {
    private final java.util.function.LongSupplier lastOutputNanos;
    private final List<VcpuRunner> runners;
    private final KernelSymbols symbols; // may be null
    private final PrintStream out;
    private final long quietNanos;
    private final long startNanos = System.nanoTime();
    private final long[] lastExits;
    private final int[] samplesBefore;
    private long lastReportNanos;
    private long lastExitsNanos;
    private boolean sampling;
    private long samplingSinceNanos;
    /** How long to wait for every vCPU to take its RIP sample before reporting without it. */
    private static final long SAMPLE_WAIT_NANOS = 1_000_000_000L;

    /**
     * @param lastOutputNanos {@link System#nanoTime} of the guest's last console output
     *     (e.g. {@link PcPlatform#lastConsoleNanos})
     * @param symbols the kernel's symbols, or null to print raw addresses
     */
    public QuietConsoleReporter(java.util.function.LongSupplier lastOutputNanos, Machine machine, KernelSymbols symbols,
                                PrintStream out, long quietNanos) {
        this.lastOutputNanos = lastOutputNanos;
        this.runners = machine.runners();
        this.symbols = symbols;
        this.out = out;
        this.quietNanos = quietNanos;
        this.lastExits = new long[runners.size()];
        this.samplesBefore = new int[runners.size()];
        this.lastReportNanos = startNanos;
        this.lastExitsNanos = startNanos;
    }

    @Override
    public void run() {
        long now = System.nanoTime();
        long quietSince = Math.max(lastOutputNanos.getAsLong(), lastReportNanos);
        if (!sampling) {
            if (now - quietSince >= quietNanos) {
                for (int i = 0; i < runners.size(); i++) {
                    samplesBefore[i] = runners.get(i).ripSamples();
                    runners.get(i).requestRipSample();
                }
                sampling = true;
                samplingSinceNanos = now;
            } else if (now - lastOutputNanos.getAsLong() < quietNanos) {
                remember(now); // exit rates in a report cover the quiet period only
            }
            return;
        }
        if (!allSampled() && now - samplingSinceNanos < SAMPLE_WAIT_NANOS) {
            return;
        }
        sampling = false;
        lastReportNanos = now;
        out.println(line(now));
        out.flush();
        remember(now);
    }

    private boolean allSampled() {
        for (int i = 0; i < runners.size(); i++) {
            if (runners.get(i).ripSamples() == samplesBefore[i]) {
                return false;
            }
        }
        return true;
    }

    private void remember(long now) {
        for (int i = 0; i < runners.size(); i++) {
            lastExits[i] = runners.get(i).exits();
        }
        lastExitsNanos = now;
    }

    String line(long now) {
        StringBuilder b = new StringBuilder(String.format(Locale.ROOT, "dvmm: [%.1f s] no console output for %.0f s;",
                (now - startNanos) / 1e9, (now - lastOutputNanos.getAsLong()) / 1e9));
        double seconds = Math.max(1e-9, (now - lastExitsNanos) / 1e9);
        for (int i = 0; i < runners.size(); i++) {
            VcpuRunner r = runners.get(i);
            b.append(i == 0 ? " " : ", ").append("vCPU ").append(r.vcpu().index()).append(' ');
            if (r.ripSamples() == samplesBefore[i]) {
                b.append("(did not answer within 1 s)");
            } else {
                long rip = r.sampledRip();
                if (symbols != null && symbols.size() > 0 && symbols.lowest() < 0 && rip >= 0) {
                    // A kernel linked in the top half (Linux) runs user code in the bottom half.
                    b.append("in user code at 0x").append(Long.toHexString(rip));
                } else {
                    b.append("at ").append(symbols != null ? symbols.describe(rip) : "0x" + Long.toHexString(rip));
                }
            }
            b.append(String.format(Locale.ROOT, " %,.0f exits/s", (r.exits() - lastExits[i]) / seconds));
        }
        return b.toString();
    }
}
