package dev.dvmm.dsm.node;

import dev.dvmm.dsm.fault.DsmPages;
import dev.dvmm.dsm.fault.FaultReader;
import dev.dvmm.dsm.fault.Userfaultfd;
import dev.dvmm.dsm.protocol.MessageType;
import dev.dvmm.dsm.protocol.Outbox;
import dev.dvmm.dsm.protocol.PageActions;
import dev.dvmm.dsm.protocol.PageState;
import dev.dvmm.dsm.protocol.ProtocolConfig;
import dev.dvmm.dsm.protocol.ProtocolEngine;
import dev.dvmm.dsm.protocol.ProtocolException;
import dev.dvmm.dsm.transport.InboundMessage;
import dev.dvmm.dsm.transport.OutboundMessage;
import dev.dvmm.dsm.transport.RemoteReadHandler;
import dev.dvmm.dsm.transport.Transport;
import dev.dvmm.dsm.transport.TransportException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.concurrent.locks.LockSupport;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * One node's DSM service: the protocol engine wired to this node's memory (userfaultfd, memfd) and to
 * the transport.
 *
 * <p>Three threads feed the engine, serialized by one lock: the fault reader (local faults), the
 * transport's receive thread (protocol messages, and local faults too while it busy-polls, see
 * {@link #setBusyPoll}) and a timer thread (hold-time deferrals, woken only when the engine defers a
 * yield). Each thread sends its own messages straight to the socket (at the end of its engine step,
 * once the step's page actions took effect: see endStep) and the receive thread installs
 * pages itself, so a remote fault costs no hand-off beyond the wake-ups of the threads that wait for
 * it. Engine actions touch the guest mapping in one place only: the data of a page this node holds read-only is
 * copied out of it (a memcpy, where pread from the memfd costs a system call). Should that copy fault on this node's
 * own userfaultfd (the kernel dropped the mapping), the fault reader maps the page back without the lock, or, if the
 * fault reader itself waits for the lock, a fourth thread that never takes it does (see copyWatchLoop). Installs use
 * UFFDIO_COPY, and a page that may be writable is read with pread. Nothing is allocated per fault or per message.
 */
public final class DsmNode implements AutoCloseable {
    /** Transport message types at or above this are for the layer above (cluster control), not the protocol. */
    public static final int FIRST_CONTROL_TYPE = 100;

    private static final Logger LOG = LogManager.getLogger(DsmNode.class);

    /** Receives non-protocol messages on the transport thread. */
    public interface ControlHandler {
        void onControl(InboundMessage message);
    }

    private final int rank;
    private final Transport transport;
    private final MemorySegment guest;
    private final int memfd;
    private final ProtocolEngine engine;
    private final DsmStats stats = new DsmStats();
    private final Object lock = new Object();
    private final long[] faultStart;
    private final boolean[] faultWrite;
    private final Userfaultfd uffd;
    private final DsmPages pages;
    private final FaultReader reader;
    private final Thread timer;
    private final Thread copyWatch;
    private volatile boolean running = true;
    /** Set under the lock by close: the memory is released, inputs are ignored. */
    private boolean closed;
    private volatile ControlHandler control;
    private volatile Throwable failure;
    /** Optional timeline of the fault path (benchmarks); read once per event, so it may change while running. */
    private volatile FaultTrace trace;

    /** How long the transport may busy-poll while a local fault awaits a peer; 0: never (see setBusyPoll). */
    private volatile long busyPollNanos;
    private final Transport.PollWork pollFaults = this::pollFaults;
    // Pages with a local fault waiting for a remote answer, and how many (busy-polling lasts while there are any).
    private final boolean[] awaitingRemote;
    private int awaitingRemoteCount;

    // Deferrals the timer thread knows of: it is woken only when the engine defers another yield.
    private long timerDeferrals;
    // Local faulters woken in the current engine call that had waited for a remote answer (see yieldToWoken); reset
    // when a message or read step starts, since fault and timer steps may count too.
    private int wokeFaulters;
    // The page an install of the current engine call already woke (its faulters need no UFFDIO_WAKE), or -1.
    private int installedPage = -1;

    // Pages write-protected for a send during the current engine call (see sendWithPage).
    private final int[] frozen = new int[64];
    private int frozenCount;

    // The message being handled (only valid inside onMessage, under the lock).
    private MemorySegment currentPayload;
    private long currentPayloadOffset;

    // One-sided reads (config.oneSidedReads()): a 4 KiB landing buffer per read in flight, reused; grows if needed.
    // Freed by the GC, not by close: the transport (closed after this node) may still write into a buffer until it
    // fails the read, and it holds this node's handler, hence the buffers, until then.
    private final Arena readArena = Arena.ofAuto();
    private MemorySegment[] readBuffers = new MemorySegment[0];
    private int[] freeReadBuffers = new int[0];
    private int freeReadCount;
    // The buffer of the read being installed (only valid inside onRemoteRead, under the lock).
    private MemorySegment currentRead;
    private final RemoteReadHandler readDone = this::onRemoteRead;

    public DsmNode(Transport transport, ProtocolConfig config, int memfd, MemorySegment guest, MemorySegment alias) {
        if (guest.byteSize() / DsmPages.PAGE_SIZE != config.pageCount()) {
            throw new IllegalArgumentException("protocol page count " + config.pageCount() + " does not match "
                    + guest.byteSize() / DsmPages.PAGE_SIZE + " pages of guest memory");
        }
        if (config.oneSidedReads()) {
            try {
                // Before the transport starts: the key to this memory travels with the connection set-up.
                transport.exposeMemory(alias);
            } catch (TransportException e) {
                throw new IllegalArgumentException("one-sided reads are on, but " + e.getMessage()
                        + " (run every node with remote reads off)", e);
            }
            growReadBuffers(64);
        }
        this.rank = transport.rank();
        this.transport = transport;
        this.guest = guest;
        this.memfd = memfd;
        this.faultStart = new long[config.pageCount()];
        this.faultWrite = new boolean[config.pageCount()];
        this.awaitingRemote = new boolean[config.pageCount()];
        this.engine = new ProtocolEngine(config, rank, new TransportOutbox(), new MemoryActions());
        this.uffd = DsmPages.registerGuestMapping(guest);
        this.pages = new DsmPages(uffd, memfd, guest);
        this.reader = new FaultReader(uffd, guest, this::onFault, "dsm-faults-" + rank);
        this.timer = Thread.ofPlatform().name("dsm-timer-" + rank).daemon(true).unstarted(this::timerLoop);
        this.copyWatch = Thread.ofPlatform().name("dsm-copy-watch-" + rank).daemon(true).unstarted(this::copyWatchLoop);
    }

    public int rank() { return rank; }

    /** Whether this node freezes a page it hands on by unmapping it (MINOR faults registered) or write-protects it. */
    public boolean freezesByUnmapping() { return pages.freezesByUnmapping(); }

    /** Tests: runs {@code body} on the calling thread holding this node's lock, as an engine step does. */
    void underLockForTest(Runnable body) {
        synchronized (lock) {
            body.run();
        }
    }

    /** Tests: this node's page operations (use them only under {@link #underLockForTest}). */
    DsmPages pagesForTest() { return pages; }

    public DsmStats stats() { return stats; }

    public ProtocolEngine engine() { return engine; }

    /** Installs that found the page already present (UFFDIO_COPY/ZEROPAGE EEXIST). */
    public long installRaces() {
        synchronized (lock) {
            return pages.eexistCount();
        }
    }

    /** First failure of a DSM thread, or null; a failed node cannot serve its pages any more. */
    public Throwable failure() { return failure; }

    public void setControlHandler(ControlHandler handler) { this.control = handler; }

    /**
     * Lets the transport's receive thread poll without sleeping, for at most {@code nanos} after this node asked a
     * peer for a page and until the answer is in, and serve new local faults itself meanwhile: the answer then
     * needs no thread wake-up, at the price of a spinning thread (worth it when cores are to spare; on an
     * oversubscribed host the spinner delays the threads it should serve). 0, the default, turns it off.
     */
    public void setBusyPoll(long nanos) {
        if (nanos < 0) {
            throw new IllegalArgumentException("busy-poll time " + nanos + " ns must not be negative");
        }
        this.busyPollNanos = nanos;
    }

    /** Records the steps of the fault path into {@code t} (null: off); may change at any time (benchmarks). */
    public void setTrace(FaultTrace t) { this.trace = t; }

    /**
     * Starts serving faults; call after the transport is started with {@link #onMessage} as its handler and every
     * peer is connected (with one-sided reads on, each peer must have exposed its memory: checked here).
     */
    public void start() {
        if (engine.config().oneSidedReads()) {
            for (int peer = 0; peer < engine.config().nodeCount(); peer++) {
                if (peer != rank && !transport.canReadRemote(peer)) {
                    throw new IllegalStateException("node " + rank + ": one-sided reads are on, but node " + peer
                            + " exposed no memory to read (or is not connected): give every node the same "
                            + "--remote-reads, or off");
                }
            }
        }
        reader.start();
        timer.start();
        copyWatch.start();
        // Whenever the transport's thread polls awake (after input, for its busy-poll window), it also takes local
        // faults off the uffd: the next fault after an answer then needs no wake-up of the fault reader thread
        // (bench fault, 2 nodes: the fault-read stage 5.9-6.1 -> 4.3-4.7 us, remote read p50 54-56 -> 43-50 us).
        transport.busyPollUntil(System.nanoTime(), pollFaults);
    }

    // ------------------------------------------------------------------ inputs

    private void onFault(long page, boolean write, boolean wp, int tid) {
        int p = (int) page;
        boolean deferred;
        boolean waiting;
        FaultTrace t = trace;
        if (t != null) {
            t.record(rank, FaultTrace.FAULT, write ? 1 : 0, p);
        }
        if (!wp && page == pages.copyingPage() && rescueCopy(page)) {
            return; // the copier (or a vCPU touching the same page) faulted on a held page: mapped back read-only
        }
        synchronized (lock) {
            if (closed) {
                return;
            }
            if (t != null) {
                t.record(rank, FaultTrace.FAULT_LOCKED, 0, p);
            }
            try {
                if (!wp && pages.freezesByUnmapping() && PageState.holdsCopy(engine.localState(p))) {
                    // Held but not mapped (the kernel dropped the mapping, e.g. to reclaim memory, or the fault
                    // raced with an install); a write to a read-only copy then faults WP and goes to the engine.
                    stats.remaps++; // before the remap wakes the faulting thread
                    mapBackHeld(p);
                    return;
                }
                if (wp && engine.localState(p) == PageState.MODIFIED) {
                    // Writable here but mapped write-protected: a late rescue of a copy (rescueCopy runs without the
                    // lock) mapped it back read-only after the page became MODIFIED. Give the write access back;
                    // the engine would only wake the writer, which would fault again.
                    stats.remaps++;
                    pages.upgrade(p);
                    return;
                }
                if (faultStart[p] == 0) {
                    faultStart[p] = System.nanoTime();
                    faultWrite[p] = write;
                }
                if (wp) {
                    stats.wpFaults++;
                }
                if (write) {
                    stats.writeFaults++;
                } else {
                    stats.readFaults++;
                }
                engine.onLocalFault(p, write, System.nanoTime());
            } catch (RuntimeException e) {
                fail(e);
            } finally {
                endStep();
            }
            deferred = newDeferral();
            waiting = engine.localState(p) >= PageState.READ_PENDING;
            if (waiting && !awaitingRemote[p]) {
                awaitingRemote[p] = true;
                awaitingRemoteCount++;
            }
        }
        long spin = busyPollNanos;
        if (waiting && spin > 0) {
            // The answer comes to the transport's thread: let it wait awake rather than be woken.
            transport.busyPollUntil(System.nanoTime() + spin, pollFaults);
        }
        if (deferred) {
            wakeTimer();
        }
    }

    /** The transport's busy-poll work: faults queued on the uffd, served on the transport's thread. */
    private int pollFaults() {
        synchronized (lock) {
            // Under the lock, so that close() cannot release the uffd in between.
            return closed ? 0 : reader.pollNow();
        }
    }

    /** The transport's message handler: protocol messages go to the engine, the rest to the control handler. */
    public void onMessage(InboundMessage m) {
        int type = m.type();
        if (type >= FIRST_CONTROL_TYPE) {
            ControlHandler c = control;
            if (c != null) {
                c.onControl(m);
            }
            return;
        }
        boolean deferred;
        boolean idle;
        int woke;
        FaultTrace t = trace;
        if (t != null) {
            t.record(rank, FaultTrace.RECEIVED, type, toInt(m.arg0()));
        }
        synchronized (lock) {
            if (closed) {
                return;
            }
            if (t != null) {
                t.record(rank, FaultTrace.RECEIVED_LOCKED, type, toInt(m.arg0()));
            }
            wokeFaulters = 0;
            stats.messagesReceived++;
            stats.bytesReceived += m.payloadLength();
            if (MessageType.carriesPage(type) && m.payloadLength() != DsmPages.PAGE_SIZE) {
                stats.rejectedMessages++;
                LOG.warn("node {}: rejected {} from node {} carrying {} bytes instead of a page", rank,
                        MessageType.name(type), m.peer(), m.payloadLength());
                return;
            }
            if (type == MessageType.INVALIDATE) {
                stats.invalidationsReceived++;
            }
            currentPayload = m.payloadSegment();
            currentPayloadOffset = m.payloadOffset();
            try {
                engine.onMessage(m.peer(), type, toInt(m.arg0()), toInt(m.arg1()), toInt(m.arg2()),
                        toInt(m.arg3()), System.nanoTime());
            } catch (ProtocolException e) {
                stats.rejectedMessages++;
                LOG.warn("node {}: rejected message: {}", rank, e.getMessage());
            } catch (RuntimeException e) {
                fail(e);
            } finally {
                currentPayload = null;
                installedPage = -1;
                endStep();
            }
            deferred = newDeferral();
            idle = awaitingRemoteCount == 0;
            woke = wokeFaulters;
        }
        if (idle && busyPollNanos > 0) {
            // Nothing awaited any more: end this node's own polling deadline (the transport's window after input
            // still applies), the CPU is better spent on the vCPUs just woken.
            transport.busyPollUntil(System.nanoTime(), pollFaults);
        }
        if (t != null) {
            t.record(rank, FaultTrace.HANDLED, type, toInt(m.arg0()));
        }
        if (deferred) {
            wakeTimer();
        }
        yieldToWoken(woke);
    }

    /**
     * After a step that woke threads waiting for a remote answer, outside the lock: the transport thread gives its CPU
     * to them now, not after its next round of polls (both transports poll on for a while after input). Where the
     * woken thread shares this CPU (a vCPU and the transport thread on one core) it otherwise waits for the poll loop's
     * own yield: "handled DATA_READ -> access done" in bench fault's trace went from 2.3 to 1.4 us. With a free core
     * the yield returns at once.
     */
    private static void yieldToWoken(int woke) {
        if (woke > 0) {
            Thread.yield();
        }
    }

    /** A one-sided read finished (transport's receive thread): install the page, end the transaction. */
    private void onRemoteRead(int peer, long token, TransportException failure) {
        int page = (int) token;
        int buffer = (int) (token >>> 32);
        FaultTrace t = trace;
        if (t != null) {
            t.record(rank, FaultTrace.READ_DONE, peer, page);
        }
        int woke;
        synchronized (lock) {
            wokeFaulters = 0;
            freeReadBuffers[freeReadCount++] = buffer;
            if (closed) {
                return;
            }
            if (failure != null) {
                fail(new IllegalStateException("node " + rank + ": one-sided read of page " + page + " from node "
                        + peer + " failed: " + failure.getMessage(), failure));
                return;
            }
            currentRead = readBuffers[buffer];
            try {
                engine.onRemoteReadDone(page, System.nanoTime());
            } catch (RuntimeException e) {
                fail(e);
            } finally {
                currentRead = null;
                installedPage = -1;
                endStep();
            }
            woke = wokeFaulters;
        }
        yieldToWoken(woke);
    }

    private void growReadBuffers(int count) {
        int old = readBuffers.length;
        readBuffers = Arrays.copyOf(readBuffers, count);
        freeReadBuffers = Arrays.copyOf(freeReadBuffers, count);
        for (int i = old; i < count; i++) {
            readBuffers[i] = readArena.allocate(DsmPages.PAGE_SIZE, DsmPages.PAGE_SIZE);
            freeReadBuffers[freeReadCount++] = i;
        }
    }

    /** Whether the engine deferred a yield since the last check (the timer may have to wake earlier); under the lock. */
    private boolean newDeferral() {
        long d = engine.deferrals();
        if (d == timerDeferrals) {
            return false;
        }
        timerDeferrals = d;
        return true;
    }

    /** Maps a page this node holds back into the guest mapping as its state says, read-only unless MODIFIED. */
    private void mapBackHeld(int page) {
        int state = engine.localState(page);
        if (!pages.remap(page, state == PageState.MODIFIED)) {
            throw new IllegalStateException("node " + rank + ": page " + page + " is " + PageState.name(state)
                    + " here but not in guest memory");
        }
    }

    /**
     * The end of one engine step (under the lock): its messages leave now, after all its page actions took effect,
     * then pages frozen for a send that stayed writable get write access back. Sending earlier was a real bug: a node
     * handing a page on (DATA_WRITE, then dropping its copy) was descheduled inside the send after the bytes left, the
     * new owner wrote the page, and a thread of the old owner still read its old copy for 0.9 ms until the punch
     * (DsmStressTest lost a node's increments about once in 300 runs on a loaded host). The exhaustive check models
     * exactly this order: a message is delivered in a later transition than the step that sent it.
     */
    private void endStep() {
        try {
            flushSends();
        } finally {
            thawFrozen();
        }
    }

    /**
     * Pages frozen for a send that this node still holds get their access back: write access if the engine kept them
     * writable (none in the current protocol); an unmapped page it kept read-only is mapped back read-only.
     */
    private void thawFrozen() {
        for (int i = 0; i < frozenCount; i++) {
            int page = frozen[i];
            int state = engine.localState(page);
            if (pages.freezesByUnmapping()) {
                if (PageState.holdsCopy(state)) {
                    mapBackHeld(page);
                }
            } else if (state == PageState.MODIFIED) {
                pages.upgrade(page);
            }
        }
        frozenCount = 0;
    }

    private boolean frozenThisStep(int page) {
        for (int i = 0; i < frozenCount; i++) {
            if (frozen[i] == page) {
                return true;
            }
        }
        return false;
    }

    /**
     * Unblocks a copy of page data out of the guest mapping that faulted into this node's own uffd (see
     * DsmPages.copyOutMapped); the copier holds the lock, so this runs without it. Returns whether it did.
     */
    private boolean rescueCopy(long page) {
        if (page < 0) {
            return false;
        }
        int r;
        try {
            r = pages.rescueCopy(page);
        } catch (RuntimeException e) {
            fail(e); // the node cannot serve its pages any more: say so rather than leave a thread stuck
            return false;
        }
        if (r == 1) {
            stats.copyRescues.incrementAndGet();
            LOG.debug("node {}: mapped page {} back for a copy of its data that faulted", rank, page);
        }
        return r >= 0;
    }

    private static int toInt(long v) {
        return v < Integer.MIN_VALUE || v > Integer.MAX_VALUE ? -1 : (int) v;
    }

    private void timerLoop() {
        while (running) {
            long deadline;
            synchronized (lock) {
                if (closed) {
                    return;
                }
                deadline = engine.nextDeadline();
                if (deadline != Long.MAX_VALUE && deadline <= System.nanoTime()) {
                    try {
                        engine.onTimer(System.nanoTime());
                    } catch (RuntimeException e) {
                        fail(e);
                    } finally {
                        endStep();
                    }
                    continue;
                }
            }
            long wait = deadline == Long.MAX_VALUE ? 100_000_000L : Math.max(1_000, deadline - System.nanoTime());
            LockSupport.parkNanos(this, wait);
        }
    }

    /** How often the copy watch looks for a copy out of the guest mapping that has not moved on. */
    static final long COPY_WATCH_NANOS = 50_000_000L;

    /**
     * Unblocks a copy out of the guest mapping that faulted while every thread that reads this node's uffd waited
     * for the lock its copier holds (see DsmPages.copyOutMapped): a copy seen at two looks in a row is mapped back.
     * Never takes the lock, so it cannot be among the waiters. A copy takes microseconds, so a rescue of one that was
     * merely slow is rare, and harmless: its page is mapped already and the rescue only wakes.
     */
    private void copyWatchLoop() {
        long seenPage = -1;
        long seenSequence = -1;
        while (running) {
            LockSupport.parkNanos(this, COPY_WATCH_NANOS);
            long page = pages.copyingPage();
            long sequence = pages.copySequence();
            if (page >= 0 && page == seenPage && sequence == seenSequence) {
                rescueCopy(page);
            }
            seenPage = page;
            seenSequence = sequence;
        }
    }

    private void wakeTimer() {
        LockSupport.unpark(timer);
    }

    private void fail(Throwable t) {
        if (failure == null) {
            failure = t;
            LOG.error("node {}: DSM failure: {}", rank, t.toString());
        }
    }

    // ------------------------------------------------------------------ outputs

    // The messages of the current engine step, sent by endStep (see there); page contents are copied into per-step
    // buffers when the engine sends them, because the engine may drop the page right after.
    private int pendingCount;
    private int[] pendingDst = new int[0];
    private OutboundMessage[] pending = new OutboundMessage[0];
    private final Arena dataArena = Arena.ofShared();
    private MemorySegment[] pendingPages = new MemorySegment[0];
    private int pendingPagesUsed;

    /** The next message of this step, to go to {@code dst} when the step ends (slots grow, then are reused). */
    private OutboundMessage queue(int dst) {
        if (pendingCount == pending.length) {
            int n = Math.max(16, pendingCount * 2);
            pendingDst = Arrays.copyOf(pendingDst, n);
            pending = Arrays.copyOf(pending, n);
            for (int i = pendingCount; i < n; i++) {
                pending[i] = new OutboundMessage();
            }
        }
        pendingDst[pendingCount] = dst;
        return pending[pendingCount++].clear();
    }

    private void flushSends() {
        int count = pendingCount;
        pendingCount = 0;
        pendingPagesUsed = 0;
        for (int i = 0; i < count; i++) {
            OutboundMessage m = pending[i];
            stats.bytesSent += m.payloadLength();
            transmit(pendingDst[i], m);
        }
    }

    private void transmit(int dst, OutboundMessage m) {
        int type = m.type();
        stats.messagesSent++;
        if (type == MessageType.INVALIDATE) {
            stats.invalidationsSent++;
        }
        try {
            transport.send(dst, m);
            FaultTrace t = trace;
            if (t != null) {
                t.record(rank, FaultTrace.SENT, type, (int) m.arg0());
            }
        } catch (TransportException e) {
            throw new IllegalStateException("node " + rank + ": cannot send " + MessageType.name(type) + " to node "
                    + dst + ": " + e.getMessage(), e);
        }
    }

    private final class TransportOutbox implements Outbox {
        @Override
        public void send(int dstNode, int type, int page, int requester, int version, int acks) {
            queue(dstNode).type((short) type).arg0(page).arg1(requester).arg2(version).arg3(acks).noPayload();
        }

        @Override
        public void sendWithPage(int dstNode, int type, int page, int requester, int version, int acks) {
            if (engine.localState(page) == PageState.MODIFIED) {
                // The protocol treats "send my copy" as atomic, but a vCPU or device thread on this
                // node may still be writing the page: freeze it first, or writes made between the copy
                // and the invalidation that follows are lost. Restored at the end of the step if the page stays.
                pages.freeze(page);
                frozen[frozenCount++] = page;
                FaultTrace t = trace;
                if (t != null) {
                    t.record(rank, FaultTrace.PROTECTED, pages.freezesByUnmapping() ? 2 : 1, page);
                }
            }
            if (pendingPagesUsed == pendingPages.length) {
                int old = pendingPages.length;
                pendingPages = Arrays.copyOf(pendingPages, Math.max(4, old * 2));
                for (int i = old; i < pendingPages.length; i++) {
                    pendingPages[i] = dataArena.allocate(DsmPages.PAGE_SIZE, DsmPages.PAGE_SIZE);
                }
            }
            MemorySegment copy = pendingPages[pendingPagesUsed++];
            if (engine.localState(page) == PageState.SHARED && !frozenThisStep(page)) {
                // Read-only and mapped: a memcpy, not a system call. (A page frozen earlier in this step while it was
                // MODIFIED may be SHARED by now but is unmapped until the step ends: pread.)
                pages.copyOutMapped(page, copy);
            } else {
                pages.copyOut(page, copy);
            }
            FaultTrace t = trace;
            if (t != null) {
                t.record(rank, FaultTrace.COPIED, 0, page);
            }
            queue(dstNode).type((short) type).arg0(page).arg1(requester).arg2(version).arg3(acks)
                    .payload(copy, 0, (int) DsmPages.PAGE_SIZE);
        }
    }

    private final class MemoryActions implements PageActions {
        @Override
        public void installZero(int page, boolean writable) {
            stats.zeroFills++;
            pages.installZero(page, writable);
            installed(page);
        }

        @Override
        public void installFromMessage(int page, boolean writable) {
            stats.remoteFetches++;
            pages.install(page, currentPayload, currentPayloadOffset, writable);
            installed(page);
        }

        @Override
        public void readRemote(int page, int source) {
            if (freeReadCount == 0) {
                growReadBuffers(readBuffers.length * 2);
            }
            int buffer = freeReadBuffers[--freeReadCount];
            FaultTrace t = trace;
            if (t != null) {
                t.record(rank, FaultTrace.READ_STARTED, source, page);
            }
            try {
                transport.readRemote(source, (long) page << DsmPages.PAGE_SHIFT, readBuffers[buffer], readDone,
                        (long) buffer << 32 | page);
            } catch (TransportException e) {
                freeReadBuffers[freeReadCount++] = buffer;
                throw new IllegalStateException("node " + rank + ": cannot read page " + page + " from node " + source
                        + ": " + e.getMessage(), e);
            }
        }

        @Override
        public void installFromRemoteRead(int page) {
            stats.remoteFetches++;
            stats.oneSidedReads++;
            stats.bytesReceived += DsmPages.PAGE_SIZE;
            pages.install(page, currentRead, 0, false);
            installed(page);
        }

        @Override
        public void makeWritable(int page) {
            stats.upgrades++;
            pages.upgrade(page);
            installed(page);
        }

        @Override
        public void makeReadOnly(int page) {
            pages.downgrade(page);
            FaultTrace t = trace;
            if (t != null) {
                t.record(rank, FaultTrace.PROTECTED, 0, page);
            }
        }

        @Override
        public void invalidate(int page) {
            pages.invalidate(page);
            FaultTrace t = trace;
            if (t != null) {
                t.record(rank, FaultTrace.PUNCHED, 0, page);
            }
        }

        @Override
        public void faultResolved(int page) {
            long t0 = faultStart[page];
            if (t0 != 0) {
                long dt = System.nanoTime() - t0;
                (faultWrite[page] ? stats.writeLatencyNanos : stats.readLatencyNanos).recordValue(Math.max(0, dt));
                faultStart[page] = 0;
            }
            if (awaitingRemote[page]) {
                wokeFaulters++;
                awaitingRemote[page] = false;
                awaitingRemoteCount--;
            }
            if (installedPage != page) {
                pages.wake(page);
            }
            installedPage = -1;
            FaultTrace t = trace;
            if (t != null) {
                t.record(rank, FaultTrace.RESOLVED, 0, page);
            }
        }
    }

    private void installed(int page) {
        // UFFDIO_COPY, ZEROPAGE and WRITEPROTECT (without DONTWAKE) wake the page's faulters themselves.
        installedPage = page;
        FaultTrace t = trace;
        if (t != null) {
            t.record(rank, FaultTrace.INSTALLED, 0, page);
        }
    }

    /** Snapshot of this node's local page states (for tests and diagnostics). */
    public int[] localStates() {
        synchronized (lock) {
            int[] s = new int[faultStart.length];
            for (int i = 0; i < s.length; i++) {
                s[i] = engine.localState(i);
            }
            return s;
        }
    }

    @Override
    public void close() {
        synchronized (lock) {
            if (closed) {
                return; // closing twice is harmless
            }
        }
        running = false;
        synchronized (lock) {
            // Faults, messages and busy-poll work are ignored from now on; none is in the middle of an ioctl.
            closed = true;
        }
        wakeTimer();
        LockSupport.unpark(copyWatch);
        reader.close();
        try {
            timer.join(2000);
            copyWatch.join(2000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        synchronized (lock) {
            pages.close();
            uffd.close();
            dataArena.close();
            Arrays.fill(faultStart, 0);
        }
    }

    /** The memfd this node's guest memory lives in. */
    public int memfd() { return memfd; }

    /** The guest mapping served by this node. */
    public MemorySegment guestMapping() { return guest; }
}
