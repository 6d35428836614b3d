package dev.dvmm.dsm.transport;

import static dev.dvmm.dsm.transport.TransportConformanceTest.awaitTrue;
import static dev.dvmm.dsm.transport.TransportConformanceTest.join;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dvmm.dsm.transport.RawPeer.Frame;
import dev.dvmm.dsm.transport.TestNode.Patterns;
import dev.dvmm.dsm.transport.TransportException.Reason;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * TCP specifics: what a node does with hostile or broken bytes on its port (it logs, drops that
 * connection and keeps serving its real peers), the handshake, back-pressure and configuration.
 */
@Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class TcpTransportTest {
    private static final long REQUEST_TIMEOUT = TimeUnit.SECONDS.toNanos(20);
    private static final Duration HANDSHAKE_TIMEOUT = Duration.ofMillis(500);
    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(20);

    private final byte[] secret = randomSecret();

    private static byte[] randomSecret() {
        byte[] bytes = new byte[32];
        new SecureRandom().nextBytes(bytes);
        return bytes;
    }

    /** Real transports for the ranks in {@code real} of a {@code size}-node cluster; other ranks are raw. */
    private final class Nodes implements AutoCloseable {
        final TcpTransport[] transports;
        final TestNode[] nodes;
        final List<Endpoint> endpoints = new ArrayList<>();

        Nodes(int size, int real, TcpTransportConfig template) throws TransportException {
            transports = new TcpTransport[real];
            nodes = new TestNode[real];
            for (int r = 0; r < real; r++) {
                TcpTransportConfig config = new TcpTransportConfig(r, size, template.listen(), secret,
                        template.maxPayload(), template.socketBufferBytes(), template.handshakeTimeout(),
                        template.connectRetryInterval(), template.requestSlots(), template.maxBacklogBytes(),
                        template.sendTimeout(), template.maxPendingHandshakes(), template.inlinePayloadBytes(),
                        template.requestSpinNanos(), template.busyPollNanos());
                transports[r] = new TcpTransport(config);
                nodes[r] = new TestNode(r, size);
                nodes[r].transport = transports[r];
                endpoints.add(transports[r].localEndpoint());
            }
            for (int r = real; r < size; r++) {
                // Raw ranks are the highest: they connect out, nobody connects to them.
                endpoints.add(new Endpoint("127.0.0.1", 9));
            }
            for (int r = 0; r < real; r++) {
                transports[r].start(endpoints, nodes[r], nodes[r]);
            }
        }

        Nodes(int size, int real) throws TransportException {
            this(size, real, TcpTransportConfig.loopback(0, size, secret).withHandshakeTimeout(HANDSHAKE_TIMEOUT));
        }

        void awaitConnected() throws TransportException {
            for (TcpTransport transport : transports) {
                transport.awaitConnected(CONNECT_TIMEOUT);
            }
        }

        /** Both real ranks still answer each other, and neither has lost the other. */
        void assertStillServing() throws TransportException {
            ReplyBuffer reply = new ReplyBuffer();
            OutboundMessage message = new OutboundMessage();
            for (int from = 0; from < 2; from++) {
                int to = 1 - from;
                message.clear().type(TestNode.ECHO).arg0(1000 + from);
                transports[from].request(to, message, reply, REQUEST_TIMEOUT);
                assertEquals(1000 + from, reply.arg0());
                assertTrue(transports[from].isPeerUp(to));
                assertFalse(nodes[from].peersDown.contains(to), "rank " + from + " lost rank " + to);
            }
        }

        @Override
        public void close() {
            for (TcpTransport transport : transports) {
                transport.close();
            }
        }
    }

    private static void assertRejected(TcpTransport node, long before) throws InterruptedException {
        awaitTrue("the rejection to be counted", () -> node.rejectedConnections() > before);
    }

    // ------------------------------------------------------------------ hostile bytes before authentication

    @Test
    void challengeFollowsTheDocumentedWireFormat() throws Exception {
        try (Nodes nodes = new Nodes(2, 2); RawPeer raw = new RawPeer(nodes.transports[0].localEndpoint())) {
            nodes.awaitConnected();
            Frame challenge = raw.readChallenge();
            assertEquals(RawPeer.MAGIC, challenge.magic());
            assertEquals(1, challenge.version());
            assertEquals(RawPeer.KIND_HANDSHAKE, challenge.kind());
            assertEquals(RawPeer.CHALLENGE, challenge.type());
            assertEquals(0, challenge.reserved());
            assertEquals(0, challenge.correlationId());
            assertEquals(0, challenge.arg0(), "challenge names the acceptor's rank");
            assertEquals(2, challenge.arg1(), "challenge names the cluster size");
            assertEquals(32, challenge.length());
            try (RawPeer second = new RawPeer(nodes.transports[0].localEndpoint())) {
                assertFalse(Arrays.equals(challenge.payload(), second.readChallenge().payload()),
                        "two challenges carried the same nonce");
            }
        }
    }

    @Test
    void garbageIsRejectedAndRealPeersKeepWorking() throws Exception {
        try (Nodes nodes = new Nodes(2, 2)) {
            nodes.awaitConnected();
            long before = nodes.transports[0].rejectedConnections();
            try (RawPeer raw = new RawPeer(nodes.transports[0].localEndpoint())) {
                byte[] garbage = new byte[300];
                new Random(7).nextBytes(garbage);
                raw.write(garbage);
                assertTrue(raw.closedByPeer(), "node kept a connection that sent garbage");
            }
            assertRejected(nodes.transports[0], before);
            nodes.assertStillServing();
        }
    }

    @Test
    void oversizedLengthIsRejectedWithoutWaitingForThePayload() throws Exception {
        try (Nodes nodes = new Nodes(2, 2)) {
            nodes.awaitConnected();
            for (int length : new int[] {Integer.MAX_VALUE, -1, 65, 1 << 20}) {
                long before = nodes.transports[0].rejectedConnections();
                try (RawPeer raw = new RawPeer(nodes.transports[0].localEndpoint())) {
                    raw.readChallenge();
                    raw.write(RawPeer.frame(RawPeer.KIND_HANDSHAKE, RawPeer.PROOF, length, 0, 1, 2, 0, 0, new byte[0]));
                    assertTrue(raw.closedByPeer(), "node waited for a " + length + "-byte handshake payload");
                }
                assertRejected(nodes.transports[0], before);
            }
            nodes.assertStillServing();
        }
    }

    @Test
    void truncatedFrameAtCloseIsRejected() throws Exception {
        try (Nodes nodes = new Nodes(2, 2)) {
            nodes.awaitConnected();
            long before = nodes.transports[0].rejectedConnections();
            try (RawPeer raw = new RawPeer(nodes.transports[0].localEndpoint())) {
                raw.readChallenge();
                byte[] proof = RawPeer.frame(RawPeer.KIND_HANDSHAKE, RawPeer.PROOF, 64, 0, 1, 2, 0, 0, new byte[64]);
                raw.write(Arrays.copyOf(proof, 90));
                raw.shutdownOutput();
                assertTrue(raw.closedByPeer());
            }
            assertRejected(nodes.transports[0], before);
            nodes.assertStillServing();
        }
    }

    @Test
    void wrongHmacIsRefused() throws Exception {
        try (Nodes nodes = new Nodes(2, 2)) {
            nodes.awaitConnected();
            long before = nodes.transports[0].rejectedConnections();
            byte[] wrong = secret.clone();
            wrong[0] ^= 1;
            try (RawPeer raw = new RawPeer(nodes.transports[0].localEndpoint())) {
                raw.readChallenge();
                raw.sendProof(1, 0, 2, wrong);
                assertTrue(raw.closedByPeer(), "node answered a proof made with the wrong secret");
            }
            assertRejected(nodes.transports[0], before);
            nodes.assertStillServing();
        }
    }

    @Test
    void rightSecretButImpossibleIdentityIsRefused() throws Exception {
        try (Nodes nodes = new Nodes(2, 2)) {
            nodes.awaitConnected();
            // {claimed rank, cluster size, target rank}: already-connected rank, lower rank, other cluster, other target.
            int[][] claims = {{1, 2, 0}, {0, 2, 0}, {2, 3, 0}, {1, 2, 1}};
            for (int[] claim : claims) {
                long before = nodes.transports[0].rejectedConnections();
                try (RawPeer raw = new RawPeer(nodes.transports[0].localEndpoint())) {
                    raw.readChallenge();
                    raw.sendProof(claim[0], claim[2], claim[1], secret);
                    assertTrue(raw.closedByPeer(), "node accepted claim " + Arrays.toString(claim));
                }
                assertRejected(nodes.transports[0], before);
            }
            nodes.assertStillServing();
        }
    }

    @Test
    void messagesBeforeAuthenticationAreRefusedUndelivered() throws Exception {
        try (Nodes nodes = new Nodes(2, 2)) {
            nodes.awaitConnected();
            long before = nodes.transports[0].rejectedConnections();
            try (RawPeer raw = new RawPeer(nodes.transports[0].localEndpoint())) {
                raw.readChallenge();
                raw.write(RawPeer.frame(RawPeer.KIND_REQUEST, TestNode.HOLD, 0, 77, 0, 0, 0, 0, new byte[0]));
                assertTrue(raw.closedByPeer());
            }
            assertRejected(nodes.transports[0], before);
            assertTrue(nodes.nodes[0].held.isEmpty(), "an unauthenticated request reached the handler");
            nodes.assertStillServing();
        }
    }

    @Test
    void silentConnectionIsClosedAfterTheHandshakeTimeout() throws Exception {
        try (Nodes nodes = new Nodes(2, 2)) {
            nodes.awaitConnected();
            long before = nodes.transports[0].rejectedConnections();
            try (RawPeer raw = new RawPeer(nodes.transports[0].localEndpoint())) {
                raw.readChallenge();
                // The raw socket's read timeout (5 s) is ten times the handshake timeout.
                assertTrue(raw.closedByPeer(), "a connection that never answered the challenge stayed open");
            }
            assertRejected(nodes.transports[0], before);
            nodes.assertStillServing();
        }
    }

    @Test
    void nodeWithAnotherSecretCannotJoin() throws Exception {
        byte[] other = randomSecret();
        TcpTransport honest = new TcpTransport(TcpTransportConfig.loopback(0, 2, secret));
        TcpTransport stranger = new TcpTransport(TcpTransportConfig.loopback(1, 2, other));
        try (honest; stranger) {
            List<Endpoint> endpoints = List.of(honest.localEndpoint(), stranger.localEndpoint());
            TestNode node0 = new TestNode(0, 2);
            TestNode node1 = new TestNode(1, 2);
            honest.start(endpoints, node0, node0);
            stranger.start(endpoints, node1, node1);
            TransportException strangerFailure = assertThrows(TransportException.class,
                    () -> stranger.awaitConnected(Duration.ofMillis(1500)));
            assertEquals(Reason.PEER_UNREACHABLE, strangerFailure.reason());
            assertTrue(strangerFailure.getMessage().contains("0"), strangerFailure.getMessage());
            TransportException honestFailure = assertThrows(TransportException.class,
                    () -> honest.awaitConnected(Duration.ofMillis(100)));
            assertEquals(Reason.PEER_UNREACHABLE, honestFailure.reason());
            assertTrue(honest.rejectedConnections() > 0, "the honest node never refused the stranger");
            assertFalse(honest.isPeerUp(1));
            assertTrue(node0.peersUp.isEmpty() && node1.peersUp.isEmpty());
        }
    }

    // ------------------------------------------------------------------ an authenticated peer turning bad

    @Test
    void authenticatedPeerSendingABadFrameIsDroppedAlone() throws Exception {
        try (Nodes nodes = new Nodes(3, 2);
             RawPeer toZero = new RawPeer(nodes.transports[0].localEndpoint());
             RawPeer toOne = new RawPeer(nodes.transports[1].localEndpoint())) {
            assertTrue(toZero.authenticate(2, 0, 3, secret), "rank 0 did not prove the secret in its welcome");
            assertTrue(toOne.authenticate(2, 1, 3, secret), "rank 1 did not prove the secret in its welcome");
            nodes.awaitConnected();
            assertEquals(Set.of(1, 2), Set.of(nodes.nodes[0].peersUp.poll(20, TimeUnit.SECONDS),
                    nodes.nodes[0].peersUp.poll(20, TimeUnit.SECONDS)), "rank 0 reports ranks 1 and 2 up");

            // A well-formed message from the raw rank is delivered: the wire format is as documented.
            byte[] payload = new byte[100];
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment pattern = arena.allocate(100);
                Patterns.fill(pattern, 0, 100, 55);
                MemorySegment.copy(pattern, ValueLayout.JAVA_BYTE, 0, payload, 0, 100);
            }
            toZero.write(RawPeer.frame(RawPeer.KIND_MESSAGE, TestNode.SEQUENCED, 100, 0, 0, 55, 0, 0, payload));
            awaitTrue("the raw message", () -> nodes.nodes[0].sequencedReceived.get(2) == 1);
            assertEquals(0, nodes.nodes[0].payloadMismatches.get());
            // A request from the raw rank is answered over the same connection.
            toZero.write(RawPeer.frame(RawPeer.KIND_REQUEST, TestNode.ECHO, 0, 4242, 9, 0, 0, 0, new byte[0]));
            Frame reply = toZero.readFrame();
            assertEquals(RawPeer.KIND_REPLY, reply.kind());
            assertEquals(4242, reply.correlationId());
            assertEquals(9, reply.arg0());
            // A reply nobody asked for is dropped, not delivered.
            long droppedBefore = nodes.transports[0].droppedReplies();
            toZero.write(RawPeer.frame(RawPeer.KIND_REPLY, (short) 1, 0, 12345, 0, 0, 0, 0, new byte[0]));
            awaitTrue("the unsolicited reply to be dropped", () -> nodes.transports[0].droppedReplies() > droppedBefore);

            // Now a length above the configured maximum: rank 0 drops rank 2, and only rank 2.
            long before = nodes.transports[0].rejectedConnections();
            int tooLong = nodes.transports[0].maxPayload() + 1;
            toZero.write(RawPeer.frame(RawPeer.KIND_MESSAGE, TestNode.SEQUENCED, tooLong, 0, 1, 0, 0, 0, new byte[0]));
            assertTrue(toZero.closedByPeer(), "rank 0 kept a peer that sent an oversized frame");
            assertRejected(nodes.transports[0], before);
            assertEquals(2, nodes.nodes[0].peersDown.poll(20, TimeUnit.SECONDS));
            assertEquals(Reason.MALFORMED_FRAME, nodes.nodes[0].downCauses.poll(20, TimeUnit.SECONDS).reason());
            assertFalse(nodes.transports[0].isPeerUp(2));
            assertTrue(nodes.transports[1].isPeerUp(2), "rank 1's own connection to rank 2 is unaffected");
            nodes.assertStillServing();

            // Rank 2 then dies in the middle of a frame to rank 1: a truncated frame, not a clean close.
            byte[] message = RawPeer.frame(RawPeer.KIND_MESSAGE, TestNode.SEQUENCED, 100, 0, 0, 0, 0, 0, new byte[100]);
            toOne.write(Arrays.copyOf(message, 80));
            toOne.shutdownOutput();
            assertTrue(toOne.closedByPeer());
            assertEquals(2, nodes.nodes[1].peersDown.poll(20, TimeUnit.SECONDS));
            assertEquals(Reason.MALFORMED_FRAME, nodes.nodes[1].downCauses.poll(20, TimeUnit.SECONDS).reason());
            assertEquals(0, nodes.nodes[1].sequencedReceived.get(2), "a partial frame reached the handler");
            nodes.assertStillServing();
        }
    }

    // ------------------------------------------------------------------ back-pressure

    @Test
    void busyPollingRunsThePollWorkUntilTheDeadlineAndKeepsDeliveringMessages() throws Exception {
        // Without the receive thread's own busy-poll window after input, which would extend the deadline.
        try (Nodes nodes = new Nodes(2, 2, TcpTransportConfig.loopback(0, 2, secret).withBusyPollNanos(0))) {
            nodes.awaitConnected();
            AtomicLong polls = new AtomicLong();
            Transport.PollWork work = () -> {
                polls.incrementAndGet();
                return 0;
            };
            TcpTransport busy = nodes.transports[0];
            busy.busyPollUntil(System.nanoTime() + TimeUnit.SECONDS.toNanos(60), work);
            awaitTrue("the receive thread to run the poll work", () -> polls.get() > 1000);
            nodes.assertStillServing();
            busy.busyPollUntil(System.nanoTime(), work);
            // The reply of this round trip is read in a loop pass that finds a frame (so runs no work); every
            // later pass sees the past deadline and sleeps in select.
            nodes.assertStillServing();
            long settled = polls.get();
            Thread.sleep(50);
            nodes.assertStillServing();
            assertEquals(settled, polls.get(), "poll work ran after the busy-poll deadline");
        }
    }

    @Test
    void theReceiveThreadPollsAwakeForItsWindowAfterInputAndThenSleeps() throws Exception {
        long window = TimeUnit.MILLISECONDS.toNanos(300);
        try (Nodes nodes = new Nodes(2, 2, TcpTransportConfig.loopback(0, 2, secret).withBusyPollNanos(window))) {
            nodes.awaitConnected();
            AtomicLong polls = new AtomicLong();
            TcpTransport busy = nodes.transports[0];
            // Hand the receive thread poll work with a deadline already past: it runs only in the window.
            busy.busyPollUntil(System.nanoTime(), () -> {
                polls.incrementAndGet();
                return 0;
            });
            Thread.sleep(400);
            long before = polls.get();
            nodes.assertStillServing();  // a round trip: input on node 0's receive thread opens its window
            awaitTrue("the receive thread to poll in its window after input", () -> polls.get() > before + 100);
            Thread.sleep(TimeUnit.NANOSECONDS.toMillis(window) + 300);
            long settled = polls.get();
            Thread.sleep(200);
            assertEquals(settled, polls.get(), "the receive thread kept polling after its window");
        }
    }

    @Test
    void stalledReceiverBacksUpSendersWithoutLosingOrder() throws Exception {
        int count = 64;
        int length = 256 << 10;
        try (Nodes nodes = new Nodes(2, 2); Arena arena = Arena.ofShared()) {
            nodes.awaitConnected();
            MemorySegment data = arena.allocate(length);
            OutboundMessage message = new OutboundMessage();
            nodes.transports[0].send(1, message.clear().type(TestNode.STALL));
            assertTrue(nodes.nodes[1].stalled.await(20, TimeUnit.SECONDS));
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread sender = new Thread(() -> {
                OutboundMessage m = new OutboundMessage();
                try {
                    for (int i = 0; i < count; i++) {
                        Patterns.fill(data, 0, length, i);
                        m.clear().type(TestNode.SEQUENCED).arg0(i).arg1(i).payload(data, 0, length);
                        nodes.transports[0].send(1, m);
                    }
                } catch (Throwable e) {
                    failure.set(e);
                }
            }, "bulk-sender");
            sender.start();
            // 16 MiB cannot fit the socket buffers and the first backlog: the sender has to wait for the receiver.
            Thread.sleep(300);
            nodes.nodes[1].gate.countDown();
            join(sender);
            assertEquals(null, failure.get());
            awaitTrue("all bulk messages", () -> nodes.nodes[1].sequencedReceived.get(0) == count);
            assertEquals(0, nodes.nodes[1].orderViolations.get());
            assertEquals(0, nodes.nodes[1].payloadMismatches.get());
            nodes.assertStillServing();
        }
    }

    @Test
    void receiveThreadNeverBlocksOnAFullSocket() throws Exception {
        int count = 40;
        int length = 512 << 10;
        try (Nodes nodes = new Nodes(3, 3)) {
            nodes.awaitConnected();
            // Rank 0 stops reading; rank 1 then answers with 20 MiB of replies from its receive thread.
            nodes.transports[1].send(0, new OutboundMessage().type(TestNode.STALL));
            assertTrue(nodes.nodes[0].stalled.await(20, TimeUnit.SECONDS));
            CountDownLatch replies = new CountDownLatch(count);
            ConcurrentLinkedQueue<String> problems = new ConcurrentLinkedQueue<>();
            ReplyHandler handler = new ReplyHandler() {
                @Override
                public void onReply(InboundMessage reply, long token) {
                    if (reply.arg0() != token || reply.payloadLength() != length || !Patterns.matches(
                            reply.payloadSegment(), reply.payloadOffset(), length, TestNode.BULK_SEED)) {
                        problems.add("bad reply " + token);
                    }
                    replies.countDown();
                }

                @Override
                public void onFailure(long token, TransportException failure) {
                    problems.add(failure.getMessage());
                    replies.countDown();
                }
            };
            // Header-only requests: rank 0's own sends never need its (stalled) receive thread.
            OutboundMessage message = new OutboundMessage();
            for (int i = 0; i < count; i++) {
                message.clear().type(TestNode.BULK).arg0(i).arg1(length);
                nodes.transports[0].requestAsync(1, message, handler, i, REQUEST_TIMEOUT);
            }
            awaitTrue("rank 1 to answer every request", () -> nodes.nodes[1].echoes.get() == count);
            // Rank 1's receive thread is free although rank 0 reads nothing: it still serves rank 2.
            ReplyBuffer reply = new ReplyBuffer();
            nodes.transports[2].request(1, new OutboundMessage().type(TestNode.ECHO).arg0(31), reply, REQUEST_TIMEOUT);
            assertEquals(31, reply.arg0());
            nodes.nodes[0].gate.countDown();
            assertTrue(replies.await(20, TimeUnit.SECONDS), "replies never drained after rank 0 resumed reading");
            assertTrue(problems.isEmpty(), () -> problems.peek());
            assertEquals(0, nodes.nodes[1].handlerFailures.get());
        }
    }

    @Test
    void requestsBeyondTheSlotCountAreRefusedUntilSlotsFree() throws Exception {
        TcpTransportConfig fourSlots = TcpTransportConfig.loopback(0, 2, secret).withRequestSlots(4);
        try (Nodes nodes = new Nodes(2, 2, fourSlots)) {
            nodes.awaitConnected();
            CountDownLatch answered = new CountDownLatch(4);
            ReplyHandler handler = new ReplyHandler() {
                @Override
                public void onReply(InboundMessage reply, long token) {
                    answered.countDown();
                }

                @Override
                public void onFailure(long token, TransportException failure) {
                }
            };
            OutboundMessage hold = new OutboundMessage().type(TestNode.HOLD);
            for (int i = 0; i < 4; i++) {
                nodes.transports[0].requestAsync(1, hold, handler, i, REQUEST_TIMEOUT);
            }
            assertEquals(4, nodes.transports[0].outstandingRequests());
            TransportException async = assertThrows(TransportException.class,
                    () -> nodes.transports[0].requestAsync(1, hold, handler, 4, REQUEST_TIMEOUT));
            assertEquals(Reason.OVERLOADED, async.reason());
            TransportException blocking = assertThrows(TransportException.class,
                    () -> nodes.transports[0].request(1, hold, new ReplyBuffer(), REQUEST_TIMEOUT));
            assertEquals(Reason.OVERLOADED, blocking.reason());
            awaitTrue("four held requests", () -> nodes.nodes[1].held.size() == 4);
            OutboundMessage answer = new OutboundMessage().type((short) 9);
            for (long[] held : nodes.nodes[1].held) {
                nodes.transports[1].reply((int) held[0], held[1], answer);
            }
            assertTrue(answered.await(20, TimeUnit.SECONDS));
            awaitTrue("slots to be free", () -> nodes.transports[0].outstandingRequests() == 0);
            nodes.assertStillServing();
        }
    }

    // ------------------------------------------------------------------ configuration

    @Test
    void badConfigurationIsRefusedWithAReadableReason() {
        IllegalArgumentException shortSecret = assertThrows(IllegalArgumentException.class,
                () -> TcpTransportConfig.loopback(0, 2, new byte[8]));
        assertTrue(shortSecret.getMessage().contains("at least 16 bytes"), shortSecret.getMessage());
        IllegalArgumentException rank = assertThrows(IllegalArgumentException.class,
                () -> TcpTransportConfig.loopback(2, 2, secret));
        assertTrue(rank.getMessage().contains("rank 2"), rank.getMessage());
        assertThrows(IllegalArgumentException.class, () -> TcpTransportConfig.loopback(0, 2, secret).withRequestSlots(1000));
        IllegalArgumentException spin = assertThrows(IllegalArgumentException.class,
                () -> TcpTransportConfig.loopback(0, 2, secret).withRequestSpinNanos(-1));
        assertTrue(spin.getMessage().contains("request spin -1 ns"), spin.getMessage());
        assertEquals(0, TcpTransportConfig.loopback(0, 2, secret).withRequestSpinNanos(0).requestSpinNanos());
        assertThrows(IllegalArgumentException.class,
                () -> TcpTransportConfig.loopback(0, 2, secret).withMaxPayload(TcpTransportConfig.MAX_MAX_PAYLOAD + 1));
        assertFalse(TcpTransportConfig.loopback(0, 2, secret).toString().contains(Arrays.toString(secret)));
    }

    @Test
    void endpointsParseOrExplainWhyNot() {
        assertEquals(new Endpoint("127.0.0.1", 7000), Endpoint.parse("127.0.0.1:7000"));
        assertEquals(new Endpoint("localhost", 1), Endpoint.parse("localhost:1"));
        assertEquals(new Endpoint("::1", 7000), Endpoint.parse("[::1]:7000"));
        assertEquals("[::1]:7000", Endpoint.parse("[::1]:7000").toString());
        for (String bad : new String[] {"127.0.0.1", "127.0.0.1:", ":80", "host:port", "host:70000", "::1:80"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Endpoint.parse(bad), bad);
            assertTrue(e.getMessage().contains("endpoint") || e.getMessage().contains("port"), e.getMessage());
        }
    }

    @Test
    void aPortInUseIsReportedNotThrownRaw() throws Exception {
        try (TcpTransport first = new TcpTransport(TcpTransportConfig.loopback(0, 1, secret))) {
            TcpTransportConfig clash = TcpTransportConfig.of(0, 1, first.localEndpoint(), secret);
            TransportException e = assertThrows(TransportException.class, () -> new TcpTransport(clash));
            assertEquals(Reason.PEER_UNREACHABLE, e.reason());
            assertTrue(e.getMessage().contains("cannot listen on " + first.localEndpoint()), e.getMessage());
        }
    }
}
