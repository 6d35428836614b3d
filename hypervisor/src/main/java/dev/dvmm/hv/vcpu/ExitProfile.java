package dev.dvmm.hv.vcpu;

import dev.dvmm.bindings.abi.KvmConstants;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Where a vCPU's time goes, for finding what makes a guest slow: exits by reason, port and LAPIC
 * register, and the split of wall time between KVM_RUN, HLT waits and the VMM's own handling.
 *
 * <p>Written only by its vCPU thread (plain fields, read after the vCPU stopped). Counting costs two
 * clock reads per exit, so it is off unless asked for ({@code dvmm run --exit-stats}).
 */
public final class ExitProfile {
    /** Base of the xAPIC page: exits there are counted per register. */
    public static final long LAPIC_BASE = 0xFEE0_0000L;
    private static final int REASONS = 64;

    final long[] byReason = new long[REASONS];
    // VMM time (KVM_RUN return to the next KVM_RUN, HLT waits excluded) spent after each kind of exit.
    final long[] nanosByReason = new long[REASONS];
    final long[] nanosByPort = new long[1 << 16];
    long lapicNanos;
    int lastReason = -1;
    int lastPort = -1;
    boolean lastLapic;
    long exitedAt;
    final long[] byPort = new long[1 << 16];
    final long[] byLapicRegister = new long[256];
    long otherMmio;
    long runNanos;
    long haltNanos;
    long totalNanos;

    void reason(int reason, long now) {
        int r = reason >= 0 && reason < REASONS ? reason : REASONS - 1;
        byReason[r]++;
        lastReason = r;
        lastPort = -1;
        lastLapic = false;
        exitedAt = now;
    }

    /** Before KVM_RUN: charges the time since the last exit to that exit's kind. */
    void entering(long now) {
        if (lastReason >= 0) {
            long d = now - exitedAt;
            nanosByReason[lastReason] += d;
            if (lastPort >= 0) {
                nanosByPort[lastPort] += d;
            }
            if (lastLapic) {
                lapicNanos += d;
            }
            lastReason = -1;
        }
    }

    /** HLT waits are reported apart: they are not VMM work. */
    void halted(long nanos) {
        haltNanos += nanos;
        exitedAt += nanos;
    }

    void port(int port) {
        byPort[port & 0xFFFF]++;
        lastPort = port & 0xFFFF;
    }

    void mmio(long addr) {
        if ((addr & ~0xFFFL) == LAPIC_BASE) {
            byLapicRegister[(int) ((addr & 0xFF0) >> 4)]++;
            lastLapic = true;
        } else {
            otherMmio++;
        }
    }

    /** Adds {@code other} into this one (to report a whole machine). */
    public ExitProfile add(ExitProfile other) {
        for (int i = 0; i < REASONS; i++) {
            byReason[i] += other.byReason[i];
        }
        for (int i = 0; i < byPort.length; i++) {
            byPort[i] += other.byPort[i];
            nanosByPort[i] += other.nanosByPort[i];
        }
        for (int i = 0; i < REASONS; i++) {
            nanosByReason[i] += other.nanosByReason[i];
        }
        lapicNanos += other.lapicNanos;
        for (int i = 0; i < byLapicRegister.length; i++) {
            byLapicRegister[i] += other.byLapicRegister[i];
        }
        otherMmio += other.otherMmio;
        runNanos += other.runNanos;
        haltNanos += other.haltNanos;
        totalNanos += other.totalNanos;
        return this;
    }

    public long exits() {
        long n = 0;
        for (long c : byReason) {
            n += c;
        }
        return n;
    }

    public long exits(int reason) { return byReason[reason]; }

    public long portExits(int port) { return byPort[port & 0xFFFF]; }

    /** Exits on the LAPIC register at offset {@code offset} (a multiple of 16). */
    public long lapicExits(int offset) { return byLapicRegister[(offset & 0xFF0) >> 4]; }

    public long runNanos() { return runNanos; }

    public long haltNanos() { return haltNanos; }

