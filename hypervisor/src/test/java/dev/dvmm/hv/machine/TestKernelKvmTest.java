package dev.dvmm.hv.machine;

import dev.dvmm.boot.kernel.KernelFile;
import dev.dvmm.boot.linux.KernelCommandLine;
import dev.dvmm.boot.smp.SmpEnumeration;
import java.io.InputStream;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The SMP test kernel booted through the real loader on the userspace LAPIC/IOAPIC: APs started with
 * INIT/SIPI, IPIs between every pair, LAPIC timer, exact counters and the litmus tests.
 */
@Tag("kvm")
class TestKernelKvmTest {
    @BeforeEach
    void needKvm() {
        KvmAvailable.assume();
    }

    @ParameterizedTest(name = "{0} vCPUs")
    @CsvSource({"1, 20000", "2, 20000", "4, 1000"})
    void everyTestPasses(int cpus, int iterations) throws Exception {
        byte[] image;
        try (InputStream in = getClass().getResourceAsStream("/dev/dvmm/boot/testkernel/testkernel.elf")) {
            image = in.readAllBytes();
        }
        try (LinuxGuestSession s = LinuxGuestSession.boot(cpus, 64 << 20, KernelFile.of("testkernel", image), null,
                new KernelCommandLine().add("tk.iters", iterations), SmpEnumeration.BOTH, null)) {
            int failures = s.run(Duration.ofSeconds(600));
            String text = s.platform().consoleText();
            System.out.print(text);
            List<String> results = text.lines().filter(l -> l.startsWith("DVMM-TEST ")).toList();
            assertEquals(10, results.size(), text);
            for (String r : results) {
                assertTrue(r.contains("result=pass"), r);
            }
            assertEquals(0, failures, "failures reported at the debug exit");
            assertEquals(PcPlatform.Ending.DEBUG_EXIT, s.platform().ending());
            assertTrue(text.contains("DVMM-TEST name=ap-startup result=pass detail=started=" + cpus + ",cpus=" + cpus), text);
            if (cpus >= 2) {
                assertTrue(text.contains("name=ipi-pingpong result=pass detail=cpus=" + cpus + ",round_trips="
                        + 20 * cpus * (cpus - 1)), text);
                assertTrue(text.contains("name=litmus-mp result=pass detail=iterations=" + iterations + ",forbidden_seen=0"), text);
            }
        }
    }
}
