package dev.dvmm.dsm.node;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.dvmm.dsm.NativeAccess;
import dev.dvmm.dsm.UffdAvailable;
import dev.dvmm.dsm.fault.DsmPages;
import dev.dvmm.dsm.protocol.MessageType;
import dev.dvmm.dsm.protocol.ProtocolConfig;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

/**
 * A node that hands a page on must have dropped it before the new owner can act on the data: here the old owner's
 * send of DATA_WRITE returns 300 ms after the data left (a thread descheduled inside the send), the new owner
 * writes the page meanwhile, and a thread of the old owner then reads it. It must read the new value (by faulting
 * and fetching it), not its own old copy. Before the fix this read returned the old value without a fault.
 */
class PageHandOverTest {
    private static final int PAGE = 2; // homed on node 0 (stripe 1, 2 nodes): node 0 is home and first owner

    @Test
    void theOldOwnerNeverReadsItsDroppedCopyWhileTheNewOwnerWrites() throws Exception {
        UffdAvailable.assume();
        try (LocalDsmCluster cluster = new LocalDsmCluster(new ProtocolConfig(2, 4, 1, 0, 64), null, 0, "tcp",
                t -> t.rank() == 0 ? new SlowSendTransport(t, MessageType.DATA_WRITE, 300) : t)) {
            long offset = PAGE * DsmPages.PAGE_SIZE;
            MemorySegment oldOwner = cluster.guest(0);
            MemorySegment newOwner = cluster.guest(1);
            on(() -> NativeAccess.set(oldOwner, offset, 1));
            on(() -> NativeAccess.set(newOwner, offset, 2));
            long[] seen = new long[1];
            on(() -> seen[0] = NativeAccess.get(oldOwner, offset));
            assertEquals(2, seen[0], "node 0 read its dropped copy after node 1 wrote the page");
            assertNull(cluster.failure());
        }
    }

    private static void on(Runnable body) throws InterruptedException {
        Thread t = Thread.ofPlatform().start(body);
        t.join(20_000);
        assertFalse(t.isAlive(), "an access got stuck on a fault");
    }
}
