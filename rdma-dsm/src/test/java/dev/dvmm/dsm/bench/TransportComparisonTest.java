package dev.dvmm.dsm.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.dvmm.bindings.Ucp;
import java.nio.file.Files;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.HdrHistogram.Histogram;
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

    private static TransportComparison.Measured round(String name, long p50Micros) {
        Histogram h = new Histogram(TimeUnit.SECONDS.toNanos(10), 3);
        h.recordValueWithCount(p50Micros * 1000, 100);
        return new TransportComparison.Measured(name, h, 1000, new double[] {p50Micros});
    }

    private static TransportComparison.Perftest floor(double roundTripMicros) {
        return new TransportComparison.Perftest("tcp", roundTripMicros / 2, roundTripMicros / 2, 1, null);
    }

    @Test
    void eachRoundIsComparedWithTheFloorOfTheSameRound() {
        // The host drifts: the second round is twice as slow for both sides. Per round the ratio is 1.2, 1.2, 1.3;
        // the merged p50 over the median floor would say 2.4 instead.
        TransportComparison.Measured ucx = TransportComparison.Measured.merge(List.of(round("ucx", 24), round("ucx", 24),
                round("ucx", 13)));
        List<TransportComparison.Perftest> floors = List.of(floor(20), floor(20), floor(10));
        TransportComparison.Result r = new TransportComparison.Result(100, 0, 16, "tcp", List.of(ucx), null,
                TransportComparison.medianRound(floors), null, null, null, floors);
        String json = r.toJson();
        assertTrue(json.contains("\"p50_over_perftest\": 1.200, \"p50_over_perftest_rounds\": [1.200, 1.200, 1.300]"),
                json);
        assertTrue(json.contains("\"rounds\": 3"), json);
        assertTrue(r.toTable().contains("1.200, 1.200, 1.300"), r.toTable());
        assertEquals(20, TransportComparison.medianRound(floors).roundTripP50Micros(), 1e-9);
    }

    @Test
    void aFailedFloorRoundLeavesNoRatio() {
        TransportComparison.Perftest failed = new TransportComparison.Perftest("tcp", 0, 0, 0, "did not run");
        List<TransportComparison.Perftest> floors = List.of(floor(20), failed);
        TransportComparison.Result r = new TransportComparison.Result(100, 0, 16, "tcp",
                List.of(TransportComparison.Measured.merge(List.of(round("tcp", 30), round("tcp", 31)))), null,
                TransportComparison.medianRound(floors), null, null, null, floors);
        assertFalse(r.toJson().contains("p50_over_perftest\""), r.toJson());
        assertTrue(r.toTable().contains("did not run"), r.toTable());
    }

    @Test
    void medianOfEvenAndOddCounts() {
        assertEquals(2.0, TransportComparison.median(new double[] {3, 1, 2}), 1e-12);
        assertEquals(2.5, TransportComparison.median(new double[] {4, 1, 3, 2}), 1e-12);
        assertTrue(Double.isNaN(TransportComparison.median(new double[0])));
    }
}
