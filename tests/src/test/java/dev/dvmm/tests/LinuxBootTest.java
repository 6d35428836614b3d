package dev.dvmm.tests;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Linux boots through {@code ./dvmm run}: directly on hardware KVM, inside the lab elsewhere ({@code run}
 * decides and says so). The default image (minimal kernel from Debian's linux-source-6.1 + busybox +
 * OpenMP programs) is part of the default run: {@code ./dvmm setup} has built it, otherwise the first run
 * builds it (10-15 minutes). Debian's stock kernel is tagged {@code slow}: {@code -Dgroups=slow}.
 */
class LinuxBootTest {
    private static String run(String... args) throws Exception {
        Path root = Path.of(System.getProperty("dvmm.root", ".."));
        Path launcher = root.resolve("dvmm");
        assumeTrue(Files.isExecutable(launcher), "the dvmm launcher is not at " + launcher);
        assumeTrue(Files.exists(Path.of("/dev/kvm")), "no /dev/kvm on this machine: Linux cannot boot here");
        List<String> command = new ArrayList<>(List.of(launcher.toString(), "run"));
        command.addAll(List.of(args));
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(1800, TimeUnit.SECONDS), "dvmm run did not finish");
        System.out.println(out);
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("guest ended (power off)"), out);
        return out;
    }

    private static void assertProgramsRan(String out, int threads) {
        for (String program : new String[] {"reduction", "stencil", "matmul"}) {
            assertTrue(out.matches("(?s).*DVMM-RESULT name=" + program + " threads=" + threads
                    + " seconds=[0-9.]+ check=ok.*"), program + ": " + out);
        }
    }

    @Test
    void defaultImageBootsWithTwoVcpusRunsOpenMpAndPowersOff() throws Exception {
        String out = run("--cpus", "2", "--memory", "512M", "--timeout", "900");
        assertTrue(out.contains("DVMM-GUEST cpus=2"), out);
        assertProgramsRan(out, 2);
    }

    @Test
    @Tag("slow")
    void debiansStockKernelBootsWithOneVcpuAndPowersOff() throws Exception {
        String out = run("--image", "debian", "--cpus", "1", "--memory", "512M", "--timeout", "1800");
        assertTrue(out.contains("DVMM-GUEST cpus=1"), out);
        assertProgramsRan(out, 1);
    }
}
