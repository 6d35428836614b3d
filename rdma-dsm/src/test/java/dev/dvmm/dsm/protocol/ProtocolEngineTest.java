package dev.dvmm.dsm.protocol;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** Scripted sequences against single engines; every output the engine produces is recorded and compared. */
class ProtocolEngineTest {
    private static final int R = MessageType.READ_REQUEST;
    private static final int W = MessageType.WRITE_REQUEST;

    /** Records an engine's sends and page actions as readable lines. */
    private static final class Recorder implements Outbox, PageActions {
        final List<String> events = new ArrayList<>();

        List<String> take() {
            List<String> copy = List.copyOf(events);
            events.clear();
            return copy;
        }

        @Override
        public void send(int dst, int type, int page, int requester, int version, int acks) {
            events.add("send n" + dst + " " + MessageType.name(type) + " p" + page + " req n" + requester + " v"
                + version + (acks > 0 ? " acks " + acks : ""));
        }

        @Override
        public void sendWithPage(int dst, int type, int page, int requester, int version, int acks) {
            events.add("send+page n" + dst + " " + MessageType.name(type) + " p" + page + " req n" + requester
                + " v" + version + (acks > 0 ? " acks " + acks : ""));
        }

        @Override
        public void installZero(int page, boolean writable) {
            events.add("zero p" + page + (writable ? " RW" : " RO"));
        }

        @Override
        public void installFromMessage(int page, boolean writable) {
            events.add("install p" + page + (writable ? " RW" : " RO"));
        }

        @Override
        public void readRemote(int page, int source) {
            events.add("read p" + page + " from n" + source);
        }

        @Override
        public void installFromRemoteRead(int page) {
            events.add("install-read p" + page + " RO");
        }

        @Override
        public void makeWritable(int page) {
            events.add("writable p" + page);
        }

        @Override
        public void makeReadOnly(int page) {
            events.add("read-only p" + page);
        }

        @Override
        public void invalidate(int page) {
            events.add("invalidate p" + page);
        }

        @Override
        public void faultResolved(int page) {
            events.add("resolved p" + page);
        }
    }

    private static ProtocolConfig config(int nodes, int pages, long hold, int queue) {
        return new ProtocolConfig(nodes, pages, 1, hold, queue);
    }

    private static ProtocolEngine engine(ProtocolConfig config, int node, Recorder recorder) {
        return new ProtocolEngine(config, node, recorder, recorder);
    }

    /** Node {@code node}'s engine after a fault on page 0 (its request sent and taken from the recorder). */
    private static ProtocolEngine faulted(ProtocolConfig config, int node, Recorder recorder, boolean write) {
        ProtocolEngine e = engine(config, node, recorder);
        e.onLocalFault(0, write, 0);
        recorder.take();
        return e;
    }

    @Test
    void readMissOnANeverWrittenPageIsAZeroPageWithoutDataTransfer() {
        ProtocolConfig config = config(2, 2, 0, 4);
        Recorder homeOut = new Recorder();
        Recorder reqOut = new Recorder();
        ProtocolEngine home = engine(config, 0, homeOut);
        ProtocolEngine requester = engine(config, 1, reqOut);

        requester.onLocalFault(0, false, 0);
        assertEquals(List.of("send n0 READ_REQUEST p0 req n1 v0"), reqOut.take());
        assertEquals(PageState.READ_PENDING, requester.localState(0));

        home.onMessage(1, R, 0, 1, 0, 0);
        assertEquals(List.of("send n1 GRANT_READ_ZERO p0 req n1 v0"), homeOut.take());
        assertEquals(0b10, home.directoryCopyset(0));
        assertEquals(-1, home.directoryOwner(0));
        assertFalse(home.isBusy(0), "a zero grant needs no DONE");

        requester.onMessage(0, MessageType.GRANT_READ_ZERO, 0, 1, 0, 0);
        assertEquals(List.of("zero p0 RO", "resolved p0"), reqOut.take());
        assertEquals(PageState.SHARED, requester.localState(0));

        requester.onLocalFault(0, false, 0);
        assertEquals(List.of("resolved p0"), reqOut.take(), "a read fault on a held page resolves at once");
    }

