package dev.dvmm.hv.dsm;

import dev.dvmm.boot.testguest.TestGuest;
import dev.dvmm.dsm.fault.DsmPages;
import dev.dvmm.dsm.fault.FaultReader;
import dev.dvmm.dsm.fault.Userfaultfd;
import dev.dvmm.hv.machine.KvmAvailable;
import dev.dvmm.hv.machine.Machine;
import dev.dvmm.hv.machine.TestGuestSession;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Guest RAM registered with userfaultfd: every page the loader, the VMM or a vCPU touches first faults
 * to the fault reader (KVM's accesses are kernel-mode faults), is installed, and the guest runs on.
 */
@Tag("kvm")
class UffdGuestMemoryKvmTest {
    @Test
    void guestRunsOnDemandFaultedMemoryAndInvalidatedPagesFaultAgain() throws Exception {
        KvmAvailable.assume();
        int n = 64 * 512; // 64 pages of pattern per vCPU
        try (TestGuestSession s = TestGuestSession.longModeDeferred(2, 16 << 20, TestGuest.T_PATTERN, n, null)) {
            Machine m = s.machine();
            MemorySegment guest = m.memory().guestMapping();
            AtomicLong faults = new AtomicLong();
            AtomicLong writeFaults = new AtomicLong();
            try (Userfaultfd uffd = DsmPages.registerGuestMapping(guest);
                 DsmPages pages = new DsmPages(uffd, m.memory().memfd(), guest)) {
                FaultReader reader = new FaultReader(uffd, guest, (page, write, wp, tid) -> {
                    faults.incrementAndGet();
                    if (write) {
                        writeFaults.incrementAndGet();
                    }
                    pages.installZero(page, true);
                }, "uffd-kvm-test");
                reader.start();
                try {
                    s.loadAndConfigure();        // the loader's writes fault through the uffd too
                    long afterLoad = faults.get();
                    assertTrue(afterLoad >= 3, "image, GDT and page tables were faulted in: " + afterLoad);
                    assertArrayEquals(new int[] {0, 0}, s.run(Duration.ofSeconds(60)));
                    long guestFaults = faults.get() - afterLoad;
                    assertTrue(guestFaults >= 2 * 64, "each pattern page faulted at least once: " + guestFaults);
                    MemorySegment alias = m.memory().aliasMapping();
                    for (int v = 0; v < 2; v++) {
                        for (long i = 0; i < n; i += 509) {
                            long at = TestGuest.PATTERN + ((long) v * n + i) * 8;
                            assertEquals((i * 0x9e3779b97f4a7c15L) ^ ((long) v << 56), alias.get(ValueLayout.JAVA_LONG, at));
                        }
                    }
                    // Invalidate one pattern page: a JVM thread reading it through the guest mapping faults
                    // again and now sees the zero page the handler installs.
                    long page = TestGuest.PATTERN / DsmPages.PAGE_SIZE;
                    pages.invalidate(page);
                    long before = faults.get();
                    long[] seen = {-1};
                    // A native copy: a Java-code access blocked on the fault could stall HotSpot's safepoints.
                    Thread t = Thread.ofPlatform().start(() -> {
                        try (java.lang.foreign.Arena a = java.lang.foreign.Arena.ofConfined()) {
                            MemorySegment one = a.allocate(8);
                            dev.dvmm.bindings.Posix.copyNative(guest, TestGuest.PATTERN + 8, one, 0, 8);
                            seen[0] = one.get(ValueLayout.JAVA_LONG, 0);
                        }
                    });
                    t.join(10_000);
                    assertEquals(0, seen[0]);
                    assertEquals(before + 1, faults.get());
                    System.out.printf("uffd: %d faults (%d writes) for loader + 2 vCPUs%n", faults.get(), writeFaults.get());
                } finally {
                    reader.close();
                    assertNull(reader.failure());
                }
            }
        }
    }
}
