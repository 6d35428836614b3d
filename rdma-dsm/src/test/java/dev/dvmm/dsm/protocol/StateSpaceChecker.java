package dev.dvmm.dsm.protocol;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Breadth-first exploration of every interleaving of a {@link CoherenceModel}: every vCPU op choice, every order of
 * message deliveries across channels (FIFO within one), every timer firing, and hold-on / hold-passed for each
 * event where the hold-time guard is consulted. States are deduplicated by a 64-bit fingerprint of their canonical
 * encoding. Breadth-first order makes a reported counterexample a shortest one.
 */
final class StateSpaceChecker {
    record Result(CoherenceModel.Spec spec, long states, long transitions, int depth, long millis, String violation,
                  String trace) {
        String summary() {
            return spec + ": " + states + " states, " + transitions + " transitions, depth " + depth + ", "
                + millis + " ms" + (violation == null ? ", no violation" : ", VIOLATION " + violation);
        }
    }

    private StateSpaceChecker() {
    }

    /** Manual runs: {@code nodes pages opsPerNode holdNanos [mutations]}; prints the summary and any trace. */
    public static void main(String[] args) {
        CoherenceModel.Spec spec = new CoherenceModel.Spec(Integer.parseInt(args[0]), Integer.parseInt(args[1]),
            Integer.parseInt(args[2]), Long.parseLong(args[3]), args.length > 4 ? Integer.parseInt(args[4]) : 0);
        Result result = check(spec);
        System.out.println(result.summary());
        if (result.trace() != null) {
            System.out.println(result.trace());
        }
    }

    static Result check(CoherenceModel.Spec spec) {
        long start = System.nanoTime();
        CoherenceModel model = new CoherenceModel(spec);
        byte[] initial = model.initialState();
        FingerprintSet visited = new FingerprintSet(1 << 16);
        visited.add(model.encode().fingerprint());
        int[] parent = new int[1 << 16];
        int[] via = new int[1 << 16];
        int ids = 1;
        parent[0] = -1;
        StateQueue frontier = new StateQueue();
        frontier.add(0, 0, model.encode());
        int[] enabled = new int[model.maxTransitions()];
        long transitions = 0;
        int depth = 0;
        boolean hold = spec.holdNanos() > 0;
        while (!frontier.isEmpty()) {
            frontier.poll();
            int currentId = frontier.id();
            int currentDepth = frontier.depth();
            byte[] current = frontier.state();
            int currentLength = frontier.length();
            depth = Math.max(depth, currentDepth);
            model.decode(current, currentLength);
            int count = model.enabled(enabled);
            if (count == 0) {
                String stuck = model.checkQuiescent();
                if (stuck != null) {
                    return failure(spec, model, initial, parent, via, currentId, -1, stuck, visited.size(),
                        transitions, depth, start);
                }
            }
            boolean fresh = true;
            for (int i = 0; i < count; i++) {
                for (int variant = 0; variant < 2; variant++) {
                    int code = enabled[i] | variant;
                    if (!fresh) {
                        model.decode(current, currentLength);
                    }
                    fresh = false;
                    long deferralsBefore = model.deferralCount();
                    String violation = model.apply(code);
                    boolean holdMattered = model.holdMattered(deferralsBefore);
                    if (violation == null) {
                        violation = model.checkInvariants();
                    }
                    transitions++;
                    if (violation != null) {
                        return failure(spec, model, initial, parent, via, currentId, code, violation,
                            visited.size(), transitions, depth + 1, start);
                    }
                    StateWriter successor = model.encode();
                    if (visited.add(successor.fingerprint())) {
                        if (ids == parent.length) {
                            parent = Arrays.copyOf(parent, ids * 2);
                            via = Arrays.copyOf(via, ids * 2);
                        }
                        parent[ids] = currentId;
                        via[ids] = code;
                        frontier.add(ids, currentDepth + 1, successor);
                        ids++;
                    }
                    // Hold-passed differs from hold-on only where an engine consulted the guard (and deferred).
                    if (!hold || !holdMattered) {
                        break;
                    }
                }
            }
        }
        return new Result(spec, visited.size(), transitions, depth, (System.nanoTime() - start) / 1_000_000, null,
            null);
    }

    private static Result failure(CoherenceModel.Spec spec, CoherenceModel model, byte[] initial, int[] parent,
                                  int[] via, int id, int lastCode, String violation, long states, long transitions,
                                  int depth, long start) {
        List<Integer> codes = new ArrayList<>();
        if (lastCode != -1) {
            codes.add(lastCode);
        }
        for (int s = id; parent[s] != -1; s = parent[s]) {
            codes.add(via[s]);
        }
        StringBuilder trace = new StringBuilder("counterexample (" + spec + "), " + codes.size() + " steps:\n");
        model.decode(initial);
        model.startLog();
        for (int k = codes.size() - 1, step = 1; k >= 0; k--, step++) {
            String stepViolation = model.apply(codes.get(k));
            trace.append(String.format("%3d. %s%n", step, model.takeLog()));
            if (stepViolation != null) {
                trace.append("     -> ").append(stepViolation).append('\n');
            }
        }
        trace.append("VIOLATION: ").append(violation).append("\nfinal state:\n").append(model.dump());
        return new Result(spec, states, transitions, depth, (System.nanoTime() - start) / 1_000_000, violation,
            trace.toString());
    }
}