    @Test
    void withOneSidedReadsTheRequesterReadsACleanPageFromTheOwnerAndTheOwnerDoesNothing() {
        ProtocolConfig config = config(3, 1, 0, 8).withOneSidedReads(true);
        Recorder homeOut = new Recorder();
        ProtocolEngine home = engine(config, 0, homeOut);
        // n1 wrote page 0 (version 1) and then n0 read it: n1 is the owner of a clean page that n0 holds too; make
        // the home drop its copy again so that the only copy is n1's: n1 writes (n0 invalidated), n2 reads.
        home.onMessage(1, W, 0, 1, 0, 0);
        assertEquals(List.of("send n1 GRANT_WRITE_ZERO p0 req n1 v1"), homeOut.take());
        home.onMessage(2, R, 0, 2, 0, 0);
        assertEquals(List.of("send n1 FORWARD_READ p0 req n2 v1"), homeOut.take(),
            "a MODIFIED owner must downgrade itself: no one-sided read of a writable page");
        home.onMessage(2, MessageType.DONE, 0, 2, 1, 0);
        assertFalse(home.isBusy(0));
        assertEquals(0b110, home.directoryCopyset(0));

        home.onLocalFault(0, false, 0);
        assertEquals(List.of("read p0 from n1"), homeOut.take(),
            "the home reads the clean page from the owner's memory itself; nothing is sent to the owner");
        assertEquals(PageState.READ_FETCHING, home.localState(0));
        assertTrue(home.isBusy(0), "the owner's copy must stay until the read is done");
        home.onRemoteReadDone(0, 0);
        assertEquals(List.of("install-read p0 RO", "resolved p0"), homeOut.take());
        assertFalse(home.isBusy(0), "the home's own DONE ended the transaction");
        assertEquals(0b111, home.directoryCopyset(0));

        Recorder reqOut = new Recorder();
        ProtocolEngine requester = faulted(config, 2, reqOut, false);
        requester.onMessage(0, MessageType.GRANT_READ_REMOTE, 0, 1, 1, 0);
        assertEquals(List.of("read p0 from n1"), reqOut.take());
        assertEquals(PageState.READ_FETCHING, requester.localState(0));
        requester.onLocalFault(0, false, 0);
        assertEquals(List.of(), reqOut.take(), "a second fault waits for the read in flight");
        requester.onRemoteReadDone(0, 0);
        assertEquals(List.of("install-read p0 RO", "resolved p0", "send n0 DONE p0 req n2 v1"), reqOut.take());
        assertEquals(PageState.SHARED, requester.localState(0));
        assertEquals(1, requester.localVersion(0));

        byte[] before = encoded(requester);
        assertRejected(requester, before, "in local state SHARED", e -> e.onRemoteReadDone(0, 0));
        ProtocolEngine off = engine(config(3, 1, 0, 8), 2, new Recorder());
        off.onLocalFault(0, false, 0);
        assertRejected(off, encoded(off), "one-sided reads are off",
            e -> e.onMessage(0, MessageType.GRANT_READ_REMOTE, 0, 1, 1, 0));
        ProtocolEngine self = engine(config, 2, new Recorder());
        self.onLocalFault(0, false, 0);
        assertRejected(self, encoded(self), "names this node",
            e -> e.onMessage(0, MessageType.GRANT_READ_REMOTE, 0, 2, 1, 0));
    }

    @Test
    void theHomeServesItsOwnFaultThroughTheSameLogicWithoutMessages() {
        Recorder out = new Recorder();
        ProtocolEngine home = engine(config(2, 2, 0, 4), 0, out);
        home.onLocalFault(0, true, 0);
        assertEquals(List.of("zero p0 RW", "resolved p0"), out.take());
        assertEquals(PageState.MODIFIED, home.localState(0));
        assertTrue(home.directoryModified(0));
        assertEquals(0, home.directoryOwner(0));
        assertEquals(1, home.directoryVersion(0));
    }

