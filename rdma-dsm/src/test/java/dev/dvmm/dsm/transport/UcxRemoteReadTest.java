package dev.dvmm.dsm.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.dvmm.bindings.Ucp;
import dev.dvmm.dsm.transport.TestNode.Patterns;
import dev.dvmm.dsm.transport.TransportException.Reason;
import dev.dvmm.dsm.transport.UcxTransportConfig.RemoteReads;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * One-sided reads over the UCX transport. There is no RDMA device here, so remote reads are forced on and UCX
 * emulates {@code ucp_get} over TCP in software (the target's progress thread answers it inside UCX); the contract
 * checked is the same as over RDMA: live bytes, bounds, who may read, exactly-once completion on the progress thread.
 */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class UcxRemoteReadTest {
    private static final int PAGE = 4096;
    private static final int PAGES = 64;
    private static final long WAIT_SECONDS = 20;
    private final byte[] secret = new byte[32];

    UcxRemoteReadTest() {
        new SecureRandom().nextBytes(secret);
    }

    @BeforeAll
    static void requireUcx() {
        assumeTrue(Ucp.isInstalled(), "UCX is not installed (apt-get install libucx0): skipping the UCX transport");
    }

    /** A completed read as its handler saw it. */
    private record Completion(int peer, long token, TransportException failure, String thread) {
    }

    /** Records every completion; the handler of the tests that do not check data. */
    private static final class Recorder implements RemoteReadHandler {
        final BlockingQueue<Completion> completions = new LinkedBlockingQueue<>();

        @Override
        public void onRemoteRead(int peer, long token, TransportException failure) {
            completions.add(new Completion(peer, token, failure, Thread.currentThread().getName()));
        }

        Completion next() throws InterruptedException {
            Completion c = completions.poll(WAIT_SECONDS, TimeUnit.SECONDS);
            assertNotNull(c, "a remote read never completed");
            return c;
        }
    }

    /** Two started, connected UCX transports; {@code exposing} ranks expose {@code regions[rank]} first. */
    private final class Pair implements AutoCloseable {
        final UcxTransport[] transports = new UcxTransport[2];
        final TestNode[] nodes = new TestNode[2];

        Pair(RemoteReads[] settings, MemorySegment[] regions) throws TransportException {
            List<Endpoint> endpoints = new ArrayList<>();
            try {
                for (int r = 0; r < 2; r++) {
                    transports[r] = new UcxTransport(UcxTransportConfig.loopback(r, 2, secret)
                            .withRemoteReads(settings[r]));
                    if (regions[r] != null) {
                        transports[r].exposeMemory(regions[r]);
                    }
                    nodes[r] = new TestNode(r, 2);
                    nodes[r].transport = transports[r];
                    endpoints.add(transports[r].localEndpoint());
                }
                for (int r = 0; r < 2; r++) {
                    transports[r].start(endpoints, nodes[r], nodes[r]);
                }
                for (UcxTransport t : transports) {
                    t.awaitConnected(Duration.ofSeconds(WAIT_SECONDS));
                }
            } catch (TransportException | RuntimeException e) {
                close();
                throw e;
            }
        }

        @Override
        public void close() {
            for (UcxTransport t : transports) {
                if (t != null) {
                    t.close();
                }
            }
        }
    }

    private static MemorySegment patternedRegion(Arena arena) {
        MemorySegment region = arena.allocate((long) PAGES * PAGE, PAGE);
        for (int p = 0; p < PAGES; p++) {
            Patterns.fill(region, (long) p * PAGE, PAGE, p);
        }
        return region;
    }

    private static RemoteReads[] both(RemoteReads setting) {
        return new RemoteReads[] {setting, setting};
    }

    @Test
    void aPeerReadsLiveBytesAtAnyOffset() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment region = patternedRegion(arena);
            MemorySegment dst = arena.allocate(PAGE, PAGE);
            Recorder recorder = new Recorder();
            try (Pair pair = new Pair(both(RemoteReads.ON), new MemorySegment[] {null, region})) {
                UcxTransport reader = pair.transports[0];
                assertTrue(reader.remoteReadsEnabled());
                assertTrue(reader.canReadRemote(1), "rank 1 exposed memory and reads are on");
                assertFalse(pair.transports[1].canReadRemote(0), "rank 0 exposed nothing");
                assertFalse(reader.canReadRemote(0) || reader.canReadRemote(2) || reader.canReadRemote(-1),
                        "only a peer can be read");

                int[] pages = {0, 1, 17, PAGES - 1};
                for (int i = 0; i < pages.length; i++) {
                    dst.fill((byte) 0);
                    reader.readRemote(1, (long) pages[i] * PAGE, dst, recorder, 100 + i);
                    Completion c = recorder.next();
                    assertEquals(new Completion(1, 100 + i, null, "dvmm-ucx-progress-r0"), c);
                    assertTrue(Patterns.matches(dst, 0, PAGE, pages[i]), "page " + pages[i] + " read wrong bytes");
                }
                // Not page-aligned, across a page boundary, shorter than a page.
                MemorySegment small = dst.asSlice(0, 300);
                reader.readRemote(1, 5L * PAGE - 100, small, recorder, 7);
                assertNull(recorder.next().failure());
                assertTrue(MemorySegment.mismatch(region, 5L * PAGE - 100, 5L * PAGE + 200, small, 0, 300) < 0);

                // The owner changes its memory: the next read sees the new bytes, not a copy taken at setup.
                for (int round = 0; round < 3; round++) {
                    long seed = 1_000 + round;
                    Patterns.fill(region, 17L * PAGE, PAGE, seed);
                    reader.readRemote(1, 17L * PAGE, dst, recorder, round);
                    assertNull(recorder.next().failure());
                    assertTrue(Patterns.matches(dst, 0, PAGE, seed), "round " + round + " read stale bytes");
                }
                // The reverse direction: rank 0 exposed nothing.
                TransportException nothing = assertThrows(TransportException.class,
                        () -> pair.transports[1].readRemote(0, 0, dst, recorder, 0));
                assertEquals(Reason.UNSUPPORTED, nothing.reason());
                assertTrue(nothing.getMessage().contains("exposed no memory"), nothing.getMessage());
                assertEquals(0, reader.outstandingReads());
                assertTrue(recorder.completions.isEmpty(), "a refused read completed");
            }
        }
    }

    @Test
    void readsOutsideTheExposedRegionAreRefusedWithoutACallback() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment region = patternedRegion(arena);
            MemorySegment dst = arena.allocate(PAGE, PAGE);
            Recorder recorder = new Recorder();
            try (Pair pair = new Pair(both(RemoteReads.ON), new MemorySegment[] {null, region})) {
                UcxTransport reader = pair.transports[0];
                long size = region.byteSize();
                long[] offsets = {-1, size, size - PAGE + 1, Long.MAX_VALUE, Long.MIN_VALUE};
                for (long offset : offsets) {
                    TransportException e = assertThrows(TransportException.class,
                            () -> reader.readRemote(1, offset, dst, recorder, 1), "offset " + offset);
                    assertEquals(Reason.UNSUPPORTED, e.reason());
                    assertTrue(e.getMessage().contains("outside the " + size + " bytes rank 1 exposed"), e.getMessage());
                }
                assertThrows(IllegalArgumentException.class,
                        () -> reader.readRemote(1, 0, MemorySegment.ofArray(new byte[PAGE]), recorder, 1),
                        "heap memory has no address for UCX");
                assertThrows(IllegalArgumentException.class, () -> reader.readRemote(0, 0, dst, recorder, 1),
                        "reading from oneself");
                // The last page exactly fits; its completion is the only one.
                reader.readRemote(1, size - PAGE, dst, recorder, 2);
                assertEquals(2, recorder.next().token());
                assertTrue(Patterns.matches(dst, 0, PAGE, PAGES - 1));
                assertNull(recorder.completions.poll(100, TimeUnit.MILLISECONDS), "a refused read completed");
            }
        }
    }

    @Test
    void nothingIsReadWhereReadsAreOffOrNothingIsExposed() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment region = patternedRegion(arena);
            MemorySegment dst = arena.allocate(PAGE, PAGE);
            Recorder recorder = new Recorder();
            // An owner with reads off cannot expose; a reader with reads off cannot read what an owner exposed.
            try (UcxTransport off = new UcxTransport(UcxTransportConfig.loopback(1, 2, secret)
                    .withRemoteReads(RemoteReads.OFF))) {
                assertFalse(off.remoteReadsEnabled());
                TransportException e = assertThrows(TransportException.class, () -> off.exposeMemory(region));
                assertEquals(Reason.UNSUPPORTED, e.reason());
                assertTrue(e.getMessage().contains("remote reads are OFF"), e.getMessage());
            }
            try (Pair pair = new Pair(new RemoteReads[] {RemoteReads.OFF, RemoteReads.ON},
                    new MemorySegment[] {null, region})) {
                assertFalse(pair.transports[0].canReadRemote(1));
                TransportException e = assertThrows(TransportException.class,
                        () -> pair.transports[0].readRemote(1, 0, dst, recorder, 1));
                assertEquals(Reason.UNSUPPORTED, e.reason());
                // Both on, nothing exposed.
            }
            try (Pair pair = new Pair(both(RemoteReads.ON), new MemorySegment[] {null, null})) {
                assertFalse(pair.transports[0].canReadRemote(1));
                assertFalse(pair.transports[1].canReadRemote(0));
                TransportException e = assertThrows(TransportException.class,
                        () -> pair.transports[0].readRemote(1, 0, dst, recorder, 1));
                assertEquals(Reason.UNSUPPORTED, e.reason());
            }
            assertTrue(recorder.completions.isEmpty());
            // Auto is off on a machine without RDMA and on where there is.
            try (UcxTransport auto = new UcxTransport(UcxTransportConfig.loopback(0, 2, secret))) {
                assertEquals(RemoteReads.AUTO, UcxTransportConfig.loopback(0, 2, secret).remoteReads());
                assertEquals(auto.rdmaDevicePresent(), auto.remoteReadsEnabled());
            }
        }
    }

    @Test
    void exposingIsOnceAndBeforeStart() throws Exception {
        try (Arena arena = Arena.ofShared();
             UcxTransport t = new UcxTransport(UcxTransportConfig.loopback(0, 1, secret)
                     .withRemoteReads(RemoteReads.ON))) {
            MemorySegment region = arena.allocate(PAGE, PAGE);
            assertThrows(IllegalArgumentException.class, () -> t.exposeMemory(MemorySegment.ofArray(new byte[PAGE])));
            assertThrows(IllegalArgumentException.class, () -> t.exposeMemory(region.asSlice(0, 0)));
            t.exposeMemory(region);
            assertThrows(IllegalStateException.class, () -> t.exposeMemory(region));
            t.start(List.of(t.localEndpoint()), message -> { }, PeerListener.NONE);
            assertThrows(IllegalStateException.class, () -> t.exposeMemory(arena.allocate(PAGE, PAGE)));
        }
    }

    /** Many readers, many reads in flight, each into its own page: every one completes once with its own bytes. */
    @Test
    void concurrentReadsAllCompleteWithTheirOwnBytes() throws Exception {
        int threads = 3;
        int readsPerThread = 400;
        int window = 16;
        try (Arena arena = Arena.ofShared()) {
            MemorySegment region = patternedRegion(arena);
            MemorySegment buffers = arena.allocate((long) threads * window * PAGE, PAGE);
            AtomicLong wrongBytes = new AtomicLong();
            AtomicLong failures = new AtomicLong();
            AtomicInteger completed = new AtomicInteger();
            int total = threads * readsPerThread;
            // token = thread * 2^32 + slot * 2^16 + page; the handler checks the slot's page.
            Semaphore[] windows = new Semaphore[threads];
            RemoteReadHandler check = (peer, token, failure) -> {
                int thread = (int) (token >>> 32);
                int slot = (int) ((token >>> 16) & 0xFFFF);
                int page = (int) (token & 0xFFFF);
                if (failure != null) {
                    failures.incrementAndGet();
                } else if (!Patterns.matches(buffers, ((long) thread * window + slot) * PAGE, PAGE, page)) {
                    wrongBytes.incrementAndGet();
                }
                completed.incrementAndGet();
                windows[thread].release();
            };
            try (Pair pair = new Pair(both(RemoteReads.ON), new MemorySegment[] {null, region})) {
                AtomicReference<Throwable> error = new AtomicReference<>();
                Thread[] readers = new Thread[threads];
                for (int t = 0; t < threads; t++) {
                    final int thread = t;
                    windows[t] = new Semaphore(0);
                    readers[t] = new Thread(() -> {
                        try {
                            // Rounds of one read per slot; a slot is reused once the whole round completed.
                            for (int i = 0; i < readsPerThread; i++) {
                                int slot = i % window;
                                int page = (i * 7 + thread * 13) % PAGES;
                                MemorySegment dst = buffers.asSlice(((long) thread * window + slot) * PAGE, PAGE);
                                pair.transports[0].readRemote(1, (long) page * PAGE, dst, check,
                                        ((long) thread << 32) | ((long) slot << 16) | page);
                                if (slot == window - 1 || i == readsPerThread - 1) {
                                    if (!windows[thread].tryAcquire(slot + 1, WAIT_SECONDS, TimeUnit.SECONDS)) {
                                        throw new AssertionError("a round of reads never completed");
                                    }
                                }
                            }
                        } catch (Throwable e) {
                            error.set(e);
                        }
                    }, "reader-" + t);
                    readers[t].start();
                }
                for (Thread reader : readers) {
                    reader.join(TimeUnit.SECONDS.toMillis(WAIT_SECONDS));
                    assertFalse(reader.isAlive(), reader.getName() + " did not finish");
                }
                assertNull(error.get());
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
                while (completed.get() < total && System.nanoTime() < deadline) {
                    Thread.sleep(2);
                }
                assertEquals(total, completed.get(), "completions");
                assertEquals(0, failures.get());
                assertEquals(0, wrongBytes.get());
                assertEquals(0, pair.transports[0].outstandingReads());
                Thread.sleep(50);
                assertEquals(total, completed.get(), "a read completed twice");
            }
        }
    }

    /**
     * The DSM's shape: a thread holds the engine lock while it sends and reads; the read handler takes that lock.
     * A handler called inside UCX's callback would hold UCX's worker lock while it waits for ours: deadlock.
     */
    @Test
    void aReadHandlerMayWaitForALockWhoseHolderIsSendingAndReading() throws Exception {
        int count = 200;
        try (Arena arena = Arena.ofShared()) {
            MemorySegment region = patternedRegion(arena);
            MemorySegment dst = arena.allocate(PAGE, PAGE);
            Object engineLock = new Object();
            long[] handled = new long[1];
            AtomicInteger failed = new AtomicInteger();
            RemoteReadHandler locking = (peer, token, failure) -> {
                synchronized (engineLock) {
                    handled[0]++;
                    if (failure != null) {
                        failed.incrementAndGet();
                    }
                }
            };
            try (Pair pair = new Pair(both(RemoteReads.ON), new MemorySegment[] {null, region})) {
                OutboundMessage message = new OutboundMessage();
                for (int i = 0; i < count; i++) {
                    synchronized (engineLock) {
                        pair.transports[0].readRemote(1, (long) (i % PAGES) * PAGE, dst, locking, i);
                        pair.transports[0].send(1, message.clear().type(TestNode.SEQUENCED).arg0(i).arg1(0));
                        pair.transports[0].send(1, message.clear().type(TestNode.SEQUENCED).arg0(i + count).arg1(0));
                    }
                    while (true) {
                        synchronized (engineLock) {
                            if (handled[0] == i + 1) {
                                break;
                            }
                        }
                        Thread.onSpinWait();
                    }
                }
                assertEquals(0, failed.get());
            }
        }
    }

    @Test
    void aReadOutstandingAtCloseFailsOnceWithClosed() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment region = patternedRegion(arena);
            MemorySegment dst = arena.allocate(PAGE, PAGE);
            Recorder recorder = new Recorder();
            try (Pair pair = new Pair(both(RemoteReads.ON), new MemorySegment[] {null, region})) {
                // Rank 1's progress thread is held in a handler, so the emulated read cannot be answered.
                pair.transports[0].send(1, new OutboundMessage().type(TestNode.STALL));
                assertTrue(pair.nodes[1].stalled.await(WAIT_SECONDS, TimeUnit.SECONDS));
                pair.transports[0].readRemote(1, 0, dst, recorder, 42);
                assertNull(recorder.completions.poll(100, TimeUnit.MILLISECONDS), "read done without the owner");
                assertEquals(1, pair.transports[0].outstandingReads());
                pair.transports[0].close();
                Completion c = recorder.next();
                assertEquals(42, c.token());
                assertNotNull(c.failure(), "the read succeeded without its owner");
                assertEquals(Reason.CLOSED, c.failure().reason());
                TransportException after = assertThrows(TransportException.class,
                        () -> pair.transports[0].readRemote(1, 0, dst, recorder, 43));
                assertEquals(Reason.CLOSED, after.reason());
                pair.nodes[1].gate.countDown();
                assertNull(recorder.completions.poll(100, TimeUnit.MILLISECONDS), "a read completed twice");
            }
        }
    }

    /**
     * A real peer death: the owner is another JVM, killed (SIGKILL) while a read from it is outstanding and its
     * progress thread is held in a handler. The read fails with PEER_DIED, once.
     */
    @Test
    void aReadOutstandingWhenTheOwnerDiesFailsOnceWithPeerDied() throws Exception {
        try (Arena arena = Arena.ofShared();
             UcxTransport reader = new UcxTransport(UcxTransportConfig.loopback(0, 2, secret)
                     .withRemoteReads(RemoteReads.ON))) {
            TestNode node = new TestNode(0, 2);
            node.transport = reader;
            reader.start(List.of(reader.localEndpoint(), new Endpoint("127.0.0.1", 1)), node, node);
            Process owner = RemoteReadOwner.launch(reader.localEndpoint().port(), secret);
            try {
                reader.awaitConnected(Duration.ofSeconds(WAIT_SECONDS));
                assertTrue(reader.canReadRemote(1));
                MemorySegment dst = arena.allocate(PAGE, PAGE);
                Recorder recorder = new Recorder();
                reader.readRemote(1, 3L * PAGE, dst, recorder, 1);
                assertNull(recorder.next().failure());
                assertTrue(Patterns.matches(dst, 0, PAGE, 3), "the other process's page");

                reader.send(1, new OutboundMessage().type(TestNode.STALL));
                // The owner says when its handler holds its progress thread.
                assertTrue(RemoteReadOwner.awaitLine(owner, "stalled"), "the owner process never stalled");
                reader.readRemote(1, 5L * PAGE, dst, recorder, 2);
                assertNull(recorder.completions.poll(100, TimeUnit.MILLISECONDS), "read done without the owner");
                owner.destroyForcibly();
                Completion c = recorder.next();
                assertEquals(2, c.token());
                assertEquals("dvmm-ucx-progress-r0", c.thread());
                assertNotNull(c.failure(), "the read succeeded from a killed process");
                assertEquals(Reason.PEER_DIED, c.failure().reason());
                assertEquals(1, c.failure().peer());
                assertEquals(1, node.peersDown.poll(WAIT_SECONDS, TimeUnit.SECONDS));
                assertFalse(reader.canReadRemote(1));
                TransportException after = assertThrows(TransportException.class,
                        () -> reader.readRemote(1, 0, dst, recorder, 3));
                assertEquals(Reason.PEER_DIED, after.reason());
                assertNull(recorder.completions.poll(100, TimeUnit.MILLISECONDS), "a read completed twice");
                System.out.println("reads still held by UCX after the owner died: " + reader.outstandingReads());
            } finally {
                owner.destroyForcibly();
                owner.waitFor(WAIT_SECONDS, TimeUnit.SECONDS);
            }
        }
    }

    @Test
    void steadyStateReadsAllocateNothing() throws Exception {
        // Enough for the JIT to compile the read path (an interpreted downcall allocates).
        int warmup = 10_000;
        int measured = 2_000;
        try (Arena arena = Arena.ofShared()) {
            MemorySegment region = patternedRegion(arena);
            MemorySegment dst = arena.allocate(PAGE, PAGE);
            com.sun.management.ThreadMXBean threads =
                    (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
            long[] handlerBytes = new long[2];
            AtomicLong done = new AtomicLong();
            RemoteReadHandler counting = (peer, token, failure) -> {
                if (token == warmup || token == warmup + measured) {
                    handlerBytes[token == warmup ? 0 : 1] = threads.getCurrentThreadAllocatedBytes();
                }
                // Release: handlerBytes is visible to the thread that sees the count.
                done.set(failure == null ? token + 1 : -1);
            };
            try (Pair pair = new Pair(both(RemoteReads.ON), new MemorySegment[] {null, region})) {
                UcxTransport reader = pair.transports[0];
                long before = 0;
                for (int i = 0; i <= warmup + measured; i++) {
                    if (i == warmup) {
                        before = threads.getCurrentThreadAllocatedBytes();
                    }
                    reader.readRemote(1, (long) (i % PAGES) * PAGE, dst, counting, i);
                    while (done.get() != i + 1) {
                        if (done.get() < 0) {
                            fail("read " + i + " failed");
                        }
                        // Not a pure spin: the progress threads that complete the read need this core.
                        Thread.yield();
                    }
                }
                long callerBytes = threads.getCurrentThreadAllocatedBytes() - before;
                long progressBytes = handlerBytes[1] - handlerBytes[0];
                System.out.printf("allocation over %d remote reads: caller %d B, progress thread %d B%n", measured,
                        callerBytes, progressBytes);
                assertTrue(callerBytes < measured, "caller allocated " + callerBytes + " B for " + measured + " reads");
                assertTrue(progressBytes < measured,
                        "progress thread allocated " + progressBytes + " B for " + measured + " reads");
            }
        }
    }

    /**
     * Rank 1 in its own JVM for {@link #aReadOutstandingWhenTheOwnerDiesFailsOnceWithPeerDied}: exposes the
     * patterned region, connects to rank 0 at the port given, and answers STALL by printing "stalled" and holding its
     * progress thread until it is killed.
     */
    static final class RemoteReadOwner {
        private RemoteReadOwner() {
        }

        static Process launch(int port, byte[] secret) throws IOException {
            String java = ProcessHandle.current().info().command().orElse(System.getProperty("java.home") + "/bin/java");
            List<String> command = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED", "-cp",
                    System.getProperty("java.class.path"), RemoteReadOwner.class.getName(), Integer.toString(port),
                    HexFormat.of().formatHex(secret)));
            return new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        }

        /** Reads the owner's output up to {@code expected}; false if it ended first. */
        static boolean awaitLine(Process process, String expected) throws IOException {
            BufferedReader out = new BufferedReader(new InputStreamReader(process.getInputStream(),
                    StandardCharsets.UTF_8));
            for (String line = out.readLine(); line != null; line = out.readLine()) {
                if (line.strip().equals(expected)) {
                    return true;
                }
            }
            return false;
        }

        public static void main(String[] args) throws Exception {
            int port = Integer.parseInt(args[0]);
            byte[] secret = HexFormat.of().parseHex(args[1]);
            Arena arena = Arena.ofShared();
            MemorySegment region = patternedRegion(arena);
            UcxTransport owner = new UcxTransport(UcxTransportConfig.loopback(1, 2, secret)
                    .withRemoteReads(RemoteReads.ON));
            owner.exposeMemory(region);
            MessageHandler handler = message -> {
                if (message.type() == TestNode.STALL) {
                    System.out.println("stalled");
                    System.out.flush();
                    try {
                        Thread.sleep(Long.MAX_VALUE);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
            };
            owner.start(List.of(new Endpoint("127.0.0.1", port), owner.localEndpoint()), handler, PeerListener.NONE);
            owner.awaitConnected(Duration.ofSeconds(WAIT_SECONDS));
            // Lives until killed (or, if the test died first, until its peer goes away).
            while (owner.isPeerUp(0)) {
                Thread.sleep(100);
            }
            owner.close();
        }
    }
}
