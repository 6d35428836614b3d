package dev.dvmm.hv.machine;

import dev.dvmm.boot.testguest.TestGuest;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Real guests on /dev/kvm: the hand-written test programs of guest-boot/src/main/asm. */
@Tag("kvm")
class TestGuestKvmTest {
    private static final long MEM = 16 << 20;
    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    @BeforeEach
    void needKvm() {
        KvmAvailable.assume();
    }

    @Test
    void realModeGuestPrintsAndExitsWithItsComputedStatus() throws Exception {
        try (TestGuestSession s = TestGuestSession.realMode(MEM, null)) {
            int[] status = s.run(TIMEOUT);
            assertEquals("Hello from real mode\n", s.console().text());
            assertArrayEquals(new int[] {5050}, status, "sum 1..100 computed by the guest");
        }
    }

    @Test
    void longModeGuestGreetsFromEachVcpu() throws Exception {
        try (TestGuestSession s = TestGuestSession.longMode(1, MEM, TestGuest.T_HELLO, 0, null)) {
            assertArrayEquals(new int[] {0x42}, s.run(TIMEOUT));
            assertEquals("Hello from long mode on vCPU 0\n", s.console().text());
        }
    }

    @Test
    void twoVcpusRunConcurrentlyAndAtomicAndLockedCountersAreExact() throws Exception {
        long n = 200_000;
        try (TestGuestSession s = TestGuestSession.longMode(2, MEM, TestGuest.T_COUNTERS, n, null)) {
            assertArrayEquals(new int[] {0, 0}, s.run(TIMEOUT));
            MemorySegment m = s.machine().memory().aliasMapping();
            assertEquals(2 * n, m.get(ValueLayout.JAVA_LONG, TestGuest.DATA), "lock xadd counter");
            assertEquals(2 * n, m.get(ValueLayout.JAVA_LONG, TestGuest.DATA + 0x80), "spinlock-protected counter");
            assertEquals(2, m.get(ValueLayout.JAVA_LONG, TestGuest.DATA + 0xc0), "vCPUs that finished");
            assertEquals(0, m.get(ValueLayout.JAVA_INT, TestGuest.DATA + 0x40), "lock released");
        }
    }

    @Test
    void exceptionsReachTheGuestIdtHandlersWithTheFaultingRip() throws Exception {
        try (TestGuestSession s = TestGuestSession.longMode(1, MEM, TestGuest.T_EXCEPTIONS, 0, null)) {
            assertArrayEquals(new int[] {0x60}, s.run(TIMEOUT));
            MemorySegment m = s.machine().memory().aliasMapping();
            long r = TestGuest.RESULTS;
            assertEquals(6, m.get(ValueLayout.JAVA_LONG, r), "#UD vector");
            long udSite = m.get(ValueLayout.JAVA_LONG, r + 16);
            assertTrue(udSite > TestGuest.LONG_MODE.loadAddress(), "guest recorded where ud2 is");
            assertEquals(udSite, m.get(ValueLayout.JAVA_LONG, r + 8), "RIP pushed for #UD");
            assertEquals(0, m.get(ValueLayout.JAVA_LONG, r + 24), "#DE vector");
            assertEquals(m.get(ValueLayout.JAVA_LONG, r + 40), m.get(ValueLayout.JAVA_LONG, r + 32), "RIP pushed for #DE");
            assertEquals(3, m.get(ValueLayout.JAVA_LONG, TestGuest.DATA), "#BP vector");
            long bpAfter = m.get(ValueLayout.JAVA_LONG, TestGuest.DATA + 16);
            assertTrue(bpAfter > udSite, "guest recorded where int3 ends");
            assertEquals(bpAfter, m.get(ValueLayout.JAVA_LONG, TestGuest.DATA + 8), "#BP is a trap: RIP after the int3");
            assertEquals(3, m.get(ValueLayout.JAVA_LONG, r + 48), "execution resumed after all three handlers");
        }
    }

