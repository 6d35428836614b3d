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
    record Result(CoherenceModel.Spec spec, long states, long transitions, long endStates, int depth, long millis,
                  String violation, String trace) {
        String summary() {
            return spec + ": " + states + " states, " + transitions + " transitions, " + endStates
                + " quiescent end states, depth " + depth + ", " + millis + " ms"
                + (violation == null ? ", no violation" : ", VIOLATION " + violation);
        }
    }

    private StateSpaceChecker() {
    }

    /** Manual runs: {@code nodes pages opsPerNode holdNanos [mutations [progress [oneSidedReads]]]}; prints the summary and any trace. */
    public static void main(String[] args) {
        CoherenceModel.Spec spec = new CoherenceModel.Spec(Integer.parseInt(args[0]), Integer.parseInt(args[1]),
            Integer.parseInt(args[2]), Long.parseLong(args[3]), args.length > 4 ? Integer.parseInt(args[4]) : 0,
            args.length > 6 && Boolean.parseBoolean(args[6]));
        Result result = check(spec, args.length > 5 && Boolean.parseBoolean(args[5]));
        System.out.println(result.summary());
        if (result.trace() != null) {
            System.out.println(result.trace());
        }
    }

    static Result check(CoherenceModel.Spec spec) {
        return check(spec, false);
    }

    /**
     * Explores {@code spec}. With {@code progress}, also keeps the state graph and checks that from every reachable
     * state some quiescent end state is still reachable (no livelock trap); that costs 8 bytes per transition.
     */
    static Result check(CoherenceModel.Spec spec, boolean progress) {
        long start = System.nanoTime();
        CoherenceModel model = new CoherenceModel(spec);
        byte[] initial = model.initialState();
        FingerprintMap visited = new FingerprintMap(1 << 16);
        visited.putIfAbsent(model.encode().fingerprint(), 0);
        int[] edgeFrom = new int[progress ? 1 << 16 : 0];
        int[] edgeTo = new int[edgeFrom.length];
        int edges = 0;
        boolean[] isEnd = new boolean[progress ? 1 << 16 : 0];
        int[] parent = new int[1 << 16];
        int[] via = new int[1 << 16];
        int ids = 1;
        parent[0] = -1;
        StateQueue frontier = new StateQueue();
        frontier.add(0, 0, model.encode());
        int[] enabled = new int[model.maxTransitions()];
        long transitions = 0;
        long endStates = 0;
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
                        transitions, endStates, depth, start);
                }
                endStates++;
                if (progress) {
                    if (currentId >= isEnd.length) {
                        isEnd = Arrays.copyOf(isEnd, Math.max(isEnd.length * 2, currentId + 1));
                    }
                    isEnd[currentId] = true;
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
                            visited.size(), transitions, endStates, depth + 1, start);
                    }
                    StateWriter successor = model.encode();
                    int known = visited.putIfAbsent(successor.fingerprint(), ids);
                    if (progress) {
                        if (edges == edgeFrom.length) {
                            edgeFrom = Arrays.copyOf(edgeFrom, edges * 2);
                            edgeTo = Arrays.copyOf(edgeTo, edges * 2);
                        }
                        edgeFrom[edges] = currentId;
                        edgeTo[edges] = known == -1 ? ids : known;
                        edges++;
                    }
                    if (known == -1) {
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
        if (progress) {
            int trapped = firstStateThatCannotFinish(ids, edgeFrom, edgeTo, edges, isEnd);
            if (trapped != -1) {
                return failure(spec, model, initial, parent, via, trapped, -1,
                    "livelock: from this state no run can complete all ops", visited.size(), transitions, endStates,
                    depth, start);
            }
        }
        return new Result(spec, visited.size(), transitions, endStates, depth,
            (System.nanoTime() - start) / 1_000_000, null, null);
    }

    /** Backward search from the end states over the reversed graph; returns the lowest id not reached, or -1. */
    static int firstStateThatCannotFinish(int states, int[] from, int[] to, int edges, boolean[] isEnd) {
        int[] firstIn = new int[states + 1];
        for (int e = 0; e < edges; e++) {
            firstIn[to[e] + 1]++;
        }
        for (int s = 0; s < states; s++) {
            firstIn[s + 1] += firstIn[s];
        }
        int[] predecessors = new int[edges];
        int[] fill = Arrays.copyOf(firstIn, states);
        for (int e = 0; e < edges; e++) {
            predecessors[fill[to[e]]++] = from[e];
        }
        boolean[] canFinish = new boolean[states];
        int[] stack = new int[states];
        int top = 0;
        for (int s = 0; s < states && s < isEnd.length; s++) {
            if (isEnd[s]) {
                canFinish[s] = true;
                stack[top++] = s;
            }
        }
        while (top > 0) {
            int s = stack[--top];
            for (int i = firstIn[s]; i < firstIn[s + 1]; i++) {
                int p = predecessors[i];
                if (!canFinish[p]) {
                    canFinish[p] = true;
                    stack[top++] = p;
                }
            }
        }
        for (int s = 0; s < states; s++) {
            if (!canFinish[s]) {
                return s;
            }
        }
        return -1;
    }

    private static Result failure(CoherenceModel.Spec spec, CoherenceModel model, byte[] initial, int[] parent,
                                  int[] via, int id, int lastCode, String violation, long states, long transitions,
                                  long endStates, int depth, long start) {
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
        return new Result(spec, states, transitions, endStates, depth, (System.nanoTime() - start) / 1_000_000,
            violation, trace.toString());
    }
}
