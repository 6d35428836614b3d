package dev.dvmm.dsm.node;

import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;
import org.HdrHistogram.Histogram;

/**
 * One node's DSM counters and fault-service latency histograms. Written under the node's protocol
 * lock; HdrHistogram records without allocating.
 */
public final class DsmStats {
    long readFaults;
    long writeFaults;
    long wpFaults;
    long remoteFetches;
    long oneSidedReads;
    long zeroFills;
    long upgrades;
    long remaps;
    long invalidationsSent;
    long invalidationsReceived;
    long messagesSent;
    long messagesReceived;
    long bytesSent;
    long bytesReceived;
    long rejectedMessages;
    /** Written without the lock, by the thread that unblocked the copy (see DsmPages.copyOutMapped). */
    final AtomicLong copyRescues = new AtomicLong();
    final Histogram readLatencyNanos = new Histogram(3_600_000_000_000L, 3);
    final Histogram writeLatencyNanos = new Histogram(3_600_000_000_000L, 3);

    public long readFaults() { return readFaults; }

    public long writeFaults() { return writeFaults; }

    public long remoteFetches() { return remoteFetches; }

    /** Remote fetches done as one-sided reads of the owner's memory (a subset of {@link #remoteFetches}). */
    public long oneSidedReads() { return oneSidedReads; }

    public long zeroFills() { return zeroFills; }

    /** Faults on pages this node held but had no longer mapped (e.g. the kernel reclaimed the mapping), mapped back. */
    public long remaps() { return remaps; }

    /**
     * Copies of a page's data out of the guest mapping that faulted (the page was held but not mapped, e.g. reclaimed)
     * and were unblocked by mapping the page back from another thread.
     */
    public long copyRescues() { return copyRescues.get(); }

    public long invalidationsSent() { return invalidationsSent; }

    public long invalidationsReceived() { return invalidationsReceived; }

    public long rejectedMessages() { return rejectedMessages; }

    public Histogram readLatency() { return readLatencyNanos; }

    public Histogram writeLatency() { return writeLatencyNanos; }

    private static String hist(Histogram h) {
        return String.format(Locale.ROOT, "{\"count\": %d, \"p50_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f}",
                h.getTotalCount(), h.getValueAtPercentile(50) / 1e3, h.getValueAtPercentile(99) / 1e3, h.getMaxValue() / 1e3);
    }

    public String toJson(int rank) {
        return String.format(Locale.ROOT, "{\"rank\": %d, \"read_faults\": %d, \"write_faults\": %d, \"wp_faults\": %d, "
                + "\"remote_fetches\": %d, \"one_sided_reads\": %d, \"zero_fills\": %d, \"upgrades\": %d, \"remaps\": %d, \"copy_rescues\": %d, \"invalidations_sent\": %d, "
                + "\"invalidations_received\": %d, \"messages_sent\": %d, \"messages_received\": %d, \"bytes_sent\": %d, "
                + "\"bytes_received\": %d, \"rejected_messages\": %d, \"read_fault_latency\": %s, \"write_fault_latency\": %s}",
                rank, readFaults, writeFaults, wpFaults, remoteFetches, oneSidedReads, zeroFills, upgrades, remaps,
                copyRescues.get(), invalidationsSent, invalidationsReceived, messagesSent, messagesReceived, bytesSent, bytesReceived, rejectedMessages,
                hist(readLatencyNanos), hist(writeLatencyNanos));
    }

    public String toTable(int rank) {
        return String.format(Locale.ROOT, "node %d DSM: faults read %d write %d (wp %d), remote fetches %d (one-sided %d), "
                + "zero fills %d, upgrades %d, remaps %d (copy rescues %d), invalidations sent %d received %d, bytes sent %d received %d, "
                + "rejected %d%n"
                + "node %d fault service: read p50 %.1f us p99 %.1f us max %.1f us (%d); write p50 %.1f us p99 %.1f us "
                + "max %.1f us (%d)", rank, readFaults, writeFaults, wpFaults, remoteFetches, oneSidedReads, zeroFills, upgrades,
                remaps, copyRescues.get(), invalidationsSent, invalidationsReceived, bytesSent, bytesReceived, rejectedMessages, rank,
                readLatencyNanos.getValueAtPercentile(50) / 1e3, readLatencyNanos.getValueAtPercentile(99) / 1e3,
                readLatencyNanos.getMaxValue() / 1e3, readLatencyNanos.getTotalCount(),
                writeLatencyNanos.getValueAtPercentile(50) / 1e3, writeLatencyNanos.getValueAtPercentile(99) / 1e3,
                writeLatencyNanos.getMaxValue() / 1e3, writeLatencyNanos.getTotalCount());
    }
}
