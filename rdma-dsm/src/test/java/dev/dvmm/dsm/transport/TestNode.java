package dev.dvmm.dsm.transport;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.LockSupport;

/**
 * The behaviour every conformance test node runs: echo requests, check per-sender order and
 * payload contents of sequenced messages, hold requests unanswered on demand, record peer events.
 * Its handler runs on the transport's receive thread; the counters are read by test threads.
 */
final class TestNode implements MessageHandler, PeerListener {
    /** Request: answer with the same payload and transformed args. */
    static final short ECHO = 1;
    /** One-way: arg0 is a per-sender sequence number, arg1 the payload pattern seed. */
    static final short SEQUENCED = 2;
    /** Request: never answered by the handler; the test may answer it later. */
    static final short HOLD = 3;
    /** One-way: the handler waits (at most 20 s) until {@link #gate} opens. Stalls the receive thread. */
    static final short STALL = 4;
    /** Request: answer with arg1 bytes of pattern payload (seed {@link #BULK_SEED}) and arg0 echoed. */
    static final short BULK = 5;
    static final long BULK_SEED = 3;
    /** Any kind: the handler throws. */
    static final short THROW = 6;
    /** One-way: the handler counts it while holding {@link #engineLock}. */
    static final short LOCKED = 7;
    /** Request: send arg0 NOTE messages to the requester, then (20 us or more later) answer with arg0. */
    static final short NOTES_THEN_REPLY = 8;
    /** One-way: the handler takes a while (sleeps 50 us or more), then counts it in {@link #notes}. */
    static final short NOTE = 9;
    /** Type of echo replies. */
    static final short ECHO_REPLY = 101;
    static final long ECHO_XOR = 0x5A5A_5A5A_0F0F_0F0FL;

    final int rank;
    final int clusterSize;
    Transport transport;

    private final OutboundMessage reply = new OutboundMessage();
    /** Pattern payload for BULK replies; receive thread only. */
    private MemorySegment bulk;
    /** Next expected sequence number per sender; receive thread only. */
    private final long[] nextSequence;
    final AtomicLongArray sequencedReceived;
    final AtomicLong orderViolations = new AtomicLong();
    final AtomicLong payloadMismatches = new AtomicLong();
    final AtomicLong echoes = new AtomicLong();
    final AtomicLong handlerFailures = new AtomicLong();
    /** Held requests as {peer, correlationId}. */
    final ConcurrentLinkedQueue<long[]> held = new ConcurrentLinkedQueue<>();
    final CountDownLatch gate = new CountDownLatch(1);
    /** Stands for the DSM's engine lock: test threads send while they hold it, the LOCKED handler takes it. */
    final Object engineLock = new Object();
    /** LOCKED messages counted; guarded by engineLock. */
    long lockedReceived;
    final CountDownLatch stalled = new CountDownLatch(1);
    /** NOTE messages handled completely. */
    final AtomicLong notes = new AtomicLong();
    final BlockingQueue<Integer> peersUp = new LinkedBlockingQueue<>();
    final BlockingQueue<Integer> peersDown = new LinkedBlockingQueue<>();
    final BlockingQueue<TransportException> downCauses = new LinkedBlockingQueue<>();

    TestNode(int rank, int clusterSize) {
        this.rank = rank;
        this.clusterSize = clusterSize;
        this.nextSequence = new long[clusterSize];
        this.sequencedReceived = new AtomicLongArray(clusterSize);
    }

    @Override
    public void onMessage(InboundMessage message) {
        switch (message.type()) {
            case ECHO -> echo(message);
            case SEQUENCED -> sequenced(message);
            case HOLD -> held.add(new long[] {message.peer(), message.correlationId()});
            case STALL -> stall();
            case BULK -> bulk(message);
            case THROW -> throw new IllegalStateException("test handler throws on purpose");
            case NOTES_THEN_REPLY -> notesThenReply(message);
            case NOTE -> {
                // Sleeps rather than spins, leaving the core to the requester that polls meanwhile.
                LockSupport.parkNanos(50_000);
                notes.incrementAndGet();
            }
            case LOCKED -> {
                synchronized (engineLock) {
                    lockedReceived++;
                }
            }
            default -> handlerFailures.incrementAndGet();
        }
    }

