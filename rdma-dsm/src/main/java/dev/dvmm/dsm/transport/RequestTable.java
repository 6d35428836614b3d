package dev.dvmm.dsm.transport;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * Outstanding requests, preallocated: a power-of-two array of slots indexed by the low bits of the
 * correlation id. The high bits are a per-slot generation, so a late reply to a slot that has been
 * reused never matches. Each slot's state and id share one atomic word, so "is this the request
 * I am completing" and "claim it" are a single compare-and-set: whoever claims a pending slot
 * (the reply, a timeout, peer death, close) is the only one to complete it. Nothing here
 * allocates on the success path. Transport-independent: every transport uses it.
 */
final class RequestTable {
    private static final int FREE = 0;
    private static final int ARMED = 1;
    private static final int PENDING = 2;
    private static final int CLAIMED = 3;
    private static final int DONE = 4;
    private static final int STATE_BITS = 3;
    private static final long STATE_MASK = (1L << STATE_BITS) - 1;

    /** One outstanding request. Fields other than the word are written by its owner while ARMED or
     *  by its completer while CLAIMED; the volatile word write that ends those states publishes them. */
    static final class Slot {
        private static final VarHandle WORD;

        static {
            try {
                WORD = MethodHandles.lookup().findVarHandle(Slot.class, "word", long.class);
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(e);
            }
        }

        volatile long word;
        int peer;
        long deadline;
        long timeoutNanos;
        boolean blocking;
        Thread waiter;
        ReplyBuffer replyBuffer;
        ReplyHandler handler;
        long token;
        TransportException failure;

        boolean claim(long id) {
            return WORD.compareAndSet(this, pack(id, PENDING), pack(id, CLAIMED));
        }
    }

    private final Slot[] slots;
    private final int slotBits;
    private final int mask;
    private final AtomicInteger cursor = new AtomicInteger();
    private final AtomicInteger outstanding = new AtomicInteger();
    private final AtomicInteger asyncOutstanding = new AtomicInteger();

    RequestTable(int slotCount) {
        if (slotCount < 1 || slotCount > (1 << 20) || Integer.bitCount(slotCount) != 1) {
            throw new IllegalArgumentException("request slot count " + slotCount + " is not a power of two in 1..2^20");
        }
        this.slots = new Slot[slotCount];
        this.slotBits = Integer.numberOfTrailingZeros(slotCount);
        this.mask = slotCount - 1;
        for (int i = 0; i < slotCount; i++) {
            Slot slot = new Slot();
            slot.word = pack(i, FREE);
            slots[i] = slot;
        }
    }

    private static long pack(long id, int state) {
        return (id << STATE_BITS) | state;
    }

    private static int state(long word) {
        return (int) (word & STATE_MASK);
    }

    private static long id(long word) {
        return word >>> STATE_BITS;
    }

    int capacity() {
        return slots.length;
    }

    /** Requests armed or waiting for completion right now. */
    int outstanding() {
        return outstanding.get();
    }

    /** Takes a free slot for a blocking request and publishes it; returns its correlation id, or 0 if all are taken. */
    long armBlocking(int peer, long timeoutNanos, Thread waiter, ReplyBuffer replyBuffer) {
        Slot slot = take();
        if (slot == null) {
            return 0;
        }
        slot.peer = peer;
        slot.timeoutNanos = timeoutNanos;
        slot.deadline = System.nanoTime() + timeoutNanos;
        slot.blocking = true;
        slot.waiter = waiter;
        slot.replyBuffer = replyBuffer;
        long id = id(slot.word);
        // Release: the fields above become visible to whoever sees PENDING.
        slot.word = pack(id, PENDING);
        return id;
    }

