package dev.dvmm.dsm.bench;

import dev.dvmm.dsm.node.FaultTrace;
import dev.dvmm.dsm.protocol.MessageType;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Splits the benchmark's faults into stages from a {@link FaultTrace}: for each measured access, the steps of the
 * faulting page on every node between the access and its completion, named by role (R requester, H home, O owner or
 * sharer); the most frequent sequence, and every other taken by at least a tenth of the faults, is reported with the
 * median time of each step.
 */
final class FaultStages {
    private FaultStages() {}

    /** Lines "step: median us" of the frequent paths of faults of {@code kind}, or null if there were none. */
    static String[] frequentPaths(FaultTrace trace, int nodes, int kind, boolean threeParty) {
        Map<String, List<long[]>> byPath = new HashMap<>();
        Map<String, List<String>> labelsOf = new HashMap<>();
        int size = trace.size();
        int total = 0;
        for (int i = 0; i < size; i++) {
            if (trace.event(i) != FaultTrace.ACCESS || trace.detail(i) != kind) {
                continue;
            }
            int page = trace.page(i);
            if (FaultBenchmark.threeParty(nodes, page) != threeParty) {
                continue;
            }
            List<Integer> steps = new ArrayList<>();
            steps.add(i);
            for (int j = i + 1; j < size; j++) {
                if (trace.page(j) != page) {
                    continue;
                }
                steps.add(j);
                if (trace.event(j) == FaultTrace.ACCESS_DONE) {
                    break;
                }
            }
            if (trace.event(steps.get(steps.size() - 1)) != FaultTrace.ACCESS_DONE) {
                continue;
            }
            // The trace index orders the claims of slots; the timestamps order the steps.
            steps.sort((a, b) -> Long.compare(trace.time(a), trace.time(b)));
            StringBuilder key = new StringBuilder();
            List<String> labels = new ArrayList<>();
            long[] times = new long[steps.size()];
            for (int s = 0; s < steps.size(); s++) {
                int e = steps.get(s);
                String label = label(trace, e, roles(nodes, kind, page, trace.node(e)));
                labels.add(label);
                key.append(label).append('|');
                times[s] = trace.time(e);
            }
            byPath.computeIfAbsent(key.toString(), k -> new ArrayList<>()).add(times);
            labelsOf.putIfAbsent(key.toString(), labels);
            total++;
        }
        if (total == 0) {
            return null;
        }
        // The most frequent path, and every other taken by at least a tenth of the faults.
        List<String> paths = new ArrayList<>(byPath.keySet());
        paths.sort((a, b) -> Integer.compare(byPath.get(b).size(), byPath.get(a).size()));
        List<String> lines = new ArrayList<>();
        for (String path : paths) {
            List<long[]> runs = byPath.get(path);
            if (runs.size() * 10 < total && !lines.isEmpty()) {
                break;
            }
            List<String> labels = labelsOf.get(path);
            double[] gap = new double[runs.size()];
            for (int r = 0; r < runs.size(); r++) {
                long[] t = runs.get(r);
                gap[r] = t[t.length - 1] - t[0];
            }
            lines.add(String.format(Locale.ROOT, "path taken by %d of %d faults, total %.1f", runs.size(), total,
                    median(gap) / 1e3));
            for (int s = 1; s < labels.size(); s++) {
                for (int r = 0; r < runs.size(); r++) {
                    gap[r] = runs.get(r)[s] - runs.get(r)[s - 1];
                }
                lines.add(String.format(Locale.ROOT, "  %s -> %s: %.1f", labels.get(s - 1), labels.get(s),
                        median(gap) / 1e3));
            }
        }
        return lines.toArray(new String[0]);
    }

    private static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        return sorted[sorted.length / 2];
    }

    /** The roles of {@code node} in a fault of {@code kind} on {@code page}: some of R, H, O. */
    private static String roles(int nodes, int kind, int page, int node) {
        int home = page % nodes;
        int writer = FaultBenchmark.firstWriter(nodes, page);
        int reader = FaultBenchmark.reader(nodes, page);
        int requester = kind == FaultBenchmark.WRITE_MISS ? writer
                : kind == FaultBenchmark.CLEAN_READ ? FaultBenchmark.secondReader(nodes, page) : reader;
        int other = kind == FaultBenchmark.WRITE_MISS ? reader : writer;
        StringBuilder s = new StringBuilder();
        if (node == requester) {
            s.append('R');
        }
        if (node == home) {
            s.append('H');
        }
        if (node == other) {
            s.append('O');
        }
        return s.isEmpty() ? "n" + node : s.toString();
    }

    private static String label(FaultTrace trace, int i, String role) {
        return switch (trace.event(i)) {
            case FaultTrace.ACCESS -> "access";
            case FaultTrace.ACCESS_DONE -> "access done";
            case FaultTrace.FAULT -> role + " fault read";
            case FaultTrace.FAULT_LOCKED -> role + " fault locked";
            case FaultTrace.RECEIVED -> role + " got " + MessageType.name(trace.detail(i));
            case FaultTrace.RECEIVED_LOCKED -> role + " locked " + MessageType.name(trace.detail(i));
            case FaultTrace.SENT -> role + " sent " + MessageType.name(trace.detail(i));
            case FaultTrace.INSTALLED -> role + " installed";
            case FaultTrace.PROTECTED -> role + (trace.detail(i) == 2 ? " unmapped" : " write-protected");
            case FaultTrace.PUNCHED -> role + " punched";
            case FaultTrace.COPIED -> role + " copied page";
            case FaultTrace.HANDLED -> role + " handled " + MessageType.name(trace.detail(i));
            case FaultTrace.RESOLVED -> role + " woke faulter";
            case FaultTrace.READ_STARTED -> role + " started one-sided read";
            case FaultTrace.READ_DONE -> role + " one-sided read done";
            default -> role + " event " + trace.event(i);
        };
    }
}
