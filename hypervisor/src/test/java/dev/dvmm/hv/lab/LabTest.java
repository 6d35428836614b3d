package dev.dvmm.hv.lab;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LabTest {
    private static LabOptions options(int hosts) {
        return new LabOptions(hosts, 1, 1024, List.of("run"), null, null, Path.of("/tmp/c"), 0, false, Path.of("/r"),
                Path.of("/work/x"), "none", Map.of("EXTRA", "1"), false);
    }

    @Test
    void environmentTellsRankAndPeersAndPassesOnlyTheAllowList() {
        Map<String, String> caller = Map.of("PATH", "/usr/bin:/bin", "JAVA_HOME", "/jdk", "DVMM_JAVA_OPTS", "-Xmx1g",
                "DVMM_LAB_CACHE", "/host/only", "SOME_SECRET_TOKEN", "s3cr3t");
        Map<String, String> env = Lab.environment(options(3), 2, caller);
        assertEquals("2", env.get("DVMM_LAB_RANK"));
        assertEquals("3", env.get("DVMM_LAB_HOSTS"));
        assertEquals("10.77.0.3", env.get("DVMM_LAB_ADDRESS"));
        assertEquals("10.77.0.1,10.77.0.2,10.77.0.3", env.get("DVMM_LAB_PEERS"));
        assertEquals("/work/x", env.get("DVMM_LAB_CWD"));
        assertEquals("none", env.get("DVMM_LAB_ROOT_CACHE"));
        assertEquals("/usr/bin:/bin", env.get("PATH"));
        assertEquals("/jdk", env.get("JAVA_HOME"));
        assertEquals("-Xmx1g", env.get("DVMM_JAVA_OPTS"));
        assertEquals("1", env.get("EXTRA"));
        assertFalse(env.containsKey("SOME_SECRET_TOKEN"));
        assertFalse(env.containsKey("DVMM_LAB_CACHE"));
    }

    @Test
    void checkoutsUnderTmpAreKeptVisibleInsideTheOthersNot() {
        Map<String, String> caller = Map.of();
        assertEquals("", Lab.environment(options(1), 0, caller).get("DVMM_LAB_KEEP"), "/r and /work/x are on the root");
        LabOptions ci = new LabOptions(1, 1, 1024, List.of("run"), null, null, Path.of("/tmp/c"), 0, false,
                Path.of("/tmp/ci"), Path.of("/tmp/ci/tests"), "none", Map.of(), false);
        assertEquals("/tmp/ci", Lab.environment(ci, 0, caller).get("DVMM_LAB_KEEP"), "the cwd inside the repo is kept with it");
        LabOptions two = new LabOptions(1, 1, 1024, List.of("run"), null, null, Path.of("/tmp/c"), 0, false,
                Path.of("/tmp/ci"), Path.of("/run/user/0/w"), "none", Map.of(), false);
        assertEquals("/tmp/ci /run/user/0/w", Lab.environment(two, 0, caller).get("DVMM_LAB_KEEP"));
    }

    @Test
    void singleHostHasNoNetworkAddress() {
        Map<String, String> env = Lab.environment(options(1), 0, Map.of());
        assertEquals("", env.get("DVMM_LAB_ADDRESS"));
        assertEquals("", env.get("DVMM_LAB_PEERS"));
        assertEquals("/root", env.get("HOME"));
    }

    @Test
    void quotedWordsSurviveTheShell() throws Exception {
        List<String> words = List.of("plain", "with space", "it's", "$HOME", "`id`", "a\"b", "back\\slash", "");
        StringBuilder script = new StringBuilder("for a in");
        for (String w : words) {
            script.append(' ').append(Lab.quote(w));
        }
        script.append("; do printf '%s|' \"$a\"; done");
        Process p = new ProcessBuilder("sh", "-c", script.toString()).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor());
        assertEquals(String.join("|", words) + "|", out);
    }

    @Test
    void commandLineExecsTheLauncher() {
        assertEquals("exec '/repo/dvmm' 'run' '--nodes' '2'\n",
                Lab.commandLine(Path.of("/repo/dvmm"), List.of("run", "--nodes", "2")));
    }

    @Test
    void memoryCheck() {
        Lab.checkMemory(2, 3072, 8000);
        Lab.checkMemory(4, 3072, -1); // unknown: boot and let QEMU fail if it must
        LabException e = assertThrows(LabException.class, () -> Lab.checkMemory(4, 8192, 20000));
        assertTrue(e.getMessage().contains("32768 MiB needed") && e.getMessage().contains("20000 MiB"), e.getMessage());
    }

    @Test
    void memAvailableIsReadFromMeminfo(@TempDir Path dir) throws IOException {
        Path meminfo = dir.resolve("meminfo");
        Files.writeString(meminfo, "MemTotal:       24678400 kB\nMemFree:        20000000 kB\nMemAvailable:   "
                + "23000064 kB\nBuffers:            1 kB\n");
        assertEquals(22461, Lab.availableMemoryMiB(meminfo));
        assertEquals(-1, Lab.availableMemoryMiB(dir.resolve("missing")));
        assertTrue(Lab.availableMemoryMiB(Path.of("/proc/meminfo")) > 0);
    }

    @Test
    void consoleSummaryPrefersThePanicLine(@TempDir Path dir) throws IOException {
        Path log = dir.resolve("console.log");
        Files.writeString(log, "dvmm-lab: 3.1 init\n[ 6.9] Kernel panic - not syncing: VFS\n[ 7.0] Kernel Offset: disabled\n\n");
        assertTrue(LabHost.lastLine(log).startsWith("[ 6.9] Kernel panic - not syncing: VFS"), LabHost.lastLine(log));
        Files.writeString(log, "one\ntwo\n\n");
        assertTrue(LabHost.lastLine(log).startsWith("two ("), LabHost.lastLine(log));
    }

    @Test
    void qemuArgumentsForOneHostHaveNoNetwork() {
        var image = new LabImage.Built(Path.of("/c"), Path.of("/c/kernel"), Path.of("/c/initramfs.cpio"), "");
        List<String> a = LabHost.qemuArguments(Path.of("/usr/bin/qemu"), image, LabHost.Layout.of(Path.of("/tmp/r"), 0),
                2, 3072, null, 0);
        assertEquals("/usr/bin/qemu", a.getFirst());
        assertEquals("max", a.get(a.indexOf("-cpu") + 1));
        assertEquals("2", a.get(a.indexOf("-smp") + 1));
        assertEquals("3072M", a.get(a.indexOf("-m") + 1));
        assertFalse(a.contains("-enable-kvm"), "the lab relies on software emulation for SVM");
        assertEquals("none", a.get(a.indexOf("-nic") + 1));
        assertFalse(a.contains("-netdev"));
    }

    @Test
    void qemuArgumentsForManyHostsUseTheSwitchSocket() {
        var image = new LabImage.Built(Path.of("/c"), Path.of("/c/kernel"), Path.of("/c/initramfs.cpio"), "");
        List<String> a = LabHost.qemuArguments(Path.of("qemu"), image, LabHost.Layout.of(Path.of("/tmp/r"), 1),
                1, 1024, Path.of("/tmp/r/switch.sock"), 1);
        assertEquals("stream,id=net,server=off,addr.type=unix,addr.path=/tmp/r/switch.sock",
                a.get(a.indexOf("-netdev") + 1));
        assertTrue(a.get(a.indexOf("-netdev") + 3).endsWith("mac=52:54:00:77:00:02"));
        assertFalse(a.contains("-nic"));
    }

    @Test
    void commasInPathsAreRefused() {
        var image = new LabImage.Built(Path.of("/c"), Path.of("/c,x/kernel"), Path.of("/c/initramfs.cpio"), "");
        assertThrows(LabException.class, () -> LabHost.qemuArguments(Path.of("qemu"), image,
                LabHost.Layout.of(Path.of("/tmp/r"), 0), 1, 1024, null, 0));
    }
}
