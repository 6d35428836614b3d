package dev.dvmm.tests;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The default Linux image (minimal kernel from Debian's linux-source-6.1 + busybox + OpenMP programs) boots
 * with 2 vCPUs, runs every OpenMP program with 2 threads and checks its result, and powers off. Runs
 * directly on hardware KVM and inside the lab elsewhere ({@code ./dvmm run} decides). Tagged {@code lab}:
 * the first run builds the kernel (several minutes); run with {@code -Dgroups=lab}.
 */
@Tag("lab")
class LinuxBootLabTest {
    @Test
    void defaultImageBootsWithTwoVcpusRunsOpenMpAndPowersOff() throws Exception {
        Path root = Path.of(System.getProperty("dvmm.root", ".."));
        Path launcher = root.resolve("dvmm");
        assumeTrue(Files.isExecutable(launcher), "the dvmm launcher is not at " + launcher);
        Process p = new ProcessBuilder(launcher.toString(), "run", "--cpus", "2", "--memory", "512M", "--timeout", "900")
                .redirectErrorStream(true).start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(1800, TimeUnit.SECONDS), "dvmm run did not finish");
        System.out.println(out);
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("DVMM-GUEST cpus=2"), out);
        for (String program : new String[] {"reduction", "stencil", "matmul"}) {
            assertTrue(out.matches("(?s).*DVMM-RESULT name=" + program + " threads=2 seconds=[0-9.]+ check=ok.*"), program + ": " + out);
        }
        assertTrue(out.contains("guest ended (power off)"), out);
    }
}
