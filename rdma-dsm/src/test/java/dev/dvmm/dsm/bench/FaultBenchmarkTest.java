package dev.dvmm.dsm.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dvmm.dsm.UffdAvailable;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * `dvmm bench fault` end to end on a small scale: every kind of fault happens, every value read back is checked by
 * the benchmark itself (it throws on a wrong one), and the JSON names every measurement with a non-zero count.
 */
class FaultBenchmarkTest {
    @Test
    void fourNodesMeasureEveryKindOfFault() throws Exception {
        UffdAvailable.assume();
        ByteArrayOutputStream progress = new ByteArrayOutputStream();
        FaultBenchmark.Result r = FaultBenchmark.run(4, 100, 50, 0, "tcp", false,
                new PrintStream(progress, true, StandardCharsets.UTF_8));
        assertEveryMeasurement(r);
        assertTrue(r.toJson().contains("\"node_processes\": false"), r.toJson());
    }

    @Test
    void fourNodeProcessesMeasureEveryKindOfFault() throws Exception {
        UffdAvailable.assume();
        ByteArrayOutputStream progress = new ByteArrayOutputStream();
        FaultBenchmark.Result r = FaultBenchmark.run(4, 100, 50, 0, "tcp", false, true,
                new PrintStream(progress, true, StandardCharsets.UTF_8));
        assertEveryMeasurement(r);
        String json = r.toJson();
        assertTrue(json.contains("\"node_processes\": true") && json.contains("\"rtt_4k_between_processes\": true")
                && json.contains("\"ping_pong_node_processes\": true"), json);
        // The stages come from the merged traces of the four processes: each path names steps on several nodes.
        assertTrue(r.toTable().contains("one process per node"), r.toTable());
        Matcher stage = Pattern.compile("\"read\": \\[\"path taken by (\\d+) of (\\d+) faults").matcher(json);
        assertTrue(stage.find(), json);
        assertEquals(r.twoParty()[FaultBenchmark.READ].getTotalCount(), Long.parseLong(stage.group(2)), json);
        assertTrue(json.contains("O write-protected"), json);
        assertTrue(r.pingPongPagesPerSec() > 0 && r.incrementsPerSec() > 0, json);
    }

    @Test
    void roundsEachHaveTheirOwnRatioAndTheMedianIsReported() throws Exception {
        UffdAvailable.assume();
        ByteArrayOutputStream progress = new ByteArrayOutputStream();
        FaultBenchmark.Result r = FaultBenchmark.run(2, 100, 50, 0, "tcp", false, false, 3,
                new PrintStream(progress, true, StandardCharsets.UTF_8));
        assertEquals(3, r.rounds());
        double[] sorted = r.roundRatios().clone();
        java.util.Arrays.sort(sorted);
        assertTrue(sorted[0] > 0, java.util.Arrays.toString(sorted));
        assertEquals(sorted[1], r.ratio(), 1e-12);
        // Every round measured its own faults: the merged histograms hold all three.
        assertEquals(3 * r.pages(), r.twoParty()[FaultBenchmark.READ].getTotalCount());
        String json = r.toJson();
        assertTrue(json.contains("\"rounds\": 3") && json.contains("\"ratio_rounds\": ["), json);
        // Each round's ratio is made of that round's own p50s, listed beside it.
        Matcher perRound = Pattern.compile("\\{\"remote_read\": ([0-9.]+), \"local_uffd\": ([0-9.]+), \"rtt_4k\": ([0-9.]+)\\}")
                .matcher(json);
        for (int i = 0; i < 3; i++) {
            assertTrue(perRound.find(), json);
            double ratio = Double.parseDouble(perRound.group(1))
                    / (Double.parseDouble(perRound.group(2)) + Double.parseDouble(perRound.group(3)));
            assertEquals(r.roundRatios()[i], ratio, 0.02 * ratio, json);
        }
        assertTrue(r.toTable().contains("median of 3 rounds"), r.toTable());
        assertTrue(progress.toString(StandardCharsets.UTF_8).contains("round 3 of 3: local userfaultfd baseline"),
                progress.toString(StandardCharsets.UTF_8));
    }

    @Test
    void aNodeProcessThatDiesIsReportedWithItsRankAndLastStderrLine() throws Exception {
        ByteArrayOutputStream progress = new ByteArrayOutputStream();
        try (NodeProcesses procs = NodeProcesses.start(2, new PrintStream(progress, true, StandardCharsets.UTF_8))) {
            procs.checkClock(1);
            Process p = procs.process(1);
            p.destroyForcibly();
            p.waitFor();
            BenchmarkException e = assertThrows(BenchmarkException.class, () -> procs.call(1, "clock"));
            assertTrue(e.getMessage().startsWith("node rank 1 (pid " + p.pid() + ") exited with status "), e.getMessage());
            assertTrue(e.getMessage().endsWith("its last stderr line: fault benchmark node 1 (pid " + p.pid()
                    + ") started"), e.getMessage());
            procs.checkClock(0);
        }
    }

    @Test
    void anErrorInANodeProcessIsReportedWithItsRankAndTheNodeGoesOn() throws Exception {
        ByteArrayOutputStream progress = new ByteArrayOutputStream();
        try (NodeProcesses procs = NodeProcesses.start(2, new PrintStream(progress, true, StandardCharsets.UTF_8))) {
            BenchmarkException e = assertThrows(BenchmarkException.class,
                    () -> procs.all(2, "dsm 2 many 0 0 tcp false 0"));
            assertEquals("node rank 0: bad command 'dsm 2 many 0 0 tcp false 0': For input string: \"many\"",
                    e.getMessage());
            // Rank 1 got the command too; its error reply is read before the next one.
            e = assertThrows(BenchmarkException.class, () -> procs.await(1, "dsm"));
            assertTrue(e.getMessage().startsWith("node rank 1: bad command"), e.getMessage());
            e = assertThrows(BenchmarkException.class, () -> procs.call(1, "pass 0 measured"));
            assertTrue(e.getMessage().startsWith("node rank 1: no running DSM node"), e.getMessage());
            procs.checkClock(1);
        }
    }

    private static void assertEveryMeasurement(FaultBenchmark.Result r) {
        String json = r.toJson();
        for (String key : new String[] {"remote_read_fault_us", "remote_write_fault_us", "remote_write_miss_fault_us",
            "remote_clean_read_fault_us", "remote_clean_read_3party_fault_us", "remote_read_3party_fault_us",
            "remote_write_3party_fault_us", "remote_write_miss_3party_fault_us", "local_uffd_fault_us", "rtt_4k_us", "host_write_protect_us"}) {
            Matcher m = Pattern.compile("\"" + key + "\": \\{\"p50\": ([0-9.]+), \"p99\": [0-9.]+, \"count\": (\\d+)\\}")
                    .matcher(json);
            assertTrue(m.find(), key + " missing from " + json);
            assertTrue(Long.parseLong(m.group(2)) > 0 && Double.parseDouble(m.group(1)) > 0, key + " is empty: " + json);
        }
        assertTrue(r.toTable().contains("remote read of a clean page, 3-party"), r.toTable());
    }
}
