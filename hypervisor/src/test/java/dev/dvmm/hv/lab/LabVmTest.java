package dev.dvmm.hv.lab;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** Boots real lab VMs (about 10-20 s each on 2 cores). Run with -Ddvmm.excludedGroups=slow -Dgroups=lab. */
@Tag("lab")
class LabVmTest {
    @BeforeAll
    static void labCanRun() {
        String why = LabRunner.unavailableReason();
        Assumptions.assumeTrue(why == null, why);
    }

    @Test
    void commandSeesKvmWithSvmAndItsStatusComesBack() {
        LabRunner.Result r = LabRunner.exec(1,
                "grep -c svm /proc/cpuinfo; ls -l /dev/kvm; echo on-stderr >&2; test -w /dev/kvm && exit 42");
        assertEquals(42, r.exitStatus(), r.stderr());
        List<String> lines = r.stdout().lines().toList();
        assertTrue(Integer.parseInt(lines.get(0)) >= 1, "vCPUs with svm: " + lines.get(0));
        assertTrue(lines.get(1).startsWith("crw") && lines.get(1).endsWith("/dev/kvm"), lines.get(1));
        assertEquals("on-stderr\n", r.stderr());
        var host = r.report().hosts().getFirst();
        System.out.printf("lab timing: command start %.2f s after lab start, guest uptime %s s%n",
                host.secondsToCommandStart(), host.guestUptimeAtStart());
    }

    @Test
    void successIsZeroAndTheWorkingDirectoryAndJdkAreTheHosts() {
        String cwd = Path.of(System.getProperty("user.dir")).toAbsolutePath().toString();
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        LabRunner.Result r = LabRunner.run(1, List.of(), "pwd; '" + java + "' -version 2>&1 | head -1; "
                + "touch /tmp/w && echo writable-tmp; echo \"$PASSED\"", Map.of("PASSED", "through --env"));
        assertEquals(0, r.exitStatus(), r.stderr());
        List<String> lines = r.stdout().lines().toList();
        assertEquals(cwd, lines.get(0));
        assertTrue(lines.get(1).contains("version \"" + Runtime.version().feature()), lines.get(1));
        assertEquals("writable-tmp", lines.get(2));
        assertEquals("through --env", lines.get(3));
    }

    @Test
    void hostModeInsideTheLabIsHardwareKvm() {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String cp = System.getProperty("java.class.path");
        LabRunner.Result r = LabRunner.exec(1, "'" + java + "' -cp '" + cp + "' " + LabMain.class.getName() + " host-mode");
        assertEquals(0, r.exitStatus(), r.stderr());
        assertTrue(r.stdout().startsWith("HARDWARE_KVM: "), r.stdout());
    }

    @Test
    void twoHostsReachEachOther() {
        // Each pings the other until it answers (the peer may still be booting), then rank 1 sends
        // a line over TCP to rank 0.
        String script = """
                peer=lab$(( (DVMM_LAB_RANK + 1) % DVMM_LAB_HOSTS ))
                i=0
                until ping -c 1 -W 1 "$peer" >/dev/null 2>&1; do
                  i=$((i + 1)); [ $i -ge 120 ] && { echo "no answer from $peer"; exit 1; }
                done
                echo "rank $DVMM_LAB_RANK at $DVMM_LAB_ADDRESS reached $peer"
                if [ "$DVMM_LAB_RANK" = 0 ]; then
                  nc -l -p 7070 -w 60
                else
                  i=0
                  until echo "hello from $DVMM_LAB_ADDRESS" | nc -w 5 lab0 7070; do
                    i=$((i + 1)); [ $i -ge 60 ] && { echo "cannot connect to lab0"; exit 1; }; sleep 1
                  done
                fi
                """;
        LabRunner.Result r = LabRunner.exec(2, script);
        assertEquals(0, r.exitStatus(), r.stdout() + r.stderr());
        assertTrue(r.stdout().contains("[0] rank 0 at 10.77.0.1 reached lab1"), r.stdout());
        assertTrue(r.stdout().contains("[1] rank 1 at 10.77.0.2 reached lab0"), r.stdout());
        assertTrue(r.stdout().contains("[0] hello from 10.77.0.2"), r.stdout());
    }
}
