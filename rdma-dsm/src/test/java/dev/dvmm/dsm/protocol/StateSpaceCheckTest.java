package dev.dvmm.dsm.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Exhaustive state-space check of the coherence protocol on small configurations (rdma-dsm/PROTOCOL.md). With the
 * hold-time guard on, every consultation of the guard is explored both ways, which includes every hold-off run
 * (hold passed at every consultation), so the larger configurations run with hold on only.
 */
class StateSpaceCheckTest {
    @ParameterizedTest(name = "{0} nodes x {1} pages, {2} ops/node, hold {3} ns, progress check {4}")
    @CsvSource({
        "2, 1, 2, 0, true", "2, 1, 2, 1, true",
        "2, 2, 2, 0, true", "2, 2, 2, 1, true",
        "3, 1, 2, 0, true", "3, 1, 2, 1, true",
        "2, 1, 3, 1, true", "2, 2, 3, 1, true", "3, 1, 3, 1, true",
        "3, 2, 2, 1, false",
    })
    void everyInterleavingKeepsTheInvariants(int nodes, int pages, int ops, long hold, boolean progress) {
        assertCorrect(new CoherenceModel.Spec(nodes, pages, ops, hold, 0), progress);
    }

    /**
     * One-sided reads (GRANT_READ_REMOTE): the requester reads the owner's copy while the home waits for its DONE.
     * Needs a clean owner that is not the home and a reader without a copy: 3 nodes (with 2 the state space is the
     * same as without one-sided reads).
     */
    @ParameterizedTest(name = "one-sided reads: {0} nodes x {1} pages, {2} ops/node, hold {3} ns, progress check {4}")
    @CsvSource({
        "3, 1, 2, 0, true", "3, 1, 3, 1, true",
        "3, 2, 2, 1, false",
    })
    void oneSidedReadsKeepTheInvariants(int nodes, int pages, int ops, long hold, boolean progress) {
        assertCorrect(new CoherenceModel.Spec(nodes, pages, ops, hold, 0, true), progress);
    }

    @Test
    void aDoneSentBeforeTheOneSidedReadFinishedIsCaught() {
        StateSpaceChecker.Result result = StateSpaceChecker.check(
            new CoherenceModel.Spec(3, 1, 2, 0, ProtocolEngine.MUTATE_DONE_BEFORE_READ, true));
        System.out.println("[dsm-protocol check] " + result.summary() + "\n" + result.trace());
        assertNotNull(result.violation(), "the checker missed a requester that ends the transaction too early");
        assertTrue(result.trace().contains("starts a one-sided read"), result.trace());
    }

    /** About 40 s of CPU and 1 GB of heap: run with -Ddvmm.excludedGroups=lab -Dgroups=slow. */
    @Tag("slow")
    @ParameterizedTest(name = "{0} nodes x {1} pages, {2} ops/node, hold {3} ns")
    @CsvSource({"4, 1, 2, 1"})
    void largerConfigurationsKeepTheInvariants(int nodes, int pages, int ops, long hold) {
        assertCorrect(new CoherenceModel.Spec(nodes, pages, ops, hold, 0), false);
    }

    @Test
    void theProgressCheckFindsAStateThatCanOnlyCycle() {
        // 0 -> 1 -> 2 (end); 0 -> 3 <-> 4: states 3 and 4 can never finish.
        int[] from = {0, 1, 0, 3, 4};
        int[] to = {1, 2, 3, 4, 3};
        boolean[] isEnd = {false, false, true, false, false};
        assertEquals(3, StateSpaceChecker.firstStateThatCannotFinish(5, from, to, 5, isEnd));
        int[] escape = {0, 1, 0, 3, 4, 4};
        int[] escapeTo = {1, 2, 3, 4, 3, 2};
        assertEquals(-1, StateSpaceChecker.firstStateThatCannotFinish(5, escape, escapeTo, 6, isEnd));
    }

    @ParameterizedTest(name = "mutation {0} is caught")
    @CsvSource({
        "" + ProtocolEngine.MUTATE_FORGET_ONE_ACK,
        "" + ProtocolEngine.MUTATE_SKIP_DOWNGRADE,
        "" + ProtocolEngine.MUTATE_STALE_ZERO_FILL,
        "" + ProtocolEngine.MUTATE_FORGET_ONE_DIRECT_ACK,
    })
    void aBrokenProtocolIsCaught(int mutation) {
        StateSpaceChecker.Result result = StateSpaceChecker.check(new CoherenceModel.Spec(3, 1, 2, 0, mutation));
        System.out.println("[dsm-protocol check] " + result.summary() + "\n" + result.trace());
        assertNotNull(result.violation(), "the checker missed a deliberately broken protocol");
        assertTrue(result.trace().contains("VIOLATION: " + result.violation()), result.trace());
    }

    private static void assertCorrect(CoherenceModel.Spec spec, boolean progress) {
        StateSpaceChecker.Result result = StateSpaceChecker.check(spec, progress);
        System.out.println("[dsm-protocol check] " + result.summary());
        assertNull(result.violation(), result.trace());
        assertTrue(result.states() > 1, "the checker explored nothing");
        assertTrue(result.endStates() > 0, "no run ever completed, so the deadlock check saw nothing");
    }
}
