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
import dev.dvmm.dsm.transport.Transport;
import dev.dvmm.dsm.transport.TransportException;
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
 * transport's receive thread (protocol messages) and a timer thread (hold-time deferrals). Engine
 * actions never touch the guest mapping (installs use UFFDIO_COPY, reads use the alias mapping), so
 * nothing done under the lock can fault on this node's own userfaultfd. Nothing is allocated per
 * fault or per message.
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
    private final MemorySegment alias;
    private final int memfd;
    private final ProtocolEngine engine;
    private final DsmStats stats = new DsmStats();
    private final Object lock = new Object();
    private final OutboundMessage out = new OutboundMessage();
    private final long[] faultStart;
    private final boolean[] faultWrite;
    private final Userfaultfd uffd;
    private final DsmPages pages;
    private final FaultReader reader;
    private final Thread timer;
    private volatile boolean running = true;
    private volatile ControlHandler control;
    private volatile Throwable failure;

    // Pages write-protected for a send during the current engine call (see sendWithPage).
    private final int[] frozen = new int[64];
    private int frozenCount;

    // The message being handled (only valid inside onMessage, under the lock).
    private MemorySegment currentPayload;
    private long currentPayloadOffset;

    public DsmNode(Transport transport, ProtocolConfig config, int memfd, MemorySegment guest, MemorySegment alias) {
        if (guest.byteSize() / DsmPages.PAGE_SIZE != config.pageCount()) {
            throw new IllegalArgumentException("protocol page count " + config.pageCount() + " does not match "
                    + guest.byteSize() / DsmPages.PAGE_SIZE + " pages of guest memory");
        }
        this.rank = transport.rank();
        this.transport = transport;
        this.guest = guest;
        this.alias = alias;
        this.memfd = memfd;
        this.faultStart = new long[config.pageCount()];
        this.faultWrite = new boolean[config.pageCount()];
        this.engine = new ProtocolEngine(config, rank, new TransportOutbox(), new MemoryActions());
        this.uffd = DsmPages.registerGuestMapping(guest);
        this.pages = new DsmPages(uffd, memfd, guest, alias);
        this.reader = new FaultReader(uffd, guest, this::onFault, "dsm-faults-" + rank);
        this.timer = Thread.ofPlatform().name("dsm-timer-" + rank).daemon(true).unstarted(this::timerLoop);
    }

    public int rank() { return rank; }

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

    /** Starts serving faults; call after the transport is started with {@link #onMessage} as its handler. */
    public void start() {
        reader.start();
        timer.start();
    }

    // ------------------------------------------------------------------ inputs

    private void onFault(long page, boolean write, boolean wp, int tid) {
        int p = (int) page;
        synchronized (lock) {
            try {
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
                thawFrozen();
            } catch (RuntimeException e) {
                fail(e);
            }
        }
        wakeTimer();
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
        synchronized (lock) {
            if (!running) {
                return; // closed while the transport still delivers: the pages are gone
            }
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
                engine.onMessage(m.peer(), type, toInt(m.arg0()), toInt(m.arg1()), toInt(m.arg2()), System.nanoTime());
                thawFrozen();
            } catch (ProtocolException e) {
                frozenCount = 0;
                stats.rejectedMessages++;
                LOG.warn("node {}: rejected message: {}", rank, e.getMessage());
            } catch (RuntimeException e) {
                fail(e);
            } finally {
                currentPayload = null;
            }
        }
        wakeTimer();
    }

    /** Pages frozen for a send that the engine kept writable (none in the current protocol) get write access back. */
    private void thawFrozen() {
        for (int i = 0; i < frozenCount; i++) {
            if (engine.localState(frozen[i]) == PageState.MODIFIED) {
                pages.upgrade(frozen[i]);
            }
        }
        frozenCount = 0;
    }

    private static int toInt(long v) {
        return v < Integer.MIN_VALUE || v > Integer.MAX_VALUE ? -1 : (int) v;
    }

    private void timerLoop() {
        while (running) {
            long deadline;
            synchronized (lock) {
                deadline = engine.nextDeadline();
                if (deadline != Long.MAX_VALUE && deadline <= System.nanoTime()) {
                    try {
                        engine.onTimer(System.nanoTime());
                        thawFrozen();
                    } catch (RuntimeException e) {
                        fail(e);
                    }
                    continue;
                }
            }
            long wait = deadline == Long.MAX_VALUE ? 100_000_000L : Math.max(1_000, deadline - System.nanoTime());
            LockSupport.parkNanos(this, wait);
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

    private final class TransportOutbox implements Outbox {
        @Override
        public void send(int dstNode, int type, int page, int requester, int version) {
            out.clear().type((short) type).arg0(page).arg1(requester).arg2(version).noPayload();
            transmit(dstNode, type);
        }

        @Override
        public void sendWithPage(int dstNode, int type, int page, int requester, int version) {
            if (engine.localState(page) == PageState.MODIFIED) {
                // The protocol treats "send my copy" as atomic, but a vCPU or device thread on this
                // node may still be writing the page: freeze it first, or writes made between the copy
                // and the invalidation that follows are lost. Restored below if the page stays ours.
                pages.downgrade(page);
                frozen[frozenCount++] = page;
            }
            out.clear().type((short) type).arg0(page).arg1(requester).arg2(version)
                    .payload(alias, (long) page << DsmPages.PAGE_SHIFT, (int) DsmPages.PAGE_SIZE);
            stats.bytesSent += DsmPages.PAGE_SIZE;
            transmit(dstNode, type);
        }

        private void transmit(int dst, int type) {
            stats.messagesSent++;
            if (type == MessageType.INVALIDATE) {
                stats.invalidationsSent++;
            }
            try {
                transport.send(dst, out);
            } catch (TransportException e) {
                throw new IllegalStateException("node " + rank + ": cannot send " + MessageType.name(type) + " to node "
                        + dst + ": " + e.getMessage(), e);
            }
        }
    }

    private final class MemoryActions implements PageActions {
        @Override
        public void installZero(int page, boolean writable) {
            stats.zeroFills++;
            pages.installZero(page, writable);
        }

        @Override
        public void installFromMessage(int page, boolean writable) {
            stats.remoteFetches++;
            pages.install(page, currentPayload, currentPayloadOffset, writable);
        }

        @Override
        public void makeWritable(int page) {
            stats.upgrades++;
            pages.upgrade(page);
        }

        @Override
        public void makeReadOnly(int page) {
            pages.downgrade(page);
        }

        @Override
        public void invalidate(int page) {
            pages.invalidate(page);
        }

        @Override
        public void faultResolved(int page) {
            long t0 = faultStart[page];
            if (t0 != 0) {
                long dt = System.nanoTime() - t0;
                (faultWrite[page] ? stats.writeLatencyNanos : stats.readLatencyNanos).recordValue(Math.max(0, dt));
                faultStart[page] = 0;
            }
            pages.wake(page);
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
            running = false;
        }
        wakeTimer();
        reader.close();
        try {
            timer.join(2000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        synchronized (lock) {
            // A message handler still running in the transport's thread holds the lock while it uses them.
            pages.close();
        }
        uffd.close();
        Arrays.fill(faultStart, 0);
    }

    /** The memfd this node's guest memory lives in. */
    public int memfd() { return memfd; }

    /** The guest mapping served by this node. */
    public MemorySegment guestMapping() { return guest; }
}
