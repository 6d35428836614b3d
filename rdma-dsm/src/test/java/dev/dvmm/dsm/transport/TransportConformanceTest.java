package dev.dvmm.dsm.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.dvmm.dsm.transport.TestNode.Patterns;
import dev.dvmm.dsm.transport.TransportException.Reason;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Behaviour every {@link Transport} must show, run by each implementation's subclass against a
 * cluster of its transports on 127.0.0.1. Every wait is bounded; the class timeout is a last
 * resort against a hang.
 */
@Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
public abstract class TransportConformanceTest {
    protected static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(20);
    protected static final long REQUEST_TIMEOUT = TimeUnit.SECONDS.toNanos(20);
    protected static final long WAIT_MILLIS = 20_000;

    /**
     * A new, unstarted transport for {@code rank} of a {@code clusterSize}-node cluster listening on
     * 127.0.0.1, with a max payload of at least 1 MiB. All transports of one test share a secret.
     */
    protected abstract Transport newTransport(int rank, int clusterSize) throws TransportException;

    /** Whether {@code transport} (made by {@link #newTransport}) does one-sided reads; by default it does not. */
    protected boolean doesOneSidedReads(Transport transport) {
        return false;
    }

    /** Runs on each unstarted transport of a {@link Cluster}, before any is started. */
    @FunctionalInterface
    protected interface BeforeStart {
        void prepare(Transport transport) throws TransportException;
    }

    /** N started, connected transports with a {@link TestNode} each. */
    protected final class Cluster implements AutoCloseable {
        final Transport[] transports;
        final TestNode[] nodes;

        Cluster(int size) throws TransportException {
            this(size, transport -> { });
        }

        Cluster(int size, BeforeStart beforeStart) throws TransportException {
            transports = new Transport[size];
            nodes = new TestNode[size];
            List<Endpoint> endpoints = new ArrayList<>();
            try {
                for (int r = 0; r < size; r++) {
                    transports[r] = newTransport(r, size);
                    beforeStart.prepare(transports[r]);
                    nodes[r] = new TestNode(r, size);
                    nodes[r].transport = transports[r];
                    endpoints.add(transports[r].localEndpoint());
                }
                for (int r = 0; r < size; r++) {
                    transports[r].start(endpoints, nodes[r], nodes[r]);
                }
                for (int r = 0; r < size; r++) {
                    transports[r].awaitConnected(CONNECT_TIMEOUT);
                }
            } catch (TransportException | RuntimeException e) {
                close();
                throw e;
            }
        }

        Transport transport(int rank) {
            return transports[rank];
        }

        TestNode node(int rank) {
            return nodes[rank];
        }

        @Override
        public void close() {
            for (Transport transport : transports) {
                if (transport != null) {
                    transport.close();
                }
            }
        }
    }

