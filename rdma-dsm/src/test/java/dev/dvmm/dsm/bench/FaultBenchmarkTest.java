package dev.dvmm.dsm.bench;

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
