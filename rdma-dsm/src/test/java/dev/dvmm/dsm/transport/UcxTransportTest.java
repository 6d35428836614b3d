package dev.dvmm.dsm.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.dvmm.bindings.Ucp;
import dev.dvmm.bindings.UcxException;
import dev.dvmm.bindings.ucx.UcpConstants;
import dev.dvmm.bindings.ucx.UcpEpParams;
import dev.dvmm.bindings.ucx.UcpParams;
import dev.dvmm.bindings.ucx.UcpRequestParam;
import dev.dvmm.bindings.ucx.UcpWorkerParams;
import dev.dvmm.bindings.ucx.UcsConstants;
import dev.dvmm.dsm.transport.TestNode.Patterns;
import dev.dvmm.dsm.transport.TransportException.Reason;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** What is particular to the UCX transport: its loader, its wire checks, its rendezvous path. */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class UcxTransportTest {
    private static final long REQUEST_TIMEOUT = TimeUnit.SECONDS.toNanos(20);
    private final byte[] secret = new byte[32];

    UcxTransportTest() {
        new SecureRandom().nextBytes(secret);
    }

    @BeforeAll
    static void requireUcx() {
        assumeTrue(Ucp.isInstalled(), "UCX is not installed (apt-get install libucx0): skipping the UCX transport");
    }

    private Transport[] cluster(int size, TestNode[] nodes) throws TransportException {
        Transport[] transports = new Transport[size];
        List<Endpoint> endpoints = new ArrayList<>();
        for (int r = 0; r < size; r++) {
            transports[r] = new UcxTransport(UcxTransportConfig.loopback(r, size, secret));
            nodes[r] = new TestNode(r, size);
            nodes[r].transport = transports[r];
            endpoints.add(transports[r].localEndpoint());
        }
        for (int r = 0; r < size; r++) {
            transports[r].start(endpoints, nodes[r], nodes[r]);
        }
        for (Transport t : transports) {
            t.awaitConnected(Duration.ofSeconds(20));
        }
        return transports;
    }

    private static void awaitTrue(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, "timed out waiting for " + what);
            Thread.sleep(2);
        }
    }

    @Test
    void aMissingLibraryIsOneSentence() {
        UcxTransportConfig config = UcxTransportConfig.loopback(0, 2, secret)
                .withLibraries("libucp-dvmm-absent.so.0", "libucs-dvmm-absent.so.0");
        UcxException e = assertThrows(UcxException.class, () -> new UcxTransport(config));
        assertTrue(e.getMessage().startsWith("UCX is not installed: cannot load libucs-dvmm-absent.so.0"),
                e.getMessage());
        assertFalse(e.getMessage().contains("\n"), "one line");
    }

    @Test
    void infoListsWhatUcxSeesHere() {
        UcxInfo info = UcxInfo.probe();
        assertTrue(info.installed());
        assertTrue(info.version().startsWith(UcpConstants.UCP_API_MAJOR + "."), info.version());
        assertTrue(info.problem() == null, info.problem());
        // A context always has at least UCX's loopback transport; this machine has tcp and shm too.
        assertFalse(info.resources().isEmpty(), "no UCX transports listed");
        for (String resource : info.resources()) {
            assertTrue(resource.matches("[a-z0-9_]+/\\S+"), "not transport/device: " + resource);
        }
        assertTrue(info.lines().get(0).startsWith("UCX: yes, libucp " + info.version()));
        assertEquals(List.of("tcp/lo", "rc_mlx5/mlx5_0:1"), UcxInfo.resourcesIn("""
                #      resource 0  :  md 1  dev 1  flags -- tcp/lo
                #            md 2  :  component 2  sysv
                #      resource 1  :  md 4  dev 3  flags -- rc_mlx5/mlx5_0:1
                """));
        assertTrue(UcxInfo.rdmaTransportIn("#  resource 3 : md 4 dev 3 flags -- ud_verbs/mlx5_0:1\n"));
        assertFalse(UcxInfo.rdmaTransportIn("#  resource 3 : md 4 dev 3 flags -- tcp/ib0\n"));
    }

    /** Large (rendezvous) and small (eager) messages interleaved from one sender arrive in send order. */
    @Test
    void rendezvousMessagesKeepTheirPlaceInLine() throws Exception {
        TestNode[] nodes = new TestNode[2];
        Transport[] transports = cluster(2, nodes);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment scratch = arena.allocate(300_000);
            OutboundMessage message = new OutboundMessage();
            int count = 120;
            for (int i = 0; i < count; i++) {
                int length = i % 3 == 0 ? 200_000 + i : 17 * i;
                long seed = 5_000 + i;
                Patterns.fill(scratch, 0, length, seed);
                message.clear().type(TestNode.SEQUENCED).arg0(i).arg1(seed).payload(scratch, 0, length);
                transports[0].send(1, message);
            }
            awaitTrue("all messages", () -> nodes[1].sequencedReceived.get(0) == count);
            assertEquals(0, nodes[1].orderViolations.get(), "messages overtook a rendezvous message");
            assertEquals(0, nodes[1].payloadMismatches.get());
            // Replies larger than the inline size come back by rendezvous too, into the caller's window.
            ReplyBuffer reply = new ReplyBuffer(arena.allocate(300_000), 0, 300_000);
            transports[0].request(1, message.clear().type(TestNode.BULK).arg0(9).arg1(250_000), reply,
                    REQUEST_TIMEOUT);
            assertEquals(250_000, reply.payloadLength());
            assertTrue(Patterns.matches(reply.targetSegment(), 0, 250_000, TestNode.BULK_SEED));
        } finally {
            for (Transport t : transports) {
                t.close();
            }
        }
    }

    /** A raw UCX worker that speaks to a transport's worker directly, bypassing the bootstrap. */
    private static final class RawUcxPeer implements AutoCloseable {
        final Ucp ucp = Ucp.load();
        final Arena arena = Arena.ofShared();
        final long context;
        final long worker;
        final long ep;

        RawUcxPeer(byte[] targetAddress) {
            MemorySegment params = arena.allocate(UcpParams.LAYOUT);
            UcpParams.fieldMask(params, UcpConstants.UCP_PARAM_FIELD_FEATURES);
            UcpParams.features(params, UcpConstants.UCP_FEATURE_AM);
            long config = ucp.configRead();
            context = ucp.init(params, config);
            ucp.configRelease(config);
            MemorySegment workerParams = arena.allocate(UcpWorkerParams.LAYOUT);
            UcpWorkerParams.fieldMask(workerParams, UcpConstants.UCP_WORKER_PARAM_FIELD_THREAD_MODE);
            UcpWorkerParams.threadMode(workerParams, UcsConstants.UCS_THREAD_MODE_SINGLE);
            worker = ucp.workerCreate(context, workerParams);
            MemorySegment address = arena.allocateFrom(ValueLayout.JAVA_BYTE, targetAddress);
            MemorySegment epParams = arena.allocate(UcpEpParams.LAYOUT);
            UcpEpParams.fieldMask(epParams, UcpConstants.UCP_EP_PARAM_FIELD_REMOTE_ADDRESS);
            UcpEpParams.address(epParams, address.address());
            ep = ucp.epCreate(worker, epParams);
        }

        /** Sends one active message and progresses until UCX is done with it. */
        void send(MemorySegment header, MemorySegment data) {
            MemorySegment param = arena.allocate(UcpRequestParam.LAYOUT);
            long status = ucp.amSendNbx(ep, UcxTransport.AM_ID, header.address(), header.byteSize(),
                    data.address(), data.byteSize(), param);
            assertFalse(Ucp.isError(status), "raw send failed");
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (Ucp.isRequest(status) && ucp.requestCheckStatus(status) == UcsConstants.UCS_INPROGRESS
                    && System.nanoTime() < deadline) {
                ucp.workerProgress(worker);
            }
            if (Ucp.isRequest(status)) {
                ucp.requestFree(status);
            }
            for (int i = 0; i < 1000; i++) {
                ucp.workerProgress(worker);
            }
        }

        @Override
        public void close() {
            MemorySegment param = arena.allocate(UcpRequestParam.LAYOUT);
            UcpRequestParam.opAttrMask(param, UcpConstants.UCP_OP_ATTR_FIELD_FLAGS);
            UcpRequestParam.flags(param, UcpConstants.UCP_EP_CLOSE_FLAG_FORCE);
            long status = ucp.epCloseNbx(ep, param);
            if (Ucp.isRequest(status)) {
                ucp.requestFree(status);
            }
            ucp.workerDestroy(worker);
            ucp.cleanup(context);
            arena.close();
        }
    }

    private static MemorySegment header(Arena arena, int length, int sender, long sequence, long token, int magic) {
        MemorySegment h = arena.allocate(length);
        if (length >= UcxTransport.AM_HEADER_LENGTH) {
            FrameDescriptor.encode(h, 0, FrameDescriptor.KIND_MESSAGE, TestNode.SEQUENCED, (short) 0, 0, 0, 0, 0, 0, 0);
            h.set(FrameDescriptor.INT, FrameDescriptor.MAGIC_OFFSET, magic);
            h.set(FrameDescriptor.INT, UcxTransport.SENDER_OFFSET, sender);
            h.set(FrameDescriptor.LONG, UcxTransport.SEQUENCE_OFFSET, sequence);
            h.set(FrameDescriptor.LONG, UcxTransport.TOKEN_OFFSET, token);
        }
        return h;
    }

    @Test
    void malformedActiveMessagesAreRejected() throws Exception {
        TestNode[] nodes = new TestNode[2];
        Transport[] transports = cluster(2, nodes);
        UcxTransport target = (UcxTransport) transports[0];
        try (RawUcxPeer raw = new RawUcxPeer(target.workerAddress()); Arena arena = Arena.ofShared()) {
            MemorySegment noData = arena.allocate(1);
            long token = target.inboundToken(1);
            // Strangers: a short header, an unknown rank, a guessed token. Dropped; nobody goes down.
            raw.send(header(arena, 12, 1, 0, token, FrameDescriptor.MAGIC), noData.asSlice(0, 0));
            raw.send(header(arena, UcxTransport.AM_HEADER_LENGTH, 7, 0, token, FrameDescriptor.MAGIC),
                    noData.asSlice(0, 0));
            raw.send(header(arena, UcxTransport.AM_HEADER_LENGTH, 1, 0, token ^ 1, FrameDescriptor.MAGIC),
                    noData.asSlice(0, 0));
            awaitTrue("three rejections", () -> target.rejectedMessages() == 3);
            assertEquals(0, nodes[0].sequencedReceived.get(1), "a forged message was delivered");
            assertTrue(target.isPeerUp(1), "a stranger's message took the real peer down");
            ReplyBuffer reply = new ReplyBuffer();
            transports[1].request(0, new OutboundMessage().type(TestNode.ECHO).arg0(4), reply, REQUEST_TIMEOUT);
            assertEquals(4, reply.arg0());

            // With the peer's rank and token (as if its node went bad) a broken frame takes that peer down.
            raw.send(header(arena, UcxTransport.AM_HEADER_LENGTH, 1, 1, token, 0x0BAD_F00D), noData.asSlice(0, 0));
            assertEquals(1, nodes[0].peersDown.poll(20, TimeUnit.SECONDS));
            TransportException cause = nodes[0].downCauses.poll(1, TimeUnit.SECONDS);
            assertEquals(Reason.MALFORMED_FRAME, cause.reason());
            assertTrue(cause.getMessage().contains("bad frame magic"), cause.getMessage());
            assertEquals(4, target.rejectedMessages());
        } finally {
            for (Transport t : transports) {
                t.close();
            }
        }
    }
}
