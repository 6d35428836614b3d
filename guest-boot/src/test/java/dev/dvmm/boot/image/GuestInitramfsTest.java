package dev.dvmm.boot.image;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class GuestInitramfsTest {
    @TempDir
    Path cache;

    @Test
    void buildsOnceAndHoldsInitBusyboxAndWorkingOpenMpPrograms() throws Exception {
        boolean busybox = Files.isExecutable(GuestInitramfs.BUSYBOX);
        if (!busybox) {
            System.out.println("SKIPPED: busybox-static is not installed (./dvmm setup installs it)");
        }
        assumeTrue(busybox, "busybox-static is not installed");
        Path image = GuestInitramfs.build(cache);
        long modified = Files.getLastModifiedTime(image).toMillis();
        assertEquals(image, GuestInitramfs.build(cache), "second build is a cache hit");
        assertEquals(modified, Files.getLastModifiedTime(image).toMillis());

        Path listing = cache.resolve("list");
        Process p = new ProcessBuilder("cpio", "-it", "--quiet").redirectInput(image.toFile())
                .redirectOutput(listing.toFile()).start();
        assertEquals(0, p.waitFor());
        List<String> names = Files.readAllLines(listing);
        for (String want : List.of("init", "bin/busybox", "bin/sh", "dev/console", "omp/reduction", "omp/stencil", "omp/matmul")) {
            assertTrue(names.contains(want), want + " in " + names);
        }

        // The programs are static x86-64 binaries: run one here and check its result line.
        Path dir = cache.resolve("x");
        Files.createDirectories(dir);
        Process x = new ProcessBuilder("cpio", "-id", "--quiet", "omp/reduction").directory(dir.toFile())
                .redirectInput(image.toFile()).start();
        assertEquals(0, x.waitFor());
        Process run = new ProcessBuilder(dir.resolve("omp/reduction").toString(), "1000000")
                .redirectErrorStream(true).start();
        run.getOutputStream().close();
        String out = new String(run.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, run.waitFor(), out);
        assertTrue(out.matches("(?s)DVMM-RESULT name=reduction threads=\\d+ seconds=[0-9.]+ check=ok\\s*"), out);
    }
}
