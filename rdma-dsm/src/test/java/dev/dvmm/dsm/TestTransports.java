package dev.dvmm.dsm;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.dvmm.bindings.Ucp;

/** What DSM tests that run over both transports ("tcp" or "ucx") need to know about this machine. */
public final class TestTransports {
    private TestTransports() {}

    /** Skips the test, with the reason printed, when {@code kind} cannot run on this machine. */
    public static void assumeAvailable(String kind) {
        boolean available = !"ucx".equals(kind) || Ucp.isInstalled();
        String why = "UCX is not installed (apt-get install libucx0): skipping the UCX case";
        if (!available) {
            System.out.println("SKIPPED: " + why);
        }
        assumeTrue(available, why);
    }
}
