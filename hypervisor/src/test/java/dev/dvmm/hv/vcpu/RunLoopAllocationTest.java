package dev.dvmm.hv.vcpu;

import dev.dvmm.boot.testguest.TestGuest;
import dev.dvmm.hv.machine.KvmAvailable;
import dev.dvmm.hv.machine.TestGuestSession;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The exit loop allocates nothing per exit: the vCPU thread's allocation does not grow with exits. */
@Tag("kvm")
class RunLoopAllocationTest {
    @Test
    void portIoExitsAllocateNothing() throws Exception {
        KvmAvailable.assume();
        // Warm-up: linking method handles, class loading and interpreted/C1 code allocate (measured:
        // about 6 bytes per exit before C2 compiles the loop); steady state is what we check.
        loopAllocation(60_000);
        long small = loopAllocation(2_000);
        long large = loopAllocation(40_000);
        System.out.println("run loop allocation: " + small + " bytes for 2,000 exits, " + large + " bytes for 40,000");
        // 38,000 more exits must cost at most a few KB more, far below one byte per exit; a single
        // 16-byte object per exit would add 600 KB.
        assertTrue(large - small < 8192, "allocation grew by " + (large - small) + " bytes for 38,000 more exits ("
                + small + " -> " + large + ")");
    }

    private static long loopAllocation(long exits) throws Exception {
        try (TestGuestSession s = TestGuestSession.longMode(1, 16 << 20, TestGuest.T_PIO_LOOP, exits, null)) {
            assertArrayEquals(new int[] {0}, s.run(Duration.ofMinutes(2)));
            assertEquals(exits, s.benchPort().writes());
            VcpuRunner r = s.machine().runner(0);
            assertTrue(r.awaitStop(1, TimeUnit.SECONDS));
            assertTrue(r.ioExits() >= exits, "the guest made its exits");
            return r.loopAllocatedBytes();
        }
    }
}
