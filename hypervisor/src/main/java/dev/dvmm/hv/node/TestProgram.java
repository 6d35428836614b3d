package dev.dvmm.hv.node;

import dev.dvmm.boot.testguest.TestGuest;

/** The long-mode test programs a cluster can run, with their test ids. */
public enum TestProgram {
    HELLO(TestGuest.T_HELLO),
    COUNTERS(TestGuest.T_COUNTERS),
    PATTERN(TestGuest.T_PATTERN),
    HANDOFF(TestGuest.T_HANDOFF);

    private final int testId;

    TestProgram(int testId) {
        this.testId = testId;
    }

    public int testId() { return testId; }
}
