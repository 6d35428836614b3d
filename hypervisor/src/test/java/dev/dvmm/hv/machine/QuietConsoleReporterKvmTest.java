package dev.dvmm.hv.machine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dvmm.boot.kernel.KernelSymbols;
import dev.dvmm.boot.testguest.TestGuest;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The status line printed while a guest is silent: it names where each running vCPU is. */
@Tag("kvm")
class QuietConsoleReporterKvmTest {
    @BeforeEach
    void needKvm() {
        KvmAvailable.assume();
    }

    @Test
    void aSilentSpinningGuestGetsOneLineWithEachVcpusLocation() throws Exception {
        try (TestGuestSession s = TestGuestSession.longMode(2, 16 << 20, TestGuest.T_SPIN, 0, null)) {
            Machine m = s.machine();
            KernelSymbols symbols = KernelSymbols.parse(new StringReader("0000000000000000 T guest_image\n"));
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
            long silentSince = System.nanoTime();
            QuietConsoleReporter reporter = new QuietConsoleReporter(() -> silentSince, m, symbols, out, 200_000_000L);
            m.start();
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (bytes.size() == 0 && System.nanoTime() < deadline) {
                reporter.run();
                Thread.sleep(50);
            }
            String line = bytes.toString(StandardCharsets.UTF_8).strip();
            Pattern vcpu = Pattern.compile("vCPU (\\d) at guest_image\\+0x([0-9a-f]+) [\\d,]+ exits/s");
            Matcher matcher = vcpu.matcher(line);
            int found = 0;
            while (matcher.find()) {
                assertEquals(found, Integer.parseInt(matcher.group(1)), line);
                long rip = Long.parseLong(matcher.group(2), 16);
                assertTrue(rip >= TestGuest.LONG_MODE.loadAddress() && rip < TestGuest.DATA,
                        "RIP 0x" + Long.toHexString(rip) + " is in the test guest's code");
                found++;
            }
            assertEquals(2, found, "one location per vCPU in: " + line);
            assertTrue(line.startsWith("dvmm: [") && line.contains("no console output for"), line);
            assertEquals(1, line.lines().count(), "one line per report");
            m.stopAll(0);
        }
    }
}