    /** A few lines: totals, time split, and the busiest reasons, ports and LAPIC registers. */
    public String report(String title) {
        StringBuilder b = new StringBuilder();
        long n = exits();
        double total = Math.max(1, totalNanos);
        b.append(String.format(Locale.ROOT, "%s: %,d exits in %.2f s of vCPU time: %.0f%% in KVM_RUN, %.0f%% halted, "
                        + "%.0f%% in the VMM (%.1f us per exit)%n", title, n, totalNanos / 1e9, 100 * runNanos / total,
                100 * haltNanos / total, 100 * (totalNanos - runNanos - haltNanos) / total,
                n == 0 ? 0.0 : (totalNanos - runNanos - haltNanos) / 1e3 / n));
        b.append("  by reason:");
        appendTop(b, byReason, 8, i -> reasonName(i));
        b.append(System.lineSeparator()).append("  VMM time after (us/exit):");
        appendAverage(b, nanosByReason, byReason, 8, i -> reasonName(i));
        b.append(System.lineSeparator()).append("  by port:");
        appendTop(b, byPort, 8, i -> String.format("0x%x", i));
        b.append(System.lineSeparator()).append("  VMM time after port I/O (us/exit):");
        appendAverage(b, nanosByPort, byPort, 6, i -> String.format("0x%x", i));
        long lapicExits = 0;
        for (long c : byLapicRegister) {
            lapicExits += c;
        }
        b.append(String.format(Locale.ROOT, " LAPIC %.1f", lapicExits == 0 ? 0.0 : lapicNanos / 1e3 / lapicExits));
        b.append(System.lineSeparator()).append("  by LAPIC register:");
        appendTop(b, byLapicRegister, 8, i -> String.format("0x%03x", i << 4));
        if (otherMmio > 0) {
            b.append(String.format(Locale.ROOT, " other MMIO %,d", otherMmio));
        }
        return b.append(System.lineSeparator()).toString();
    }

    private interface Label {
        String of(int index);
    }

    private static void appendTop(StringBuilder b, long[] counts, int limit, Label label) {
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < counts.length; i++) {
            if (counts[i] > 0) {
                order.add(i);
            }
        }
        order.sort((x, y) -> Long.compare(counts[y], counts[x]));
        if (order.isEmpty()) {
            b.append(" none");
        }
        for (int k = 0; k < Math.min(limit, order.size()); k++) {
            int i = order.get(k);
            b.append(String.format(Locale.ROOT, " %s %,d", label.of(i), counts[i]));
            if (k + 1 < Math.min(limit, order.size())) {
                b.append(',');
            }
        }
    }

    /** The kinds with the most total time, each as its mean time per exit in microseconds. */
    private static void appendAverage(StringBuilder b, long[] nanos, long[] counts, int limit, Label label) {
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < nanos.length; i++) {
            if (counts[i] > 0) {
                order.add(i);
            }
        }
        order.sort((x, y) -> Long.compare(nanos[y], nanos[x]));
        for (int k = 0; k < Math.min(limit, order.size()); k++) {
            int i = order.get(k);
            b.append(String.format(Locale.ROOT, " %s %.1f", label.of(i), nanos[i] / 1e3 / counts[i]));
            if (k + 1 < Math.min(limit, order.size())) {
                b.append(',');
            }
        }
    }

    static String reasonName(int reason) {
        return switch (reason) {
            case KvmConstants.KVM_EXIT_IO -> "io";
            case KvmConstants.KVM_EXIT_MMIO -> "mmio";
            case KvmConstants.KVM_EXIT_HLT -> "hlt";
            case KvmConstants.KVM_EXIT_INTR -> "intr";
            case KvmConstants.KVM_EXIT_IRQ_WINDOW_OPEN -> "irq-window";
            case KvmConstants.KVM_EXIT_SHUTDOWN -> "shutdown";
            case KvmConstants.KVM_EXIT_SYSTEM_EVENT -> "system-event";
            default -> "reason-" + reason;
        };
    }
}
