package dev.dvmm.dsm.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.dvmm.bindings.Ucp;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The ucx_perftest side of {@code dvmm bench transport}: its output is read right, failures are said. */
class TransportComparisonTest {
    /** The last lines of {@code ucx_perftest 127.0.0.1 -t tag_lat -s 4096 -n 20000} (UCX 1.13.1, Debian 12). */
    private static final String PERFTEST_OUTPUT = """
            |  Stage       | # iterations | 50.0%ile | average | overall |  average |  overall |  average  |  overall  |
            +--------------+--------------+----------+---------+---------+----------+----------+-----------+-----------+
            Final:                 20000      5.382    33.192    69.262      117.69      56.40       30128       14438
            """;

    @Test
    void theFinalLineGivesOneWayLatencyAndTheOverallRate() {
        TransportComparison.Perftest p = TransportComparison.parsePerftest("tcp", PERFTEST_OUTPUT);
        assertNull(p.error());
        assertEquals(5.382, p.oneWayP50Micros(), 1e-9);
        assertEquals(33.192, p.oneWayAverageMicros(), 1e-9);
        assertEquals(14438, p.messagesPerSecond(), 1e-9);
        assertEquals(2 * 5.382, p.roundTripP50Micros(), 1e-9);
    }

    @Test
    void outputWithoutAFinalLineIsAnError() {
        assertFalse(TransportComparison.parsePerftest("tcp", "Segmentation fault\n").ran());
        assertFalse(TransportComparison.parsePerftest("tcp", "Final: 20000 x y\n").ran());
    }

    @Test
    void aRealPerftestRunIsMeasured() {
        boolean installed = Ucp.isInstalled() && Files.isExecutable(Path.of("/usr/bin/ucx_perftest"));
        if (!installed) {
            System.out.println("SKIPPED: UCX or ucx_perftest (apt-get install ucx-utils) is not installed");
        }
        assumeTrue(installed, "UCX or ucx_perftest is not installed");
        TransportComparison.Perftest p = TransportComparison.perftest("tcp", 2000, 200);
        assertTrue(p.ran(), p.error());
        assertTrue(p.oneWayP50Micros() > 0 && p.messagesPerSecond() > 0, p.toString());
    }
}