    static void awaitTrue(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(WAIT_MILLIS);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                fail("timed out after " + WAIT_MILLIS + " ms waiting for " + what);
            }
            Thread.sleep(2);
        }
    }

    static void join(Thread thread) throws InterruptedException {
        thread.join(WAIT_MILLIS);
        assertFalse(thread.isAlive(), thread.getName() + " did not finish within " + WAIT_MILLIS + " ms");
    }

    /** Sends {@code count} sequenced messages with pattern payloads of varying size. */
    static void sendSequenced(Transport from, int to, int count, MemorySegment scratch) throws TransportException {
        OutboundMessage message = new OutboundMessage();
        for (int i = 0; i < count; i++) {
            int length = (i * 37) % 700;
            long seed = ((long) from.rank() << 40) ^ ((long) to << 20) ^ i;
            Patterns.fill(scratch, 0, length, seed);
            message.clear().type(TestNode.SEQUENCED).arg0(i).arg1(seed);
            if (length > 0) {
                message.payload(scratch, 0, length);
            }
            from.send(to, message);
        }
    }

    // ------------------------------------------------------------------ ordering and payloads

    @Test
    void messagesFromOnePeerArriveInOrderWithIntactPayloads() throws Exception {
        int count = 5000;
        try (Cluster cluster = new Cluster(2); Arena arena = Arena.ofShared()) {
            MemorySegment scratch0 = arena.allocate(1024);
            MemorySegment scratch1 = arena.allocate(1024);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread reverse = new Thread(() -> {
                try {
                    sendSequenced(cluster.transport(1), 0, count, scratch1);
                } catch (Throwable t) {
                    failure.set(t);
                }
            }, "sender-1");
            reverse.start();
            sendSequenced(cluster.transport(0), 1, count, scratch0);
            join(reverse);
            assertEquals(null, failure.get());
            awaitTrue("all messages at rank 1", () -> cluster.node(1).sequencedReceived.get(0) == count);
            awaitTrue("all messages at rank 0", () -> cluster.node(0).sequencedReceived.get(1) == count);
            for (TestNode node : cluster.nodes) {
                assertEquals(0, node.orderViolations.get(), "out-of-order messages at rank " + node.rank);
                assertEquals(0, node.payloadMismatches.get(), "corrupt payloads at rank " + node.rank);
                assertEquals(0, node.handlerFailures.get());
            }
        }
    }

    @Test
    void payloadsOfEverySizeRoundTripIntact() throws Exception {
        try (Cluster cluster = new Cluster(2); Arena arena = Arena.ofShared()) {
            Transport client = cluster.transport(0);
            int max = client.maxPayload();
            assertTrue(max >= 1 << 20, "conformance needs a max payload of at least 1 MiB, got " + max);
            int[] sizes = {0, 1, 55, 56, 57, 4095, 4096, 4097, 65_536, 1 << 20};
            // Like the guest-memory alias mapping: one big segment, payloads at page offsets inside it.
            MemorySegment memory = arena.allocate((1 << 20) + 3 * 4096L, 4096);
            MemorySegment replies = arena.allocate((1 << 20) + 4096L, 4096);
            OutboundMessage message = new OutboundMessage();
            ReplyBuffer reply = new ReplyBuffer();
            for (int size : sizes) {
                long seed = 1000 + size;
                long offset = 3 * 4096L;
                Patterns.fill(memory, offset, size, seed);
                replies.fill((byte) 0);
                message.clear().type(TestNode.ECHO).flags((short) 0x7E57).arg0(size).arg1(seed).arg2(-1).arg3(41);
                if (size > 0) {
                    message.payload(memory, offset, size);
                }
                reply.target(replies, 4096, size);
                client.request(1, message, reply, REQUEST_TIMEOUT);
                assertEquals(TestNode.ECHO_REPLY, reply.type());
                assertEquals((short) 0x7E57, reply.flags());
                assertEquals(1, reply.peer());
                assertEquals(size, reply.arg0());
                assertEquals(seed ^ TestNode.ECHO_XOR, reply.arg1());
                assertEquals(1, reply.arg2(), "arg2 carries the replier's rank");
                assertEquals(42, reply.arg3());
                assertEquals(size, reply.payloadLength());
                assertTrue(Patterns.matches(replies, 4096, size, seed), size + "-byte payload came back corrupted");
                assertEquals(0, replies.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 4095),
                        "reply payload written before its target window");
            }
            // One-way messages of the same sizes also arrive intact (checked by the receiver).
            for (int i = 0; i < sizes.length; i++) {
                int size = sizes[i];
                long seed = 77 + size;
                Patterns.fill(memory, 0, size, seed);
                message.clear().type(TestNode.SEQUENCED).arg0(i).arg1(seed);
                if (size > 0) {
                    message.payload(memory, 0, size);
                }
                client.send(1, message);
            }
            awaitTrue("one-way payloads", () -> cluster.node(1).sequencedReceived.get(0) == sizes.length);
            assertEquals(0, cluster.node(1).payloadMismatches.get());
            assertEquals(0, cluster.node(1).orderViolations.get());
        }
    }

    @Test
    void payloadLimitsAreEnforced() throws Exception {
        try (Cluster cluster = new Cluster(2); Arena arena = Arena.ofShared()) {
            Transport client = cluster.transport(0);
            int max = client.maxPayload();
            MemorySegment big = arena.allocate(max + 1L);
            OutboundMessage message = new OutboundMessage().type(TestNode.ECHO).payload(big, 0, max + 1);
            TransportException tooLarge = assertThrows(TransportException.class, () -> client.send(1, message));
            assertEquals(Reason.PAYLOAD_TOO_LARGE, tooLarge.reason());

            // A reply that does not fit the caller's window fails the request instead of overrunning.
            message.clear().type(TestNode.ECHO).payload(big, 0, 4096);
            ReplyBuffer small = new ReplyBuffer(arena.allocate(1024), 0, 1024);
            TransportException doesNotFit = assertThrows(TransportException.class,
                    () -> client.request(1, message, small, REQUEST_TIMEOUT));
            assertEquals(Reason.PAYLOAD_TOO_LARGE, doesNotFit.reason());
            // The connection is unharmed.
            message.clear().type(TestNode.ECHO).arg0(5);
            ReplyBuffer reply = new ReplyBuffer();
            client.request(1, message, reply, REQUEST_TIMEOUT);
            assertEquals(5, reply.arg0());

            // A reply window whose memory is gone fails the request at once (it used to leave the waiter spinning
            // past its deadline), and the next request works.
            Arena gone = Arena.ofShared();
            ReplyBuffer dead = new ReplyBuffer(gone.allocate(4096), 0, 4096);
            gone.close();
            message.clear().type(TestNode.ECHO).payload(big, 0, 4096);
            TransportException unusable = org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(
                    java.time.Duration.ofSeconds(30), () -> assertThrows(TransportException.class,
                            () -> client.request(1, message, dead, REQUEST_TIMEOUT)));
            assertEquals(Reason.REPLY_BUFFER_UNUSABLE, unusable.reason(), unusable.getMessage());
            message.clear().type(TestNode.ECHO).arg0(6);
            client.request(1, message, reply, REQUEST_TIMEOUT);
            assertEquals(6, reply.arg0());
        }
    }

    // ------------------------------------------------------------------ request/reply

    @Test
    void concurrentBlockingRequestsGetTheirOwnReplies() throws Exception {
        int threads = 4;
        int perThread = 2000;
        try (Cluster cluster = new Cluster(2); Arena arena = Arena.ofShared()) {
            AtomicLong mismatches = new AtomicLong();
            ConcurrentLinkedQueue<Throwable> failures = new ConcurrentLinkedQueue<>();
            List<Thread> workers = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int thread = t;
                MemorySegment out = arena.allocate(256);
                MemorySegment in = arena.allocate(256);
                workers.add(new Thread(() -> {
                    OutboundMessage message = new OutboundMessage();
                    ReplyBuffer reply = new ReplyBuffer(in, 0, 256);
                    try {
                        for (int i = 0; i < perThread; i++) {
                            long id = ((long) thread << 32) | i;
                            int length = 1 + (i % 200);
                            Patterns.fill(out, 0, length, id);
                            message.clear().type(TestNode.ECHO).arg0(id).arg1(~id).arg3(i).payload(out, 0, length);
                            cluster.transport(0).request(1, message, reply, REQUEST_TIMEOUT);
                            if (reply.arg0() != id || reply.arg1() != (~id ^ TestNode.ECHO_XOR)
                                    || reply.arg3() != i + 1 || reply.payloadLength() != length
                                    || !Patterns.matches(in, 0, length, id)) {
                                mismatches.incrementAndGet();
                            }
                        }
                    } catch (Throwable e) {
                        failures.add(e);
                    }
                }, "requester-" + t));
            }
            workers.forEach(Thread::start);
            for (Thread worker : workers) {
                join(worker);
            }
            assertTrue(failures.isEmpty(), () -> "request failed: " + failures.peek());
            assertEquals(0, mismatches.get(), "replies delivered to the wrong request");
            // The echo counter moves just after the reply is sent, so it may trail the last reply.
            awaitTrue("echo count", () -> cluster.node(1).echoes.get() >= threads * perThread);
            assertEquals(threads * perThread, cluster.node(1).echoes.get());
        }
    }

    @Test
    void callbackRequestsCompleteExactlyOnceWithTheirToken() throws Exception {
        int threads = 3;
        int perThread = 3000;
        int total = threads * perThread;
        try (Cluster cluster = new Cluster(2)) {
            AtomicLongArray completions = new AtomicLongArray(total);
            AtomicLong wrongReplies = new AtomicLong();
            ConcurrentLinkedQueue<TransportException> failures = new ConcurrentLinkedQueue<>();
            CountDownLatch done = new CountDownLatch(total);
            Semaphore window = new Semaphore(256);
            ReplyHandler handler = new ReplyHandler() {
                @Override
                public void onReply(InboundMessage reply, long token) {
                    if (reply.arg0() != token || reply.type() != TestNode.ECHO_REPLY || reply.peer() != 1) {
                        wrongReplies.incrementAndGet();
                    }
                    completions.incrementAndGet((int) token);
                    window.release();
                    done.countDown();
                }

                @Override
                public void onFailure(long token, TransportException failure) {
                    failures.add(failure);
                    completions.incrementAndGet((int) token);
                    window.release();
                    done.countDown();
                }
            };
            ConcurrentLinkedQueue<Throwable> errors = new ConcurrentLinkedQueue<>();
            List<Thread> workers = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int first = t * perThread;
                workers.add(new Thread(() -> {
                    OutboundMessage message = new OutboundMessage();
                    try {
                        for (int token = first; token < first + perThread; token++) {
                            if (!window.tryAcquire(WAIT_MILLIS, TimeUnit.MILLISECONDS)) {
                                throw new AssertionError("no request window freed up");
                            }
                            message.clear().type(TestNode.ECHO).arg0(token);
                            cluster.transport(0).requestAsync(1, message, handler, token, REQUEST_TIMEOUT);
                        }
                    } catch (Throwable e) {
                        errors.add(e);
                    }
                }, "async-requester-" + t));
            }
            workers.forEach(Thread::start);
            for (Thread worker : workers) {
                join(worker);
            }
            assertTrue(errors.isEmpty(), () -> "requestAsync failed: " + errors.peek());
            assertTrue(done.await(WAIT_MILLIS, TimeUnit.MILLISECONDS), "not every callback request completed");
            assertTrue(failures.isEmpty(), () -> "callback request failed: " + failures.peek());
            assertEquals(0, wrongReplies.get());
            for (int token = 0; token < total; token++) {
                assertEquals(1, completions.get(token), "token " + token + " completed a wrong number of times");
            }
        }
    }

    @Test
    void requestTimesOutAndALateReplyIsIgnored() throws Exception {
        try (Cluster cluster = new Cluster(2)) {
            Transport client = cluster.transport(0);
            OutboundMessage message = new OutboundMessage().type(TestNode.HOLD).arg0(1);
            ReplyBuffer reply = new ReplyBuffer();
            TransportException timeout = assertThrows(TransportException.class,
                    () -> client.request(1, message, reply, TimeUnit.MILLISECONDS.toNanos(200)));
            assertEquals(Reason.TIMEOUT, timeout.reason());
            assertEquals(1, timeout.peer());

            CountDownLatch asyncFailed = new CountDownLatch(1);
            AtomicReference<TransportException> asyncFailure = new AtomicReference<>();
            client.requestAsync(1, message, new ReplyHandler() {
                @Override
                public void onReply(InboundMessage r, long token) {
                    fail("a held request was answered");
                }

                @Override
                public void onFailure(long token, TransportException failure) {
                    asyncFailure.set(failure);
                    asyncFailed.countDown();
                }
            }, 9, TimeUnit.MILLISECONDS.toNanos(200));
            assertTrue(asyncFailed.await(WAIT_MILLIS, TimeUnit.MILLISECONDS), "callback request never timed out");
            assertEquals(Reason.TIMEOUT, asyncFailure.get().reason());

            // Answer the timed-out requests late: nobody may receive these replies.
            awaitTrue("both held requests", () -> cluster.node(1).held.size() == 2);
            OutboundMessage late = new OutboundMessage().type((short) 666).arg0(666);
            for (long[] held : cluster.node(1).held) {
                cluster.transport(1).reply((int) held[0], held[1], late);
            }
            for (int i = 0; i < 50; i++) {
                message.clear().type(TestNode.ECHO).arg0(i);
                client.request(1, message, reply, REQUEST_TIMEOUT);
                assertEquals(TestNode.ECHO_REPLY, reply.type(), "a late reply completed a newer request");
                assertEquals(i, reply.arg0());
            }
        }
    }

    @Test
    void repliesMayBeSentLaterFromAnotherThread() throws Exception {
        try (Cluster cluster = new Cluster(2)) {
            Thread answerer = new Thread(() -> {
                try {
                    awaitTrue("held request", () -> !cluster.node(1).held.isEmpty());
                    long[] held = cluster.node(1).held.poll();
                    cluster.transport(1).reply((int) held[0], held[1],
                            new OutboundMessage().type((short) 55).arg0(held[1]).arg2(7));
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }, "deferred-replier");
            answerer.start();
            ReplyBuffer reply = new ReplyBuffer();
            cluster.transport(0).request(1, new OutboundMessage().type(TestNode.HOLD), reply, REQUEST_TIMEOUT);
            join(answerer);
            assertEquals(55, reply.type());
            assertEquals(7, reply.arg2());
            assertTrue(reply.arg0() != 0, "the deferred reply echoes a non-zero correlation id");
        }
    }

    // ------------------------------------------------------------------ cluster

    @Test
    void allToAllExchangeKeepsPerPeerOrder() throws Exception {
        int size = 4;
        int perPeer = 1000;
        int requestsPerPeer = 200;
        try (Cluster cluster = new Cluster(size); Arena arena = Arena.ofShared()) {
            ConcurrentLinkedQueue<Throwable> failures = new ConcurrentLinkedQueue<>();
            List<Thread> senders = new ArrayList<>();
            for (int r = 0; r < size; r++) {
                int from = r;
                MemorySegment scratch = arena.allocate(1024);
                MemorySegment in = arena.allocate(1024);
                senders.add(new Thread(() -> {
                    Transport transport = cluster.transport(from);
                    OutboundMessage message = new OutboundMessage();
                    ReplyBuffer reply = new ReplyBuffer(in, 0, 1024);
                    try {
                        for (int i = 0; i < perPeer; i++) {
                            for (int to = 0; to < size; to++) {
                                if (to == from) {
                                    continue;
                                }
                                int length = (i * 13 + to) % 900;
                                long seed = ((long) from << 40) ^ ((long) to << 20) ^ i;
                                Patterns.fill(scratch, 0, length, seed);
                                message.clear().type(TestNode.SEQUENCED).arg0(i).arg1(seed).payload(scratch, 0, length);
                                transport.send(to, message);
                                if (i % (perPeer / requestsPerPeer) == 0) {
                                    message.clear().type(TestNode.ECHO).arg0(seed);
                                    transport.request(to, message, reply, REQUEST_TIMEOUT);
                                    if (reply.arg0() != seed || reply.arg2() != to) {
                                        throw new AssertionError("rank " + from + " got a wrong reply from " + to);
                                    }
                                }
                            }
                        }
                    } catch (Throwable e) {
                        failures.add(e);
                    }
                }, "all-to-all-" + r));
            }
            senders.forEach(Thread::start);
            for (Thread sender : senders) {
                join(sender);
            }
            assertTrue(failures.isEmpty(), () -> "exchange failed: " + failures.peek());
            for (int to = 0; to < size; to++) {
                TestNode node = cluster.node(to);
                for (int from = 0; from < size; from++) {
                    if (from != to) {
                        int sender = from;
                        awaitTrue("messages " + from + " -> " + to,
                                () -> node.sequencedReceived.get(sender) == perPeer);
                    }
                }
                assertEquals(0, node.orderViolations.get(), "out-of-order messages at rank " + to);
                assertEquals(0, node.payloadMismatches.get(), "corrupt payloads at rank " + to);
                long echoes = (long) requestsPerPeer * (size - 1);
                awaitTrue("echo count at rank " + to, () -> node.echoes.get() >= echoes);
                assertEquals(echoes, node.echoes.get());
            }
        }
    }

    @Test
    void peerDeathFailsPendingRequestsAndIsReportedToEveryone() throws Exception {
        try (Cluster cluster = new Cluster(3)) {
            AtomicReference<Throwable> blockingOutcome = new AtomicReference<>();
            Thread blocked = new Thread(() -> {
                try {
                    cluster.transport(0).request(1, new OutboundMessage().type(TestNode.HOLD), new ReplyBuffer(),
                            REQUEST_TIMEOUT);
                    blockingOutcome.set(new AssertionError("held request returned normally"));
                } catch (Throwable e) {
                    blockingOutcome.set(e);
                }
            }, "blocked-requester");
            blocked.start();
            CountDownLatch asyncDone = new CountDownLatch(1);
            AtomicReference<TransportException> asyncFailure = new AtomicReference<>();
            cluster.transport(2).requestAsync(1, new OutboundMessage().type(TestNode.HOLD), new ReplyHandler() {
                @Override
                public void onReply(InboundMessage reply, long token) {
                    asyncDone.countDown();
                }

                @Override
                public void onFailure(long token, TransportException failure) {
                    asyncFailure.set(failure);
                    asyncDone.countDown();
                }
            }, 3, REQUEST_TIMEOUT);
            awaitTrue("both requests held at rank 1", () -> cluster.node(1).held.size() == 2);

            long killedAt = System.nanoTime();
            cluster.transport(1).close();

            join(blocked);
            assertTrue(asyncDone.await(WAIT_MILLIS, TimeUnit.MILLISECONDS), "callback request never failed");
            // Well before the 20 s request timeout: death, not timeout, ended them.
            assertTrue(System.nanoTime() - killedAt < REQUEST_TIMEOUT / 2, "pending requests did not fail promptly");
            TransportException blockingFailure = assertInstanceOfTransportException(blockingOutcome.get());
            assertEquals(Reason.PEER_DIED, blockingFailure.reason());
            assertEquals(1, blockingFailure.peer());
            assertNotNull(asyncFailure.get(), "the callback request got a reply from a dead peer");
            assertEquals(Reason.PEER_DIED, asyncFailure.get().reason());

            for (int survivor : new int[] {0, 2}) {
                Integer down = cluster.node(survivor).peersDown.poll(WAIT_MILLIS, TimeUnit.MILLISECONDS);
                assertEquals(1, down, "rank " + survivor + " was not told rank 1 died");
                assertFalse(cluster.transport(survivor).isPeerUp(1));
                TransportException refused = assertThrows(TransportException.class,
                        () -> cluster.transport(survivor).send(1, new OutboundMessage().type(TestNode.SEQUENCED)));
                assertEquals(Reason.PEER_DIED, refused.reason());
            }
            // The survivors still talk to each other, both ways.
            ReplyBuffer reply = new ReplyBuffer();
            cluster.transport(0).request(2, new OutboundMessage().type(TestNode.ECHO).arg0(12), reply, REQUEST_TIMEOUT);
            assertEquals(12, reply.arg0());
            cluster.transport(2).request(0, new OutboundMessage().type(TestNode.ECHO).arg0(21), reply, REQUEST_TIMEOUT);
            assertEquals(21, reply.arg0());
            assertTrue(cluster.node(0).peersDown.isEmpty() && cluster.node(2).peersDown.isEmpty(),
                    "a survivor reported a second peer down");
        }
    }

    private static TransportException assertInstanceOfTransportException(Throwable outcome) {
        if (outcome instanceof TransportException e) {
            return e;
        }
        throw new AssertionError("expected a TransportException, got " + outcome, outcome);
    }

    @Test
    void closeFailsOwnPendingRequestsAndLaterCalls() throws Exception {
        try (Cluster cluster = new Cluster(2)) {
            AtomicReference<Throwable> outcome = new AtomicReference<>();
            Thread blocked = new Thread(() -> {
                try {
                    cluster.transport(0).request(1, new OutboundMessage().type(TestNode.HOLD), new ReplyBuffer(),
                            REQUEST_TIMEOUT);
                } catch (Throwable e) {
                    outcome.set(e);
                }
            }, "blocked-requester");
            blocked.start();
            awaitTrue("held request", () -> cluster.node(1).held.size() == 1);
            cluster.transport(0).close();
            join(blocked);
            assertEquals(Reason.CLOSED, assertInstanceOfTransportException(outcome.get()).reason());
            TransportException afterClose = assertThrows(TransportException.class,
                    () -> cluster.transport(0).send(1, new OutboundMessage()));
            assertEquals(Reason.CLOSED, afterClose.reason());
            cluster.transport(0).close();
            assertEquals(0, cluster.node(1).peersDown.poll(WAIT_MILLIS, TimeUnit.MILLISECONDS),
                    "rank 1 did not see rank 0 close");
        }
    }

    @Test
    void closeLeavesNoThreadsBehind() throws Exception {
        Set<Thread> before = new HashSet<>(Thread.getAllStackTraces().keySet());
        try (Cluster cluster = new Cluster(3)) {
            ReplyBuffer reply = new ReplyBuffer();
            for (int from = 0; from < 3; from++) {
                for (int to = 0; to < 3; to++) {
                    if (from != to) {
                        cluster.transport(from).request(to, new OutboundMessage().type(TestNode.ECHO).arg0(from),
                                reply, REQUEST_TIMEOUT);
                        assertEquals(from, reply.arg0());
                    }
                }
            }
            assertTrue(Thread.getAllStackTraces().size() > before.size(), "the transports run no thread of their own?");
        }
        List<String> leaked = new ArrayList<>();
        for (Thread thread : Thread.getAllStackTraces().keySet()) {
            if (!before.contains(thread) && thread.isAlive()) {
                leaked.add(thread.getName());
            }
        }
        assertEquals(List.of(), leaked, "threads still alive after close");
    }

    @Test
    void aThrowingHandlerDoesNotStopDelivery() throws Exception {
        try (Cluster cluster = new Cluster(2); Arena arena = Arena.ofShared()) {
            OutboundMessage message = new OutboundMessage();
            for (int i = 0; i < 3; i++) {
                cluster.transport(0).send(1, message.clear().type(TestNode.THROW));
            }
            ReplyBuffer reply = new ReplyBuffer();
            cluster.transport(0).request(1, message.clear().type(TestNode.ECHO).arg0(3), reply, REQUEST_TIMEOUT);
            assertEquals(3, reply.arg0());
            sendSequenced(cluster.transport(0), 1, 100, arena.allocate(1024));
            awaitTrue("messages after the throwing handler", () -> cluster.node(1).sequencedReceived.get(0) == 100);
            assertEquals(0, cluster.node(1).orderViolations.get());
            assertTrue(cluster.transport(0).isPeerUp(1) && cluster.transport(1).isPeerUp(0));
        }
    }

    @Test
    void aHandlerMayWaitForALockWhoseHolderIsSending() throws Exception {
        // The DSM's pattern: its fault thread sends while it holds the engine lock, and the handler
        // of incoming protocol messages takes that lock. Both nodes do both at once.
        int count = 2000;
        try (Cluster cluster = new Cluster(2)) {
            assertEquals(List.of(), sendUnderEngineLocks(cluster, count, "locked-sender",
                    (from, to, i, message) -> from.send(to, message.clear().type(TestNode.LOCKED).arg0(i))));
            for (int r = 0; r < 2; r++) {
                TestNode node = cluster.node(r);
                awaitTrue("node " + r + " handles every LOCKED message", () -> {
                    synchronized (node.engineLock) {
                        return node.lockedReceived == count;
                    }
                });
            }
        }
    }

    /**
     * The DSM's fault thread sends pages while it holds the engine lock that message handlers take, on both nodes at
     * once, faster than the handlers (which wait for that lock) let the peer read. The sockets fill and the send
     * buffers or backlogs run out while a sender holds the lock its own receiving side waits for: the transport must
     * still drain both ways (UCX: the waiting sender polls the worker; TCP: it drains its backlog itself).
     */
    @Test
    void aHandlerMayWaitForALockWhoseHolderWaitsForSendSpace() throws Exception {
        int count = 4000;
        int length = 4096;
        try (Cluster cluster = new Cluster(2); Arena arena = Arena.ofShared()) {
            MemorySegment payload = arena.allocate(length);
            Patterns.fill(payload, 0, length, 11);
            assertEquals(List.of(), sendUnderEngineLocks(cluster, count, "page-sender", (from, to, i, message) -> {
                from.send(to, message.clear().type(TestNode.LOCKED));
                from.send(to, message.clear().type(TestNode.SEQUENCED).arg0(i).arg1(11).payload(payload, 0, length));
            }));
            for (int r = 0; r < 2; r++) {
                TestNode node = cluster.node(r);
                awaitTrue("node " + r + " handles every message",
                        () -> node.sequencedReceived.get(1 - node.rank) == count);
                synchronized (node.engineLock) {
                    assertEquals(count, node.lockedReceived);
                }
                assertEquals(0, node.orderViolations.get());
                assertEquals(0, node.payloadMismatches.get());
            }
        }
    }

    /** One send step of {@link #sendUnderEngineLocks}: message {@code i} from a node to the other. */
    @FunctionalInterface
    interface LockedSend {
        void send(Transport from, int to, int i, OutboundMessage message) throws Exception;
    }

    /**
     * On both nodes at once, a thread makes {@code count} calls of {@code body}, each while holding its node's engine
     * lock (the lock that node's message handlers take), as the DSM's fault thread does. Waits for both threads (each
     * must finish) and returns what they threw.
     */
    static List<Throwable> sendUnderEngineLocks(Cluster cluster, int count, String name, LockedSend body)
            throws InterruptedException {
        List<Throwable> failures = java.util.Collections.synchronizedList(new ArrayList<>());
        Thread[] senders = new Thread[2];
        for (int r = 0; r < 2; r++) {
            final int me = r;
            senders[r] = new Thread(() -> {
                OutboundMessage message = new OutboundMessage();
                try {
                    for (int i = 0; i < count; i++) {
                        synchronized (cluster.node(me).engineLock) {
                            body.send(cluster.transport(me), 1 - me, i, message);
                        }
                    }
                } catch (Throwable t) {
                    failures.add(t);
                }
            }, name + "-" + r);
            senders[r].start();
        }
        for (Thread sender : senders) {
            join(sender);
        }
        return failures;
    }

    /**
     * A reply comes after the messages its sender sent before it: when {@code request} returns, their handlers have
     * run (the DSM relies on it), even though the handlers are slow and the reply is ready long before.
     */
    @Test
    void aReplyIsNotSeenBeforeTheMessagesSentAheadOfIt() throws Exception {
        try (Cluster cluster = new Cluster(2)) {
            ReplyBuffer reply = new ReplyBuffer();
            long expected = 0;
            for (int round = 1; round <= 200; round++) {
                int count = 1 + round % 3;
                cluster.transport(0).request(1, new OutboundMessage().type(TestNode.NOTES_THEN_REPLY).arg0(count),
                        reply, REQUEST_TIMEOUT);
                expected += count;
                assertEquals(count, reply.arg0());
                assertEquals(expected, cluster.node(0).notes.get(), "round " + round
                        + ": the reply overtook the messages sent before it");
            }
            assertEquals(0, cluster.node(1).handlerFailures.get());
        }
    }

    /**
     * A transport either does one-sided reads (a peer reads the exposed bytes) or says UNSUPPORTED to exposing and
     * reading, and canReadRemote is false; a node that exposed nothing is never readable.
     */
    @Test
    void oneSidedReadsWorkOrAreRefusedAsUnsupported() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment region = arena.allocate(4 * 4096, 4096);
            Patterns.fill(region, 0, 4 * 4096, 77);
            MemorySegment dst = arena.allocate(4096, 4096);
            boolean[] supported = new boolean[1];
            ConcurrentLinkedQueue<TransportException> outcomes = new ConcurrentLinkedQueue<>();
            AtomicLong calls = new AtomicLong();
            RemoteReadHandler handler = (peer, token, failure) -> {
                if (failure != null) {
                    outcomes.add(failure);
                }
                calls.incrementAndGet();
            };
            try (Cluster cluster = new Cluster(2, transport -> {
                if (transport.rank() != 1) {
                    return;
                }
                supported[0] = doesOneSidedReads(transport);
                if (supported[0]) {
                    transport.exposeMemory(region);
                } else {
                    TransportException refused = assertThrows(TransportException.class,
                            () -> transport.exposeMemory(region));
                    assertEquals(Reason.UNSUPPORTED, refused.reason());
                }
            })) {
                Transport reader = cluster.transport(0);
                assertEquals(supported[0], reader.canReadRemote(1));
                assertFalse(cluster.transport(1).canReadRemote(0), "rank 0 exposed nothing");
                if (supported[0]) {
                    reader.readRemote(1, 4096, dst, handler, 5);
                    awaitTrue("the remote read", () -> calls.get() == 1);
                    assertTrue(outcomes.isEmpty(), "the read failed: " + outcomes.peek());
                    assertTrue(MemorySegment.mismatch(region, 4096, 8192, dst, 0, 4096) < 0, "wrong bytes");
                } else {
                    TransportException refused = assertThrows(TransportException.class,
                            () -> reader.readRemote(1, 0, dst, handler, 5));
                    assertEquals(Reason.UNSUPPORTED, refused.reason());
                    assertEquals(0, calls.get(), "a refused read called its handler");
                }
            }
        }
    }

    @Test
    void usageErrorsAreRefusedClearly() throws Exception {
        try (Cluster cluster = new Cluster(2)) {
            Transport transport = cluster.transport(0);
            assertThrows(IllegalArgumentException.class, () -> transport.send(0, new OutboundMessage()),
                    "sending to oneself");
            assertThrows(IllegalArgumentException.class, () -> transport.send(2, new OutboundMessage()),
                    "rank outside the cluster");
            assertThrows(IllegalArgumentException.class, () -> transport.reply(1, 0, new OutboundMessage()),
                    "reply without a correlation id");
            assertEquals(0, transport.rank());
            assertEquals(2, transport.clusterSize());
            assertEquals("127.0.0.1", transport.localEndpoint().host());
            assertTrue(transport.localEndpoint().port() > 0);
        }
    }

    // ------------------------------------------------------------------ allocation

    /** Allocation-free echo with probes that read the receive thread's allocation counter. */
    private static final class ProbingEcho implements MessageHandler, PeerListener {
        static final short PROBE = 9;
        private final OutboundMessage reply = new OutboundMessage();
        private final com.sun.management.ThreadMXBean threads =
                (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        Transport transport;
        final AtomicLongArray probes = new AtomicLongArray(4);
        volatile boolean failed;

        @Override
        public void onMessage(InboundMessage message) {
            if (message.type() == PROBE) {
                probes.set((int) message.arg0(), threads.getCurrentThreadAllocatedBytes());
            }
            reply.clear().type(TestNode.ECHO_REPLY).arg0(message.arg0());
            if (message.payloadLength() > 0) {
                reply.payload(message.payloadSegment(), message.payloadOffset(), message.payloadLength());
            }
            try {
                transport.reply(message, reply);
            } catch (TransportException e) {
                failed = true;
            }
        }

        @Override
        public void onPeerDown(int peer, TransportException cause) {
        }
    }

    private static final class ProbeReply implements ReplyHandler {
        private final com.sun.management.ThreadMXBean threads =
                (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        final AtomicLongArray probes = new AtomicLongArray(4);
        final Semaphore done = new Semaphore(0);

        @Override
        public void onReply(InboundMessage reply, long token) {
            probes.set((int) token, threads.getCurrentThreadAllocatedBytes());
            done.release();
        }

        @Override
        public void onFailure(long token, TransportException failure) {
            done.release();
        }
    }

    @Test
    void steadyStateRequestsAllocateNothing() throws Exception {
        int warmup = 30_000;
        int measured = 10_000;
        Transport client = newTransport(0, 2);
        Transport server = newTransport(1, 2);
        try (client; server; Arena arena = Arena.ofShared()) {
            List<Endpoint> endpoints = List.of(client.localEndpoint(), server.localEndpoint());
            ProbingEcho echo = new ProbingEcho();
            echo.transport = server;
            client.start(endpoints, message -> echo.failed = true, PeerListener.NONE);
            server.start(endpoints, echo, echo);
            client.awaitConnected(CONNECT_TIMEOUT);
            server.awaitConnected(CONNECT_TIMEOUT);

            MemorySegment page = arena.allocate(4096, 4096);
            MemorySegment replyPage = arena.allocate(4096, 4096);
            Patterns.fill(page, 0, 4096, 4);
            OutboundMessage message = new OutboundMessage();
            ReplyBuffer reply = new ReplyBuffer(replyPage, 0, 4096);
            ProbeReply probeReply = new ProbeReply();
            com.sun.management.ThreadMXBean threads =
                    (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

            for (int i = 0; i < warmup; i++) {
                message.clear().type(TestNode.ECHO).arg0(i).payload(page, 0, 4096);
                client.request(1, message, reply, REQUEST_TIMEOUT);
            }
            message.clear().type(ProbingEcho.PROBE).arg0(0);
            client.requestAsync(1, message, probeReply, 0, REQUEST_TIMEOUT);
            assertTrue(probeReply.done.tryAcquire(WAIT_MILLIS, TimeUnit.MILLISECONDS));

            long before = threads.getCurrentThreadAllocatedBytes();
            for (int i = 0; i < measured; i++) {
                message.clear().type(TestNode.ECHO).arg0(i).payload(page, 0, 4096);
                client.request(1, message, reply, REQUEST_TIMEOUT);
                if (reply.arg0() != i) {
                    fail("reply " + reply.arg0() + " to request " + i);
                }
            }
            long callerBytes = threads.getCurrentThreadAllocatedBytes() - before;

            message.clear().type(ProbingEcho.PROBE).arg0(1);
            client.requestAsync(1, message, probeReply, 1, REQUEST_TIMEOUT);
            assertTrue(probeReply.done.tryAcquire(WAIT_MILLIS, TimeUnit.MILLISECONDS));
            assertTrue(Patterns.matches(replyPage, 0, 4096, 4), "echoed page corrupted");
            assertFalse(echo.failed, "the echo handler failed");

            long serverReceiveBytes = echo.probes.get(1) - echo.probes.get(0);
            long clientReceiveBytes = probeReply.probes.get(1) - probeReply.probes.get(0);
            System.out.printf("allocation over %d 4 KiB requests: caller %d B, client receive thread %d B,"
                    + " server receive thread %d B%n", measured, callerBytes, clientReceiveBytes, serverReceiveBytes);
            // A few hundred bytes of one-off noise are tolerated; one object per message (>= 16 B) is not.
            long bound = measured;
            assertTrue(callerBytes < bound, "caller thread allocated " + callerBytes + " B for " + measured + " requests");
            assertTrue(clientReceiveBytes < bound,
                    "client receive thread allocated " + clientReceiveBytes + " B for " + measured + " replies");
            assertTrue(serverReceiveBytes < bound,
                    "server receive thread allocated " + serverReceiveBytes + " B for " + measured + " requests");
        }
    }
}