    @Test
    void spinningGuestIsStoppedByAKick() throws Exception {
        try (TestGuestSession s = TestGuestSession.longMode(2, MEM, TestGuest.T_SPIN, 0, null)) {
            Machine m = s.machine();
            m.start();
            MemorySegment alias = m.memory().aliasMapping();
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while ((alias.get(ValueLayout.JAVA_LONG, TestGuest.DATA + 0x100) == 0
                    || alias.get(ValueLayout.JAVA_LONG, TestGuest.DATA + 0x108) == 0) && System.nanoTime() < deadline) {
                Thread.sleep(1);
            }
            long before = alias.get(ValueLayout.JAVA_LONG, TestGuest.DATA + 0x100);
            assertTrue(before > 0 && alias.get(ValueLayout.JAVA_LONG, TestGuest.DATA + 0x108) > 0,
                    "both vCPUs are spinning in the guest");
            m.runner(0).requestStop(7);
            assertTrue(m.runner(0).awaitStop(5, java.util.concurrent.TimeUnit.SECONDS), "vCPU 0 left KVM_RUN");
            long after = alias.get(ValueLayout.JAVA_LONG, TestGuest.DATA + 0x100);
            Thread.sleep(50);
            assertEquals(after, alias.get(ValueLayout.JAVA_LONG, TestGuest.DATA + 0x100), "vCPU 0 no longer runs");
            assertTrue(m.runner(0).kicks() >= 1, "the stop was delivered by a kick");
            assertEquals(7, m.runner(0).stopStatus());
            m.runner(1).requestStop(8);
            assertTrue(m.runner(1).awaitStop(5, java.util.concurrent.TimeUnit.SECONDS), "vCPU 1 left KVM_RUN");
            assertArrayEquals(new int[] {7, 8}, m.awaitCompletion(Duration.ofSeconds(5)));
        }
    }

    @Test
    void memoryWrittenByTheGuestIsReadBackThroughTheAliasMapping() throws Exception {
        int n = 4096;
        try (TestGuestSession s = TestGuestSession.longMode(2, MEM, TestGuest.T_PATTERN, n, null)) {
            assertArrayEquals(new int[] {0, 0}, s.run(TIMEOUT));
            MemorySegment alias = s.machine().memory().aliasMapping();
            for (int v = 0; v < 2; v++) {
                for (long i = 0; i < n; i++) {
                    long expect = (i * 0x9e3779b97f4a7c15L) ^ ((long) v << 56);
                    long at = TestGuest.PATTERN + ((long) v * n + i) * 8;
                    assertEquals(expect, alias.get(ValueLayout.JAVA_LONG, at), "vCPU " + v + " word " + i);
                }
            }
        }
    }

    @Test
    void aTripleFaultStopsTheVmWithARegisterDumpAndTheCodeBytes() throws Exception {
        try (TestGuestSession s = TestGuestSession.longMode(1, MEM, TestGuest.T_HELLO, 0, null)) {
            // ud2 with no IDT loaded: #UD cannot be delivered -> double fault -> triple fault.
            long at = 0x180000;
            s.machine().memory().guestMapping().set(ValueLayout.JAVA_SHORT, at, (short) 0x0b0f);
            dev.dvmm.hv.arch.X86Setup.enterLongMode(s.machine().runner(0).vcpu(), at, TestGuest.KSTACK_TOP, 0, 0, 0);
            dev.dvmm.hv.vcpu.VcpuFailure f = org.junit.jupiter.api.Assertions.assertThrows(
                    dev.dvmm.hv.vcpu.VcpuFailure.class, () -> s.run(TIMEOUT));
            assertTrue(f.getMessage().contains("triple fault"), f.getMessage());
            // Intel and PVM report the state at the fault; AMD SVM has already reset the vCPU when KVM
            // reports SHUTDOWN (VMCB undefined after the intercept), so the dump shows the reset vector.
            boolean atFault = f.dump().contains("rip=0000000000180000") && f.dump().contains("code at rip: 0f 0b");
            boolean afterReset = f.dump().contains("rip=000000000000fff0");
            assertTrue(atFault || afterReset, f.dump());
        }
    }

    @Test
    void ring3ReachesRing0ThroughAnException() throws Exception {
        try (TestGuestSession s = TestGuestSession.longMode(1, MEM, TestGuest.T_USER_INT, 0, null)) {
            assertArrayEquals(new int[] {0x80}, s.run(TIMEOUT));
            assertEquals(0x23, s.machine().memory().aliasMapping().get(ValueLayout.JAVA_LONG, TestGuest.RESULTS),
                    "the handler saw the ring-3 code selector");
        }
    }

    @Test
    void producerConsumerHandoffSeesEveryItemInOrder() throws Exception {
        long n = 100_000;
        try (TestGuestSession s = TestGuestSession.longMode(2, MEM, TestGuest.T_HANDOFF, n, null)) {
            assertArrayEquals(new int[] {0, 0}, s.run(TIMEOUT), "producer done, consumer saw no item out of order");
            assertEquals(n * (n + 1) / 2, s.machine().memory().aliasMapping().get(ValueLayout.JAVA_LONG,
                    TestGuest.RESULTS + 64), "sum of the items the consumer took");
        }
    }
}