    /** Takes a free slot for a callback request and publishes it; returns its correlation id, or 0 if all are taken. */
    long armAsync(int peer, long timeoutNanos, ReplyHandler handler, long token) {
        Slot slot = take();
        if (slot == null) {
            return 0;
        }
        slot.peer = peer;
        slot.timeoutNanos = timeoutNanos;
        slot.deadline = System.nanoTime() + timeoutNanos;
        slot.blocking = false;
        slot.handler = handler;
        slot.token = token;
        long id = id(slot.word);
        asyncOutstanding.incrementAndGet();
        // Release: the fields above become visible to whoever sees PENDING.
        slot.word = pack(id, PENDING);
        return id;
    }

    private Slot take() {
        int start = cursor.getAndIncrement();
        for (int i = 0; i < slots.length; i++) {
            int index = (start + i) & mask;
            Slot slot = slots[index];
            long word = slot.word;
            if (state(word) == FREE) {
                long id = (((id(word) >>> slotBits) + 1) << slotBits) | index;
                if (Slot.WORD.compareAndSet(slot, word, pack(id, ARMED))) {
                    outstanding.incrementAndGet();
                    return slot;
                }
            }
        }
        return null;
    }

    private void release(Slot slot, long id) {
        if (!slot.blocking) {
            asyncOutstanding.decrementAndGet();
        }
        slot.waiter = null;
        slot.replyBuffer = null;
        slot.handler = null;
        slot.failure = null;
        outstanding.decrementAndGet();
        // Release: the cleared fields are visible before the slot can be taken again.
        slot.word = pack(id, FREE);
    }

    /**
     * Completes the request {@code reply} answers. Returns false for a reply that matches no
     * pending request (late after a timeout, or from the wrong peer); such replies are dropped.
     */
    boolean complete(InboundMessage reply) {
        long id = reply.correlationId();
        if (id <= 0) {
            return false;
        }
        Slot slot = slots[(int) (id & mask)];
        if (!slot.claim(id)) {
            return false;
        }
        if (slot.peer != reply.peer()) {
            // Only the peer asked may answer; give the slot back untouched.
            slot.word = pack(id, PENDING);
            return false;
        }
        if (slot.blocking) {
            try {
                if (!slot.replyBuffer.fill(reply)) {
                    slot.failure = new TransportException(TransportException.Reason.PAYLOAD_TOO_LARGE, slot.peer,
                            "reply from rank " + slot.peer + " carries " + reply.payloadLength()
                                    + " payload bytes, the reply buffer holds " + slot.replyBuffer.capacity());
                }
            } catch (RuntimeException e) {
                // The claimed slot must still end DONE, or its waiter (which sees CLAIMED) would wait forever.
                slot.failure = new TransportException(TransportException.Reason.REPLY_BUFFER_UNUSABLE, slot.peer,
                        "the reply from rank " + slot.peer + " could not be copied into the caller's reply buffer: "
                                + e);
            } finally {
                finishBlocking(slot, id);
            }
        } else {
            ReplyHandler handler = slot.handler;
            long token = slot.token;
            release(slot, id);
            handler.onReply(reply, token);
        }
        return true;
    }

    private static void finishBlocking(Slot slot, long id) {
        Thread waiter = slot.waiter;
        // Release: the reply (or failure) written above is visible to the waiter that sees DONE.
        slot.word = pack(id, DONE);
        LockSupport.unpark(waiter);
    }

    private void failClaimed(Slot slot, long id, TransportException failure) {
        if (slot.blocking) {
            slot.failure = failure;
            finishBlocking(slot, id);
        } else {
            ReplyHandler handler = slot.handler;
            long token = slot.token;
            release(slot, id);
            handler.onFailure(token, failure);
        }
    }

    /** Fails every pending request to {@code peer}; returns how many. */
    int failPeer(int peer, TransportException failure) {
        int failed = 0;
        for (Slot slot : slots) {
            long word = slot.word;
            if (state(word) == PENDING && slot.peer == peer && slot.claim(id(word))) {
                failClaimed(slot, id(word), failure);
                failed++;
            }
        }
        return failed;
    }

    /** Fails every pending request (the transport is closing); returns how many. */
    int failAll(TransportException failure) {
        int failed = 0;
        for (Slot slot : slots) {
            long word = slot.word;
            if (state(word) == PENDING && slot.claim(id(word))) {
                failClaimed(slot, id(word), failure);
                failed++;
            }
        }
        return failed;
    }