    @Test
    void writeUpgradeInvalidatesEveryOtherCopyAndTheWriterCollectsTheAcks() {
        ProtocolConfig config = config(4, 1, 0, 8);
        Recorder homeOut = new Recorder();
        ProtocolEngine home = engine(config, 0, homeOut);
        home.onLocalFault(0, false, 0);
        home.onMessage(1, R, 0, 1, 0, 0);
        home.onMessage(2, R, 0, 2, 0, 0);
        home.onMessage(3, R, 0, 3, 0, 0);
        homeOut.take();
        assertEquals(0b1111, home.directoryCopyset(0));

        home.onMessage(1, W, 0, 1, 0, 0);
        assertEquals(List.of("send n2 INVALIDATE p0 req n1 v0", "send n3 INVALIDATE p0 req n1 v0",
            "invalidate p0", "send n1 GRANT_UPGRADE p0 req n1 v1 acks 2"), homeOut.take(),
            "the home drops its own copy at once (loopback) and grants; the other sharers ack the writer");
        assertEquals(PageState.INVALID, home.localState(0));
        assertTrue(home.isBusy(0), "the acks travel on other channels: the home waits for the writer's DONE");
        assertEquals(1, home.directoryOwner(0));
        assertEquals(0b10, home.directoryCopyset(0));
        assertEquals(1, home.directoryVersion(0));

        Recorder sharerOut = new Recorder();
        ProtocolEngine sharer = engine(config, 2, sharerOut);
        sharer.onLocalFault(0, false, 0);
        sharer.onMessage(0, MessageType.GRANT_READ_ZERO, 0, 2, 0, 0);
        sharerOut.take();
        sharer.onMessage(0, MessageType.INVALIDATE, 0, 1, 0, 0);
        assertEquals(List.of("invalidate p0", "send n1 INVALIDATE_ACK p0 req n1 v0"), sharerOut.take(),
            "a sharer other than the home acks the writer directly");

        Recorder writerOut = new Recorder();
        ProtocolEngine writer = engine(config, 1, writerOut);
        writer.onLocalFault(0, false, 0);
        writer.onMessage(0, MessageType.GRANT_READ_ZERO, 0, 1, 0, 0);
        writer.onLocalFault(0, true, 0);
        writerOut.take();
        assertEquals(PageState.UPGRADE_PENDING, writer.localState(0));
        writer.onMessage(3, MessageType.INVALIDATE_ACK, 0, 1, 0, 0);
        assertEquals(List.of(), writerOut.take(), "an ack may come before the grant");
        writer.onMessage(0, MessageType.GRANT_UPGRADE, 0, 1, 1, 2, 0);
        assertEquals(List.of(), writerOut.take(), "one ack is still missing: the copy stays read-only");
        assertEquals(PageState.ACKS_PENDING, writer.localState(0));
        writer.onLocalFault(0, false, 0);
        assertEquals(List.of("resolved p0"), writerOut.take(), "reads of the current copy go on meanwhile");
        byte[] before = encoded(writer);
        assertRejected(writer, before, "is addressed to requester",
            e -> e.onMessage(0, MessageType.GRANT_UPGRADE, 0, 2, 1, 2, 0));
        writer.onMessage(2, MessageType.INVALIDATE_ACK, 0, 1, 0, 0);
        assertEquals(List.of("writable p0", "resolved p0", "send n0 DONE p0 req n1 v1"), writerOut.take());
        assertEquals(PageState.MODIFIED, writer.localState(0));
        assertRejected(writer, encoded(writer), "is impossible in local state MODIFIED",
            e -> e.onMessage(3, MessageType.INVALIDATE_ACK, 0, 1, 0, 0));

        home.onMessage(1, MessageType.DONE, 0, 1, 1, 0);
        assertFalse(home.isBusy(0));
    }

    @Test
    void aWriterWithoutOtherSharersIsGrantedInOneRoundTripWithoutDone() {
        ProtocolConfig config = config(2, 1, 0, 8);
        Recorder homeOut = new Recorder();
        ProtocolEngine home = engine(config, 0, homeOut);
        home.onLocalFault(0, false, 0);
        home.onMessage(1, R, 0, 1, 0, 0);
        homeOut.take();
        home.onMessage(1, W, 0, 1, 0, 0);
        assertEquals(List.of("invalidate p0", "send n1 GRANT_UPGRADE p0 req n1 v1"), homeOut.take(),
            "only the home held another copy: it acks itself, no count, no DONE");
        assertFalse(home.isBusy(0));
    }

