package dev.dvmm.bindings;

import dev.dvmm.bindings.abi.PosixConstants;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PosixTest {
    private final Posix px = Posix.current();

    @Test
    void failedCallReturnsNegativeErrnoAndCheckNamesTheOperation() {
        int r = px.open("/nonexistent/dvmm", PosixConstants.O_RDONLY);
        assertEquals(-PosixConstants.ENOENT, r);
        NativeException e = assertThrows(NativeException.class, () -> Posix.check(r, "open /nonexistent/dvmm"));
        assertTrue(e.getMessage().contains("No such file"), e.getMessage());
        assertEquals(PosixConstants.ENOENT, e.errno());
    }

    @Test
    void aThreadIsConfinedToTheCpuItIsPinnedTo() throws Exception {
        int[] seen = new int[3];
        Thread t = Thread.ofPlatform().start(() -> {
            int cpu = Posix.currentCpu();
            seen[0] = cpu;
            seen[1] = Posix.current().pinThread(0, cpu);
            boolean stayed = true;
            for (int i = 0; i < 1000; i++) {
                Thread.yield();
                stayed &= Posix.currentCpu() == cpu;
            }
            seen[2] = stayed ? 1 : 0;
        });
        t.join();
        assertTrue(seen[0] >= 0, "sched_getcpu");
        assertEquals(0, seen[1]);
        assertEquals(1, seen[2], "the pinned thread ran on another CPU");
        // No host here has CPU 1023: outside the allowed set.
        assertEquals(-PosixConstants.EINVAL, px.pinThread(0, 1023));
        assertThrows(IllegalArgumentException.class, () -> px.pinThread(0, 1024));
    }

    @Test
    void memfdTwoMappingsShareContentsAndPunchHoleZeroes() {
        long len = 2 * Posix.pageSize();
        int fd = Posix.check(px.memfdCreate("dvmm-test", PosixConstants.MFD_CLOEXEC), "memfd_create");
        try {
            Posix.check(px.ftruncate(fd, len), "ftruncate");
            int rw = PosixConstants.PROT_READ | PosixConstants.PROT_WRITE;
            MemorySegment a = px.mmapChecked(0, len, rw, PosixConstants.MAP_SHARED, fd, 0, "a");
            MemorySegment b = px.mmapChecked(0, len, rw, PosixConstants.MAP_SHARED, fd, 0, "b");
            a.set(ValueLayout.JAVA_LONG, 4096, 0x1122334455667788L);
            assertEquals(0x1122334455667788L, b.get(ValueLayout.JAVA_LONG, 4096));
            Posix.check(px.punchHole(fd, 4096, 4096), "punch");
            assertEquals(0L, b.get(ValueLayout.JAVA_LONG, 4096));
            Posix.check(px.munmap(a), "munmap");
            Posix.check(px.munmap(b), "munmap");
        } finally {
            px.close(fd);
        }
    }

    @Test
    void eventfdCountsWrites() {
        int fd = Posix.check(px.eventfd(0, PosixConstants.EFD_CLOEXEC | PosixConstants.EFD_NONBLOCK), "eventfd");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment v = arena.allocate(8);
            v.set(ValueLayout.JAVA_LONG, 0, 3);
            assertEquals(8, px.write(fd, v, 8));
            assertEquals(8, px.write(fd, v, 8));
            assertEquals(8, px.read(fd, v, 8));
            assertEquals(6, v.get(ValueLayout.JAVA_LONG, 0));
            assertEquals(-PosixConstants.EAGAIN, px.read(fd, v, 8));
        } finally {
            px.close(fd);
        }
    }

    @Test
    void sigsetBitsFollowTheKernelEncoding() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment set = arena.allocate(128);
            Posix.sigaddset(set, 1);
            Posix.sigaddset(set, 65);
            assertEquals(1L, set.get(ValueLayout.JAVA_LONG, 0));
            assertEquals(1L, set.get(ValueLayout.JAVA_LONG, 8));
            assertTrue(Posix.sigismember(set, 65));
            Posix.sigdelset(set, 65);
            assertEquals(0L, set.get(ValueLayout.JAVA_LONG, 8));
            assertTrue(Posix.sigrtmin() >= 32);
        }
    }
}
