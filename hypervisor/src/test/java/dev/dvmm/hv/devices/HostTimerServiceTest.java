package dev.dvmm.hv.devices;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Real host timers: expiries never come early, re-arming from the action works, cancel holds. */
class HostTimerServiceTest {
    private static final long HANG_GUARD_S = 30; // only against a hang, never a speed check

    @Test
    void firesNoEarlierThanTheDeadline() throws Exception {
        try (HostTimerService s = new HostTimerService("test-timers")) {
            CountDownLatch fired = new CountDownLatch(1);
            AtomicLong at = new AtomicLong();
            DeviceTimer t = s.newTimer("t", () -> {
                at.set(System.nanoTime());
                fired.countDown();
            });
            long deadline = System.nanoTime() + 2_000_000;
            t.arm(deadline);
            assertTrue(fired.await(HANG_GUARD_S, TimeUnit.SECONDS), "timer never fired");
            assertTrue(at.get() - deadline >= 0, "fired " + (deadline - at.get()) + " ns early");
        }
    }

    @Test
    void rearmingFromTheActionMakesAPeriodicTimer() throws Exception {
        try (HostTimerService s = new HostTimerService("test-timers")) {
            CountDownLatch five = new CountDownLatch(5);
            DeviceTimer[] t = new DeviceTimer[1];
            t[0] = s.newTimer("periodic", () -> {
                five.countDown();
                if (five.getCount() > 0) {
                    t[0].arm(System.nanoTime() + 100_000);
                }
            });
            t[0].arm(System.nanoTime());
            assertTrue(five.await(HANG_GUARD_S, TimeUnit.SECONDS));
        }
    }

    @Test
    void aCancelledTimerStaysSilent() throws Exception {
        try (HostTimerService s = new HostTimerService("test-timers")) {
            AtomicInteger cancelledFires = new AtomicInteger();
            CountDownLatch later = new CountDownLatch(1);
            DeviceTimer cancelled = s.newTimer("cancelled", cancelledFires::incrementAndGet);
            DeviceTimer other = s.newTimer("later", later::countDown);
            long now = System.nanoTime();
            cancelled.arm(now + 1_000_000);
            cancelled.cancel();
            other.arm(now + 5_000_000);
            assertTrue(later.await(HANG_GUARD_S, TimeUnit.SECONDS));
            assertEquals(0, cancelledFires.get(), "its deadline passed before the other timer's");
        }
    }

    @Test
    void aClosedServiceRefusesNewTimers() {
        HostTimerService s = new HostTimerService("test-timers");
        s.close();
        DeviceException e = assertThrows(DeviceException.class, () -> s.newTimer("x", () -> { }));
        assertTrue(e.getMessage().contains("closed"));
    }
}