    @Test
    void readMissOnAWrittenPageIsForwardedToTheOwnerWhichDowngrades() {
        ProtocolConfig config = config(3, 1, 0, 8);
        Recorder homeOut = new Recorder();
        ProtocolEngine home = engine(config, 0, homeOut);
        home.onMessage(1, W, 0, 1, 0, 0);
        assertEquals(List.of("send n1 GRANT_WRITE_ZERO p0 req n1 v1"), homeOut.take());

        home.onMessage(2, R, 0, 2, 0, 0);
        assertEquals(List.of("send n1 FORWARD_READ p0 req n2 v1"), homeOut.take());
        assertTrue(home.isBusy(0), "the home waits for the requester's DONE");

        Recorder ownerOut = new Recorder();
        ProtocolEngine owner = engine(config, 1, ownerOut);
        owner.onLocalFault(0, true, 0);
        owner.onMessage(0, MessageType.GRANT_WRITE_ZERO, 0, 1, 1, 0);
        ownerOut.take();
        owner.onMessage(0, MessageType.FORWARD_READ, 0, 2, 1, 0);
        assertEquals(List.of("read-only p0", "send+page n2 DATA_READ p0 req n2 v1"), ownerOut.take());
        assertEquals(PageState.SHARED, owner.localState(0));

        Recorder reqOut = new Recorder();
        ProtocolEngine requester = faulted(config, 2, reqOut, false);
        requester.onMessage(1, MessageType.DATA_READ, 0, 2, 1, 0);
        assertEquals(List.of("install p0 RO", "resolved p0", "send n0 DONE p0 req n2 v1"), reqOut.take());

        home.onMessage(2, MessageType.DONE, 0, 2, 1, 0);
        assertFalse(home.isBusy(0));
        assertEquals(0b110, home.directoryCopyset(0));
        assertEquals(1, home.directoryOwner(0));
        assertFalse(home.directoryModified(0));
    }

    @Test
    void aHomeThatOwnsThePageSendsTheDataAndEndsTheTransactionWithoutDone() {
        ProtocolConfig config = config(3, 1, 0, 8);
        Recorder homeOut = new Recorder();
        ProtocolEngine home = engine(config, 0, homeOut);
        home.onLocalFault(0, true, 0);
        homeOut.take();

        home.onMessage(2, R, 0, 2, 0, 0);
        assertEquals(List.of("read-only p0", "send+page n2 DATA_READ p0 req n2 v1"), homeOut.take());
        assertFalse(home.isBusy(0), "the home's later messages to n2 follow the data on one channel");
        assertEquals(0b101, home.directoryCopyset(0));

        Recorder reqOut = new Recorder();
        ProtocolEngine requester = faulted(config, 2, reqOut, false);
        requester.onMessage(0, MessageType.DATA_READ, 0, 2, 1, 0);
        assertEquals(List.of("install p0 RO", "resolved p0"), reqOut.take(), "no DONE for data from the home");

        home.onMessage(1, W, 0, 1, 0, 0);
        assertEquals(List.of("send n2 INVALIDATE p0 req n1 v1", "send+page n1 DATA_WRITE p0 req n1 v2 acks 1",
            "invalidate p0"), homeOut.take(), "the home as old owner hands the page on itself, n2 acks n1");
        assertTrue(home.isBusy(0), "n2's ack travels to n1 on another channel: the home waits for DONE");
        home.onMessage(1, MessageType.DONE, 0, 1, 2, 0);
        assertFalse(home.isBusy(0));
        assertEquals(1, home.directoryOwner(0));
        assertEquals(2, home.directoryVersion(0));
        assertThrows(ProtocolException.class, () -> home.onMessage(1, MessageType.DONE, 0, 1, 2, 0),
            "a second DONE is not awaited");

        // With no other sharer the home as old owner ends the transaction as it sends the data.
        ProtocolEngine pair = engine(config(2, 1, 0, 8), 0, homeOut);
        pair.onLocalFault(0, true, 0);
        homeOut.take();
        pair.onMessage(1, W, 0, 1, 0, 0);
        assertEquals(List.of("send+page n1 DATA_WRITE p0 req n1 v2", "invalidate p0"), homeOut.take());
        assertFalse(pair.isBusy(0));
        assertThrows(ProtocolException.class, () -> pair.onMessage(1, MessageType.DONE, 0, 1, 2, 0),
            "a DONE for a transaction the home ended itself is not awaited");
    }

