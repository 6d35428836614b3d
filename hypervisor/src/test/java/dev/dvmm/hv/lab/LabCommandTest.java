package dev.dvmm.hv.lab;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class LabCommandTest {
    record Outcome(int status, String out, String err) {}

    private static Outcome run(String... args) {
        var out = new ByteArrayOutputStream();
        var err = new ByteArrayOutputStream();
        int status = new CommandLine(new LabCommand(new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8))).execute(args);
        return new Outcome(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    private static Path script(Path dir, String name, String body) throws IOException {
        Path p = dir.resolve(name);
        Files.writeString(p, "#!/bin/sh\n" + body + "\n");
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwxr-xr-x"));
        return p;
    }

    /** One line on stderr, prefixed, containing {@code text}; exit status {@value Lab#LAB_FAILURE}. */
    private static void assertLabError(Outcome o, String text) {
        assertEquals(Lab.LAB_FAILURE, o.status(), o.err());
        assertEquals(1, o.err().lines().count(), "one error line, got: " + o.err());
        assertTrue(o.err().startsWith("dvmm lab: ") && o.err().contains(text), o.err());
        assertEquals("", o.out());
    }

    @Test
    void optionsAndDvmmArguments() {
        var cmd = new LabCommand();
        new CommandLine(cmd).parseArgs("--hosts", "2", "--cpus", "1", "--memory", "4G", "--env", "A=B",
                "--timeout", "60", "--", "run", "--nodes", "2");
        LabOptions o = cmd.options();
        assertEquals(2, o.hosts());
        assertEquals(1, o.cpus());
        assertEquals(4096, o.memoryMiB());
        assertEquals(60, o.timeoutSeconds());
        assertEquals(Map.of("A", "B"), o.env());
        assertEquals(List.of("run", "--nodes", "2"), o.dvmmArgs());
        assertEquals(null, o.exec());
        assertEquals("loose", o.rootCache());
    }

    @Test
    void missingQemuIsOneClearError(@TempDir Path dir) {
        assertLabError(run("--qemu", dir.resolve("no-such-qemu").toString(), "--exec", "true"), "QEMU not found");
    }

    @Test
    void brokenQemuIsOneClearError(@TempDir Path dir) throws IOException {
        Path broken = script(dir, "qemu", "echo 'error while loading shared libraries: libfoo.so' >&2; exit 127");
        assertLabError(run("--qemu", broken.toString(), "--exec", "true"), "does not work");
    }

    @Test
    void oldQemuIsRefused(@TempDir Path dir) throws IOException {
        Path old = script(dir, "qemu", "echo 'QEMU emulator version 6.2.0'");
        assertLabError(run("--qemu", old.toString(), "--exec", "true"), "7.2 or newer");
    }

    @Test
    void notEnoughMemoryIsRefusedBeforeBooting(@TempDir Path dir) throws IOException {
        Path qemu = script(dir, "qemu", "echo 'QEMU emulator version 7.2.22'");
        Path cache = dir.resolve("cache");
        assertLabError(run("--qemu", qemu.toString(), "--cache-dir", cache.toString(), "--hosts", "16",
                "--memory", "64T", "--exec", "true"), "not enough memory");
        assertTrue(!Files.exists(cache), "no image is built when the lab cannot boot");
    }

    @Test
    void badArgumentsAreOneClearError() {
        assertLabError(run("--hosts", "0", "--exec", "true"), "--hosts must be");
        assertLabError(run("--memory", "lots", "--exec", "true"), "not a memory size");
        assertLabError(run(), "nothing to run");
        assertLabError(run("--exec", "true", "--", "info"), "not both");
    }
}