    private void echo(InboundMessage message) {
        if (!message.isRequest()) {
            handlerFailures.incrementAndGet();
            return;
        }
        reply.clear().type(ECHO_REPLY).flags(message.flags()).arg0(message.arg0())
                .arg1(message.arg1() ^ ECHO_XOR).arg2(rank).arg3(message.arg3() + 1);
        if (message.payloadLength() > 0) {
            // Straight from the receive buffer: it stays valid until this handler returns.
            reply.payload(message.payloadSegment(), message.payloadOffset(), message.payloadLength());
        }
        try {
            transport.reply(message, reply);
            echoes.incrementAndGet();
        } catch (TransportException e) {
            handlerFailures.incrementAndGet();
        }
    }

    private void notesThenReply(InboundMessage message) {
        OutboundMessage note = new OutboundMessage();
        try {
            for (long i = 0; i < message.arg0(); i++) {
                transport.send(message.peer(), note.clear().type(NOTE).arg0(i));
            }
            // The reply follows a little later, while the requester may still be handling the notes.
            LockSupport.parkNanos(20_000);
            transport.reply(message, reply.clear().type(ECHO_REPLY).arg0(message.arg0()));
        } catch (TransportException e) {
            handlerFailures.incrementAndGet();
        }
    }

    private void bulk(InboundMessage message) {
        int length = (int) message.arg1();
        if (bulk == null || bulk.byteSize() < length) {
            bulk = Arena.ofAuto().allocate(length);
            Patterns.fill(bulk, 0, length, BULK_SEED);
        }
        reply.clear().type(ECHO_REPLY).arg0(message.arg0()).payload(bulk, 0, length);
        try {
            transport.reply(message, reply);
            echoes.incrementAndGet();
        } catch (TransportException e) {
            handlerFailures.incrementAndGet();
        }
    }

    private void stall() {
        stalled.countDown();
        try {
            if (!gate.await(20, TimeUnit.SECONDS)) {
                handlerFailures.incrementAndGet();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void sequenced(InboundMessage message) {
        int peer = message.peer();
        if (message.arg0() != nextSequence[peer]) {
            orderViolations.incrementAndGet();
        }
        nextSequence[peer] = message.arg0() + 1;
        if (!Patterns.matches(message.payloadSegment(), message.payloadOffset(), message.payloadLength(),
                message.arg1())) {
            payloadMismatches.incrementAndGet();
        }
        sequencedReceived.incrementAndGet(peer);
    }

    @Override
    public void onPeerUp(int peer) {
        peersUp.add(peer);
    }

    @Override
    public void onPeerDown(int peer, TransportException cause) {
        downCauses.add(cause);
        peersDown.add(peer);
    }

    /** Deterministic, position- and seed-dependent payload contents. */
    static final class Patterns {
        private Patterns() {
        }

        static byte at(long seed, long index) {
            long x = seed * 0x9E37_79B9_7F4A_7C15L + index * 0xBF58_476D_1CE4_E5B9L;
            return (byte) (x ^ (x >>> 29) ^ (x >>> 47));
        }

        static void fill(MemorySegment segment, long offset, int length, long seed) {
            for (int i = 0; i < length; i++) {
                segment.set(ValueLayout.JAVA_BYTE, offset + i, at(seed, i));
            }
        }

        static boolean matches(MemorySegment segment, long offset, int length, long seed) {
            for (int i = 0; i < length; i++) {
                if (segment.get(ValueLayout.JAVA_BYTE, offset + i) != at(seed, i)) {
                    return false;
                }
            }
            return true;
        }
    }
}