    @Test
    void aHomeWithACurrentReadOnlyCopyAnswersAReadItselfInsteadOfForwarding() {
        ProtocolConfig config = config(3, 1, 0, 8);
        Recorder homeOut = new Recorder();
        ProtocolEngine home = engine(config, 0, homeOut);
        home.onMessage(1, W, 0, 1, 0, 0);
        assertEquals(List.of("send n1 GRANT_WRITE_ZERO p0 req n1 v1"), homeOut.take());
        home.onLocalFault(0, false, 0);
        assertEquals(List.of("send n1 FORWARD_READ p0 req n0 v1"), homeOut.take(),
            "the home is not the owner: it asks n1");
        home.onMessage(1, MessageType.DATA_READ, 0, 0, 1, 0);
        assertEquals(List.of("install p0 RO", "resolved p0"), homeOut.take());
        assertEquals(PageState.SHARED, home.localState(0));

        home.onMessage(2, R, 0, 2, 0, 0);
        assertEquals(List.of("send+page n2 DATA_READ p0 req n2 v1"), homeOut.take(),
            "n2's read is served from the home's copy, not forwarded to owner n1");
        assertFalse(home.isBusy(0));
        assertEquals(0b111, home.directoryCopyset(0));
        assertEquals(1, home.directoryOwner(0), "n1 stays the owner");
    }

    @Test
    void requestsOnABusyEntryQueueAndAreServedInArrivalOrder() {
        ProtocolConfig config = config(4, 1, 0, 8);
        Recorder out = new Recorder();
        ProtocolEngine home = engine(config, 0, out);
        home.onMessage(1, W, 0, 1, 0, 0);
        home.onMessage(2, R, 0, 2, 0, 0);
        out.take();
        home.onMessage(3, W, 0, 3, 0, 0);
        home.onMessage(1, R, 0, 1, 0, 0);
        assertEquals(List.of(), out.take(), "both wait behind the read transaction");
        assertEquals(2, home.queuedRequests());

        home.onMessage(2, MessageType.DONE, 0, 2, 1, 0);
        assertEquals(List.of("send n2 INVALIDATE p0 req n3 v1", "send n1 FORWARD_WRITE p0 req n3 v1 acks 1"),
            out.take(), "n3's write starts: n2 is invalidated (it acks n3) while owner n1 hands the page to n3");
        assertEquals(1, home.queuedRequests());
        assertEquals(3, home.directoryOwner(0));
        assertEquals(2, home.directoryVersion(0));

        home.onMessage(3, MessageType.DONE, 0, 3, 2, 0);
        assertEquals(List.of("send n3 FORWARD_READ p0 req n1 v2"), out.take(), "then n1's queued read");
        assertEquals(0, home.queuedRequests());
    }

    @Test
    void aFullRequestQueueAndDuplicateRequestsAreRejectedWithoutChangingState() {
        ProtocolConfig config = config(4, 1, 0, 1);
        Recorder out = new Recorder();
        ProtocolEngine home = engine(config, 0, out);
        home.onMessage(1, W, 0, 1, 0, 0);
        home.onMessage(2, R, 0, 2, 0, 0);
        home.onMessage(3, R, 0, 3, 0, 0);
        byte[] before = encoded(home);

        ProtocolException full = assertThrows(ProtocolException.class, () -> home.onMessage(1, R, 0, 1, 0, 0));
        assertTrue(full.getMessage().contains("queue full"), full.getMessage());
        ProtocolException duplicate = assertThrows(ProtocolException.class, () -> home.onMessage(3, W, 0, 3, 0, 0));
        assertTrue(duplicate.getMessage().contains("duplicates"), duplicate.getMessage());
        assertArrayEquals(before, encoded(home));
        assertEquals(1, home.queuedRequests());
    }