    /** Times out callback requests whose deadline has passed (blocking callers time out themselves). */
    void expire(long now) {
        if (asyncOutstanding.get() == 0) {
            return;
        }
        for (Slot slot : slots) {
            long word = slot.word;
            if (state(word) == PENDING && !slot.blocking && now - slot.deadline >= 0 && slot.claim(id(word))) {
                failClaimed(slot, id(word), timeout(slot));
            }
        }
    }

    private static TransportException timeout(Slot slot) {
        return new TransportException(TransportException.Reason.TIMEOUT, slot.peer,
                "no reply from rank " + slot.peer + " within " + slot.timeoutNanos / 1_000_000 + " ms");
    }

    /**
     * Waits for the blocking request {@code id} on the calling thread until it completes, its
     * deadline passes or the thread is interrupted; then frees the slot. Allocates nothing on success.
     */
    void await(long id) throws TransportException {
        await(id, 0);
    }

    /**
     * As {@link #await(long)}, but polls the slot for up to {@code spinNanos} before parking: a
     * reply that comes within a few microseconds is then seen without a futex wake-up.
     */
    void await(long id, long spinNanos) throws TransportException {
        Slot slot = slots[(int) (id & mask)];
        long deadline = slot.deadline;
        if (spinNanos > 0) {
            long spinUntil = System.nanoTime() + spinNanos;
            while (state(slot.word) != DONE && System.nanoTime() - spinUntil < 0) {
                // Not onSpinWait: the thread that completes the reply may need this core (with a spinning
                // waiter the TCP round trip's p99 was 120-180 us on a 2-core host, 27-30 us yielding).
                Thread.yield();
            }
        }
        for (;;) {
            long word = slot.word;
            int state = state(word);
            if (state == DONE) {
                TransportException failure = slot.failure;
                release(slot, id);
                if (failure != null) {
                    throw new TransportException(failure.reason(), failure.peer(), failure.getMessage(), failure);
                }
                return;
            }
            if (state == CLAIMED) {
                // A completer owns the slot and is about to mark it DONE; it may share this CPU, so yield to it.
                Thread.yield();
                continue;
            }
            if (Thread.currentThread().isInterrupted() && slot.claim(id)) {
                int peer = slot.peer;
                release(slot, id);
                throw new TransportException(TransportException.Reason.INTERRUPTED, peer,
                        "interrupted while waiting for a reply from rank " + peer);
            }
            long remaining = deadline - System.nanoTime();
            if (remaining <= 0) {
                if (slot.claim(id)) {
                    TransportException timeout = timeout(slot);
                    release(slot, id);
                    throw timeout;
                }
                continue;
            }
            LockSupport.parkNanos(this, remaining);
        }
    }

    /** Whether {@code id} is a pending blocking request (its reply may be completed by any thread). */
    boolean isPendingBlocking(long id) {
        if (id <= 0) {
            return false;
        }
        Slot slot = slots[(int) (id & mask)];
        // The owner wrote 'blocking' before the volatile write that made the slot PENDING.
        return slot.word == pack(id, PENDING) && slot.blocking;
    }

    /** Whether the blocking request {@code id} has its reply or failure (its waiter may return). */
    boolean isDone(long id) {
        return state(slots[(int) (id & mask)].word) == DONE;
    }

    /**
     * Withdraws a published request whose frame could not be sent. Returns true if this call
     * withdrew it; false if a completer claimed it first (a callback request then gets its
     * completion from that completer; a blocking one is freed here).
     */
    boolean abandon(long id) {
        Slot slot = slots[(int) (id & mask)];
        if (slot.claim(id)) {
            release(slot, id);
            return true;
        }
        if (slot.blocking) {
            while (state(slot.word) != DONE) {
                Thread.yield();
            }
            release(slot, id);
        }
        return false;
    }
}