    @Test
    void theHoldTimeDefersYieldingARecentlyAcquiredPageUntilTheTimer() {
        ProtocolConfig config = config(3, 1, 1000, 8);
        Recorder out = new Recorder();
        ProtocolEngine owner = engine(config, 1, out);
        owner.onLocalFault(0, true, 50);
        owner.onMessage(0, MessageType.GRANT_WRITE_ZERO, 0, 1, 1, 100);
        out.take();
        assertEquals(Long.MAX_VALUE, owner.nextDeadline());

        owner.onMessage(0, MessageType.FORWARD_READ, 0, 2, 1, 500);
        assertEquals(List.of(), out.take(), "acquired 400 ns ago: keep it");
        assertEquals(MessageType.FORWARD_READ, owner.deferredType(0));
        assertEquals(1100, owner.nextDeadline());
        assertEquals(1, owner.deferrals());

        owner.onTimer(1099);
        assertEquals(List.of(), out.take());
        owner.onTimer(1100);
        assertEquals(List.of("read-only p0", "send+page n2 DATA_READ p0 req n2 v1"), out.take());
        assertEquals(0, owner.deferredType(0));
        assertEquals(Long.MAX_VALUE, owner.nextDeadline());

        owner.onMessage(0, MessageType.FORWARD_READ, 0, 0, 1, 1200);
        assertEquals(List.of("send+page n0 DATA_READ p0 req n0 v1"), out.take(),
            "serving a read from a read-only copy takes nothing away, so it is never deferred");

        owner.onMessage(0, MessageType.INVALIDATE, 0, 2, 1, 1300);
        assertEquals(List.of("invalidate p0", "send n2 INVALIDATE_ACK p0 req n2 v1"), out.take(),
            "1200 ns after the grant the hold is over (the ack goes to the writer, n2)");
        assertEquals(1, owner.deferrals());
    }

    @Test
    void aHugeHoldTimeDoesNotWrapTheTimerDeadlineIntoThePast() {
        Recorder out = new Recorder();
        ProtocolEngine owner = engine(config(2, 1, Long.MAX_VALUE, 4), 1, out);
        owner.onLocalFault(0, true, 0);
        owner.onMessage(0, MessageType.GRANT_WRITE_ZERO, 0, 1, 1, 100);
        owner.onMessage(0, MessageType.FORWARD_WRITE, 0, 0, 1, 200);
        assertEquals(MessageType.FORWARD_WRITE, owner.deferredType(0));
        assertEquals(Long.MAX_VALUE, owner.nextDeadline());
        assertFalse(owner.retryDeferred(0, Long.MAX_VALUE - 1));
    }

    @Test
    void aZeroHoldTimeNeverDefers() {
        Recorder out = new Recorder();
        ProtocolEngine owner = engine(config(2, 1, 0, 4), 1, out);
        owner.onLocalFault(0, true, 0);
        owner.onMessage(0, MessageType.GRANT_WRITE_ZERO, 0, 1, 1, 0);
        out.take();
        owner.onMessage(0, MessageType.FORWARD_WRITE, 0, 0, 1, 0);
        assertEquals(List.of("send+page n0 DATA_WRITE p0 req n0 v2", "invalidate p0"), out.take());
        assertEquals(0, owner.deferrals());
    }

    @Test
    void impossibleOrMalformedInputIsRejectedWithAReasonAndChangesNothing() {
        ProtocolConfig config = config(3, 4, 0, 8);
        Recorder out = new Recorder();
        ProtocolEngine node = engine(config, 1, out);
        node.onLocalFault(0, true, 0);
        node.onMessage(2, R, 1, 2, 0, 0);
        assertEquals(List.of("send n0 WRITE_REQUEST p0 req n1 v0", "send n2 GRANT_READ_ZERO p1 req n2 v0"), out.take());
        byte[] before = encoded(node);

        assertRejected(node, before, "page 4 out of range", e -> e.onMessage(0, R, 4, 0, 0, 0));
        assertRejected(node, before, "node 3 out of range", e -> e.onMessage(3, R, 1, 3, 0, 0));
        assertRejected(node, before, "node -1 out of range", e -> e.onMessage(-1, R, 1, 0, 0, 0));
        assertRejected(node, before, "requester 7", e -> e.onMessage(0, R, 1, 7, 0, 0));
        assertRejected(node, before, "unknown type 99", e -> e.onMessage(0, 99, 1, 0, 0, 0));
        assertRejected(node, before, "itself", e -> e.onMessage(1, R, 1, 1, 0, 0));
        assertRejected(node, before, "home, node 0", e -> e.onMessage(2, R, 0, 2, 0, 0));
        assertRejected(node, before, "already holds", e -> e.onMessage(2, R, 1, 2, 0, 0));
        assertRejected(node, before, "names requester 0", e -> e.onMessage(2, W, 1, 0, 0, 0));
        assertRejected(node, before, "acknowledges a write of node 0",
            e -> e.onMessage(0, MessageType.INVALIDATE_ACK, 1, 0, 0, 0));
        assertRejected(node, before, "local state INVALID",
            e -> e.onMessage(0, MessageType.INVALIDATE_ACK, 3, 1, 0, 0));
        assertRejected(node, before, "ack count 5",
            e -> e.onMessage(0, MessageType.GRANT_UPGRADE, 0, 1, 1, 5, 0));
        assertRejected(node, before, "ack count 1",
            e -> e.onMessage(0, MessageType.GRANT_READ_ZERO, 0, 1, 0, 1, 0));
        assertRejected(node, before, "not awaited", e -> e.onMessage(2, MessageType.DONE, 1, 2, 0, 0));
        assertRejected(node, before, "must come from the page's home",
            e -> e.onMessage(2, MessageType.GRANT_WRITE_ZERO, 0, 1, 1, 0));
        assertRejected(node, before, "local state WRITE_PENDING",
            e -> e.onMessage(0, MessageType.GRANT_READ_ZERO, 0, 1, 0, 0));
        assertRejected(node, before, "expected 1", e -> e.onMessage(0, MessageType.GRANT_WRITE_ZERO, 0, 1, 5, 0));
        assertRejected(node, before, "local state WRITE_PENDING",
            e -> e.onMessage(0, MessageType.INVALIDATE, 0, 2, 0, 0));
        assertRejected(node, before, "addressed to requester 2",
            e -> e.onMessage(2, MessageType.DATA_WRITE, 0, 2, 1, 0));
        assertRejected(node, before, "version 0", e -> e.onMessage(2, MessageType.DATA_WRITE, 0, 1, 0, 0));
        assertRejected(node, before, "page 9 out of range", e -> e.onLocalFault(9, false, 0));
        assertEquals(List.of(), out.take(), "rejected inputs send nothing and touch no page");
    }

    @Test
    void configurationsAreValidatedAndPagesStripedOverHomes() {
        assertThrows(ProtocolException.class, () -> new ProtocolConfig(65, 1, 1, 0, 1));
        assertThrows(ProtocolException.class, () -> new ProtocolConfig(0, 1, 1, 0, 1));
        assertThrows(ProtocolException.class, () -> new ProtocolConfig(2, 0, 1, 0, 1));
        assertThrows(ProtocolException.class, () -> new ProtocolConfig(2, 1, 0, 0, 1));
        assertThrows(ProtocolException.class, () -> new ProtocolConfig(2, 1, 1, -1, 1));
        assertThrows(ProtocolException.class, () -> new ProtocolConfig(2, 1, 1, 0, 0));
        ProtocolException badNode = assertThrows(ProtocolException.class,
            () -> engine(new ProtocolConfig(2, 1, 1, 0, 1), 2, new Recorder()));
        assertTrue(badNode.getMessage().contains("node id 2"), badNode.getMessage());

        ProtocolConfig striped = new ProtocolConfig(3, 13, 4, 0, 1);
        int[] homes = new int[13];
        for (int p = 0; p < 13; p++) {
            homes[p] = striped.homeOf(p);
        }
        assertArrayEquals(new int[] {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 0}, homes);

        Recorder out = new Recorder();
        ProtocolEngine home2 = engine(striped, 2, out);
        home2.onMessage(0, W, 9, 0, 0, 0);
        assertEquals(List.of("send n0 GRANT_WRITE_ZERO p9 req n0 v1"), out.take());
        assertEquals(0, home2.directoryOwner(9));
        assertEquals(-1, home2.directoryOwner(10), "neighbouring home slots stay separate");
        assertThrows(ProtocolException.class, () -> home2.directoryOwner(4));
    }

    @Test
    void encodingRoundTripsThroughDecode() {
        ProtocolConfig config = config(3, 2, 0, 8);
        Recorder out = new Recorder();
        ProtocolEngine home = engine(config, 0, out);
        home.onMessage(1, W, 0, 1, 0, 0);
        home.onMessage(2, R, 0, 2, 0, 0);
        home.onLocalFault(0, false, 0);
        home.onLocalFault(1, false, 0);
        assertEquals(1, home.queuedRequests(), "the home's own read queues behind n2's");
        byte[] state = encoded(home);
        ProtocolEngine copy = engine(config, 0, new Recorder());
        copy.decode(new StateReader(state));
        assertArrayEquals(state, encoded(copy));
        assertEquals(1, copy.queuedRequests());
        Recorder copyOut = new Recorder();
        ProtocolEngine live = engine(config, 0, copyOut);
        live.decode(new StateReader(state));
        live.onMessage(2, MessageType.DONE, 0, 2, 1, 0);
        assertEquals(List.of("send n1 FORWARD_READ p0 req n0 v1"), copyOut.take(), "the decoded queue is live");
        assertEquals(0, live.queuedRequests());
        assertEquals(PageState.READ_PENDING, live.localState(1));
    }

    @Test
    void thePingPongPathAllocatesNothingPerEvent() {
        Assumptions.assumeTrue(ManagementFactory.getThreadMXBean() instanceof com.sun.management.ThreadMXBean,
            "this JVM does not count per-thread allocation");
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        PingPong pingPong = new PingPong();
        pingPong.run(20_000);
        long before = threads.getCurrentThreadAllocatedBytes();
        pingPong.run(20_000);
        long allocated = threads.getCurrentThreadAllocatedBytes() - before;
        assertEquals(20_000, pingPong.transfersPerRun, "every round moves the page with its data");
        assertEquals(40_000, pingPong.resolved[0] + pingPong.resolved[1], "every fault was resolved");
        assertTrue(allocated < 1024, "20,000 write faults on both nodes allocated " + allocated + " bytes");
    }

    /** Two engines writing one page in turn, wired by preallocated FIFOs: the hot path with nothing else. */
    private static final class PingPong {
        final ProtocolConfig config = new ProtocolConfig(2, 1, 1, 0, 4);
        final int[][] queue = new int[2][64];
        final int[] head = new int[2];
        final int[] size = new int[2];
        final ProtocolEngine[] engines = new ProtocolEngine[2];
        final long[] resolved = new long[2];
        int transfersPerRun;
        int transfers;

        PingPong() {
            for (int n = 0; n < 2; n++) {
                Port port = new Port(n);
                engines[n] = new ProtocolEngine(config, n, port, port);
            }
        }

        void run(int rounds) {
            transfers = 0;
            for (int i = 0; i < rounds; i++) {
                int writer = i & 1;
                engines[writer].onLocalFault(0, true, i);
                while (size[0] + size[1] > 0) {
                    for (int dst = 0; dst < 2; dst++) {
                        if (size[dst] > 0) {
                            int at = head[dst] * 4;
                            head[dst] = (head[dst] + 1) % 16;
                            size[dst]--;
                            engines[dst].onMessage(1 - dst, queue[dst][at], queue[dst][at + 1], queue[dst][at + 2],
                                queue[dst][at + 3], i);
                        }
                    }
                }
            }
            transfersPerRun = transfers;
        }

        private final class Port implements Outbox, PageActions {
            private final int node;

            Port(int node) {
                this.node = node;
            }

            @Override
            public void send(int dst, int type, int page, int requester, int version, int acks) {
                int at = ((head[dst] + size[dst]) % 16) * 4;
                queue[dst][at] = type;
                queue[dst][at + 1] = page;
                queue[dst][at + 2] = requester;
                queue[dst][at + 3] = version;
                size[dst]++;
            }

            @Override
            public void sendWithPage(int dst, int type, int page, int requester, int version, int acks) {
                transfers++;
                send(dst, type, page, requester, version, acks);
            }

            @Override
            public void installZero(int page, boolean writable) {
            }

            @Override
            public void installFromMessage(int page, boolean writable) {
            }

            @Override
            public void readRemote(int page, int source) {
                throw new AssertionError("one-sided reads are off in this test");
            }

            @Override
            public void installFromRemoteRead(int page) {
                throw new AssertionError("one-sided reads are off in this test");
            }

            @Override
            public void makeWritable(int page) {
            }

            @Override
            public void makeReadOnly(int page) {
            }

            @Override
            public void invalidate(int page) {
            }

            @Override
            public void faultResolved(int page) {
                resolved[node]++;
            }
        }
    }

    private static void assertRejected(ProtocolEngine engine, byte[] before, String reason,
                                       Consumer<ProtocolEngine> input) {
        ProtocolException e = assertThrows(ProtocolException.class, () -> input.accept(engine));
        assertTrue(e.getMessage().contains(reason), "expected '" + reason + "' in: " + e.getMessage());
        assertArrayEquals(before, encoded(engine), "a rejected input changed the state: " + e.getMessage());
    }

    private static byte[] encoded(ProtocolEngine engine) {
        StateWriter writer = new StateWriter();
        engine.encode(writer);
        return writer.toByteArray();
    }
}
