package dev.dvmm.dsm.transport;

import dev.dvmm.bindings.Ucp;
import dev.dvmm.bindings.UcxException;
import dev.dvmm.bindings.abi.PollFd;
import dev.dvmm.bindings.abi.PosixConstants;
import dev.dvmm.bindings.ucx.UcpAmHandlerParam;
import dev.dvmm.bindings.ucx.UcpAmRecvParam;
import dev.dvmm.bindings.ucx.UcpConstants;
import dev.dvmm.bindings.ucx.UcpEpParams;
import dev.dvmm.bindings.ucx.UcpMemMapParams;
import dev.dvmm.bindings.ucx.UcpParams;
import dev.dvmm.bindings.ucx.UcpRequestParam;
import dev.dvmm.bindings.ucx.UcpWorkerAttr;
import dev.dvmm.bindings.ucx.UcpWorkerParams;
import dev.dvmm.bindings.ucx.UcsConstants;
import dev.dvmm.dsm.transport.TransportException.Reason;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * {@link Transport} over UCX (libucp through FFM): InfiniBand/RoCE verbs where the fabric has them,
 * otherwise whatever UCX falls back to (TCP, shared memory, CMA), with the same semantics as
 * {@link TcpTransport} and the same conformance suite.
 *
 * <h2>Setup</h2>
 * One UCP context (features AM, RMA, WAKEUP) and one worker in {@code UCS_THREAD_MODE_MULTI}, so any
 * thread may send. UCX reads its own environment (UCX_TLS, UCX_NET_DEVICES, ...) untouched. Worker
 * addresses are exchanged over a small TCP bootstrap on {@link #localEndpoint()}: the higher rank
 * connects to the lower one and both authenticate with the {@link Transport} challenge-response
 * (same MACs, {@link PeerAuthenticator}); then each side sends its worker address and a random
 * 64-bit session token, creates its endpoint, and the acceptor confirms with READY. The bootstrap
 * connection stays open as a liveness link: when it ends, the peer is down.
 *
 * <h2>Messages</h2>
 * Every message is one active message (id {@value #AM_ID}) whose 80-byte AM header is the
 * {@link FrameDescriptor} header followed by the sender's rank, a per-pair sequence number and the
 * receiver's session token; the payload is the AM data. The receiver checks all of it: a header of
 * the wrong size or with an unknown sender or token is dropped and counted (the sender cannot be
 * named), a bad header from an authenticated sender takes that peer down, as over TCP. Payloads up
 * to {@link UcxTransportConfig#inlinePayloadBytes()} are copied into a transport-owned send buffer
 * (the send returns at once, even if UCX completes it later); larger ones go zero-copy from the
 * caller's memory (UCX uses rendezvous) and the sending thread waits for completion. A rendezvous
 * message's data is fetched with {@code ucp_am_recv_data_nbx} into a per-peer buffer. UCX does not
 * promise order between active messages (multi-rail, eager versus rendezvous), so the receiver
 * delivers by sequence number and parks early arrivals until the gap closes.
 *
 * <p>UCX runs its callbacks inside {@code ucp_worker_progress}, holding the worker's lock, which every
 * send also takes. So the callbacks only check and park (UCX keeps the data where it can, otherwise
 * it is copied), and the handlers run after progress returns, without that lock: a handler may wait
 * for a lock whose holder is sending (the DSM's fault thread sends while it holds the engine lock
 * the handler needs). Peer failures found in a callback are handled the same way.
 *
 * <h2>Threads</h2>
 * A progress thread calls {@code ucp_worker_progress}, runs all callbacks (handlers, replies,
 * peer events), busy-polls for {@link UcxTransportConfig#busyPollNanos()} after its last event or
 * send (yielding its core between polls), then arms the worker and sleeps in {@code poll} on its
 * event fd; a send wakes it, so the answer finds it polling. A bootstrap thread accepts and makes
 * the bootstrap connections and watches them; it hands peer events to the progress thread.
 * Allocation-free in steady state, like the TCP transport.
 *
 * <p>Other threads poll the worker too (one at a time, through the {@code poller} flag that also guards what
 * the callbacks park): a thread blocked in {@link #request} polls for up to
 * {@link UcxTransportConfig#requestSpinNanos()} and completes its reply itself when it is next in its peer's
 * order, with no wake-up from the progress thread (which stands back meanwhile); a sender waiting for a send
 * buffer or for a zero-copy send polls so that its sends complete. Handlers never run under the flag, so a
 * handler that waits for a lock whose holder waits for UCX cannot stop the worker. What such a poll finds for
 * handlers is left to the progress thread, in order. One thing still needs the progress thread: fetching a
 * rendezvous payload (above {@link UcxTransportConfig#inlinePayloadBytes()}) starts when its message is next to
 * deliver, so a large send made while holding a lock that the peer's handlers wait for can still stall.
 *
 * <h2>One-sided reads</h2>
 * With {@link UcxTransportConfig#remoteReads()} on (or auto and an RDMA transport present),
 * {@link #exposeMemory} registers a region with {@code ucp_mem_map(UCP_MEM_MAP_NONBLOCK)} and packs its remote
 * key; key, base address and length travel in the bootstrap (REGION, after ADDRESS; an empty key from a node that
 * exposed nothing), and each side unpacks the peer's key on its endpoint. {@link #readRemote} is one
 * {@code ucp_get_nbx} into the caller's memory, with a preallocated request slot whose index is the UCX user data.
 * The completion callback only parks the slot; the progress thread calls the {@link RemoteReadHandler} after
 * {@code ucp_worker_progress} returns, as it does for messages. Reads outstanding when a peer goes down complete
 * with {@code PEER_DIED}, at close with {@code CLOSED}: UCX cancels them when the endpoint closes, and whatever it
 * leaves is failed by the transport; a slot's state word decides who completes it, so each read completes once.
 * So that a registration never pins pages the DSM later punches out, remote reads set UCX's IB memory domain to
 * implicit on-demand paging, else per-region ODP ({@code REG_METHODS=odp,direct}, {@code ODP_MAX_SIZE=inf}) unless
 * the user set those variables: an HCA without ODP then fails the registration loudly instead of pinning
 * (docs/DEPLOYMENT.md).
 *
 * <h2>What UCX does not give</h2>
 * UCX endpoints carry no authentication of their own: the session token keeps strangers that never
 * passed the bootstrap out, but the fabric itself must be trusted (as it must for TCP after the
 * handshake); a peer with a node's remote key reads its exposed region without that node's code running.
 */
public final class UcxTransport implements Transport {
    private static final Logger LOG = LogManager.getLogger(UcxTransport.class);

    /** Active-message id of dvmm frames. */
    static final int AM_ID = 7;
    /** The AM header: frame header, sender rank, zero, sequence number, receiver's session token. */
    static final int AM_HEADER_LENGTH = 80;
    static final int SENDER_OFFSET = FrameDescriptor.HEADER_LENGTH;
    static final int AM_RESERVED_OFFSET = SENDER_OFFSET + 4;
    static final int SEQUENCE_OFFSET = SENDER_OFFSET + 8;
    static final int TOKEN_OFFSET = SENDER_OFFSET + 16;

    /** Marks bootstrap frames of this transport (arg3 of CHALLENGE and PROOF): "DVUCX" + version 2 (REGION). */
    static final long BOOTSTRAP_MAGIC = 0x0002_5843_5556_44L;
    static final short STEP_CHALLENGE = 1;
    static final short STEP_PROOF = 2;
    static final short STEP_WELCOME = 3;
    static final short STEP_ADDRESS = 4;
    static final short STEP_READY = 5;
    /** The exposed region: base (arg1), length (arg2), packed remote key (payload; empty: nothing exposed). */
    static final short STEP_REGION = 6;
    /** Worker addresses are a few hundred bytes; multi-rail IB addresses a few KiB. */
    static final int MAX_WORKER_ADDRESS = 16 << 10;

    private static final ValueLayout.OfInt INT = FrameDescriptor.INT;
    private static final ValueLayout.OfLong LONG = FrameDescriptor.LONG;
    /** Period of housekeeping: callback timeouts, connect retries. */
    private static final long TICK_NANOS = 10_000_000;
    /** A sender waiting for a zero-copy send to complete gives up (and cancels it) after this. */
    private static final long SEND_TIMEOUT_NANOS = 10_000_000_000L;
    /** Sends UCX has not completed yet keep the progress thread polling (not sleeping) this long. */
    private static final long INFLIGHT_POLL_NANOS = 10_000_000;
    /** How long close waits for endpoints to flush what was sent before it. */
    private static final long CLOSE_FLUSH_NANOS = 1_000_000_000L;
    /** Offsets inside one send buffer: request param, AM header, inline payload. */
    private static final long SLOT_PARAM = 0;
    private static final long SLOT_HEADER = 128;
    private static final long SLOT_DATA = 256;
    /** Smallest copy buffer of a parked message: a page and then some, so it is allocated once. */
    private static final long PARKED_COPY_MIN = 16 << 10;

    /** Read slot states: free; taken by a reader; UCX has it; UCX finished it (queued for delivery); failed by
     *  the transport while UCX still has it (UCX's callback frees it). */
    private static final int READ_FREE = 0;
    private static final int READ_STARTING = 1;
    private static final int READ_INFLIGHT = 2;
    private static final int READ_COMPLETED = 3;
    private static final int READ_ABANDONED = 4;
    /** The UCX variables (memory-domain names, without UCX_IB_) that keep registrations from pinning. */
    private static final String REG_METHODS = "REG_METHODS";
    private static final String ODP_MAX_SIZE = "ODP_MAX_SIZE";

    private static final int PEER_NEW = PeerLink.NEW;
    private static final int PEER_UP = PeerLink.UP;
    private static final int PEER_DOWN = PeerLink.DOWN;

    /**
     * SAFETY: addresses UCX hands to callbacks (AM header, data) are read through this one segment
     * that spans the address space, so no segment object is created per message. Every access is
     * bounded by a length UCX gave for that address and happens while UCX keeps it valid.
     */
    private static final MemorySegment ALL = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);

    private final UcxTransportConfig config;
    private final int rank;
    private final int size;
    private final int maxPayload;
    private final int inlinePayload;
    private final long busyPollNanos;
    private final Ucp ucp;
    private final Arena arena = Arena.ofShared();
    private final long context;
    private final long worker;
    private final int eventFd;
    private final byte[] workerAddress;
    private final boolean rdmaDevicePresent;
    /** One-sided reads are on (config ON, or AUTO with an RDMA transport). */
    private final boolean remoteReads;
    /** Reads UCX holds a request for (they keep the progress thread polling). */
    private final AtomicInteger readsInUcx = new AtomicInteger();
    private final ServerSocketChannel server;
    private final Selector selector;
    private final Endpoint localEndpoint;
    private final Peer[] peers;
    private final RequestTable requests;
    private final PeerAuthenticator authenticator;
    private final SecureRandom random = new SecureRandom();
    private final AtomicLong rejectedMessages = new AtomicLong();
    private final AtomicLong droppedReplies = new AtomicLong();
    private final AtomicInteger inflightSends = new AtomicInteger();
    /**
     * 1 while a thread calls {@code ucp_worker_progress} or touches what UCX's callbacks park (the peers' queues,
     * {@link #readyPeers}): the progress thread, a requesting thread that polls for its own reply, a sender that
     * waits for a send buffer. No handler runs under it, and only the progress thread waits for it; other threads
     * only try it. So a handler that waits for a lock whose holder waits for UCX (a send buffer, a reply) does not
     * stop the worker: that holder polls it.
     */
    private final AtomicInteger poller = new AtomicInteger();
    /** Requesting threads polling the worker for their reply: the progress thread stands back meanwhile. */
    private final AtomicInteger callersPolling = new AtomicInteger();
    /** Set by a requesting thread whose poll left work for the progress thread (Dekker pair with 'sleeping'). */
    private volatile boolean workLeft;
    private final ConcurrentLinkedQueue<PeerEvent> events = new ConcurrentLinkedQueue<>();

    // Upcall stubs and preallocated parameter structs, created once.
    private final MemorySegment sendCompletionStub;
    private final MemorySegment receiveCompletionStub;
    private final MemorySegment endpointErrorStub;
    private final MemorySegment readCompletionStub;
    private final MemorySegment closeParam;
    private final MemorySegment pollFd;

    // Send buffers: a pool guarded by 'pool'; the array only grows (from the progress thread).
    private final Object pool = new Object();
    private volatile SendSlot[] slots;
    private int[] freeSlots;
    private int freeCount;
    private int slotWaiters;

    // One-sided reads: slots, a free list and a queue of finished ones, both guarded by 'readLock' (which is never
    // held across a UCX call, so UCX's callbacks may take it).
    private final Object readLock = new Object();
    private ReadSlot[] readSlots;
    private int[] freeReads;
    private int freeReadCount;
    private int[] finishedReads;
    private volatile int finishedReadCount;
    /** Progress thread: the finished reads being delivered (a copy of the queue, taken under readLock). */
    private int[] deliveringReads;
    /** The region this node exposed ({@link #exposeMemory}); memh 0 if none. Set before start, under lifecycle. */
    private long exposedMemh;
    private long exposedBase;
    private long exposedLength;
    private byte[] exposedKey = new byte[0];

    // Progress thread only.
    private final InboundMessage inbound = new InboundMessage();
    /** The flyweight of replies completed by a requesting thread (under {@link #poller}). */
    private final InboundMessage polledInbound = new InboundMessage();
    /** Ranks with parked messages or a finished rendezvous to deliver; each at most once (Peer.ready). */
    private final int[] readyPeers;
    private volatile int readyCount;

    /** Guards start/close and is notified whenever a peer comes up or goes down. */
    private final Object lifecycle = new Object();
    private volatile boolean closed;
    private volatile boolean sleeping;
    /** When a thread other than the progress thread last sent: it restarts the busy-poll window. */
    private volatile long lastSend;
    /** Set by peerDown: an endpoint awaits closing at the top of the progress loop. Progress thread. */
    private boolean deadEndpoints;
    /** The bootstrap connection in a blocking handshake, closed by close() to end it at once. */
    private volatile SocketChannel handshaking;
    private boolean started;
    private boolean released;
    private Thread progressThread;
    private Thread bootstrapThread;
    private MessageHandler handler;
    private PeerListener peerListener;

    /**
     * Loads UCX, creates the context and worker and binds the bootstrap socket; nothing is sent until
     * {@link #start}. Throws {@link UcxException} ("UCX is not installed ...") without UCX.
     */
    public UcxTransport(UcxTransportConfig config) throws TransportException {
        this.config = config;
        this.rank = config.rank();
        this.size = config.clusterSize();
        this.maxPayload = config.maxPayload();
        this.inlinePayload = Math.min(config.inlinePayloadBytes(), config.maxPayload());
        this.busyPollNanos = config.busyPollNanos();
        this.lastSend = System.nanoTime();
        this.authenticator = new PeerAuthenticator(config.clusterSecret());
        this.requests = new RequestTable(config.requestSlots());
        this.ucp = Ucp.UCP_LIBRARY.equals(config.ucpLibrary()) && Ucp.UCS_LIBRARY.equals(config.ucsLibrary())
                ? Ucp.load() : Ucp.load(config.ucpLibrary(), config.ucsLibrary());
        this.peers = new Peer[size];
        this.readyPeers = new int[size];
        for (int r = 0; r < size; r++) {
            peers[r] = r == rank ? null : new Peer(r, random.nextLong() | 1, arena);
        }
        long createdContext = 0;
        long createdWorker = 0;
        ServerSocketChannel boundServer = null;
        Selector openedSelector = null;
        try {
            createdContext = createContext();
            createdWorker = createWorker(createdContext);
            this.context = createdContext;
            this.worker = createdWorker;
            this.rdmaDevicePresent = UcxInfo.rdmaTransportIn(ucp.contextInfo(createdContext));
            this.remoteReads = switch (config.remoteReads()) {
                case ON -> true;
                case OFF -> false;
                case AUTO -> rdmaDevicePresent;
            };
            this.sendCompletionStub = Ucp.sendCompletionStub(this::onSendComplete, arena);
            this.receiveCompletionStub = Ucp.receiveCompletionStub(this::onReceiveComplete, arena);
            this.endpointErrorStub = Ucp.endpointErrorStub(this::onEndpointError, arena);
            this.readCompletionStub = Ucp.sendCompletionStub(this::onReadComplete, arena);
            installHandler();
            this.workerAddress = ucp.workerAddress(createdWorker);
            if (workerAddress.length > MAX_WORKER_ADDRESS) {
                throw new UcxException("the UCX worker address has " + workerAddress.length
                        + " bytes, more than the bootstrap carries (" + MAX_WORKER_ADDRESS + ")");
            }
            this.eventFd = ucp.workerEventFd(createdWorker);
            this.closeParam = arena.allocate(UcpRequestParam.LAYOUT);
            this.pollFd = arena.allocate(PollFd.LAYOUT);
            PollFd.fd(pollFd, eventFd);
            PollFd.events(pollFd, PosixConstants.POLLIN);
            initSlots(config.sendBuffers());
            initReads(remoteReads ? config.requestSlots() : 0);

            openedSelector = Selector.open();
            boundServer = ServerSocketChannel.open();
            boundServer.setOption(StandardSocketOptions.SO_REUSEADDR, true);
            boundServer.bind(config.listen().toSocketAddress(), 64);
            boundServer.configureBlocking(false);
            boundServer.register(openedSelector, SelectionKey.OP_ACCEPT, null);
            InetSocketAddress bound = (InetSocketAddress) boundServer.getLocalAddress();
            this.localEndpoint = new Endpoint(config.listen().host(), bound.getPort());
        } catch (IOException | RuntimeException e) {
            closeQuietly(boundServer);
            closeQuietly(openedSelector);
            if (createdWorker != 0) {
                ucp.workerDestroy(createdWorker);
            }
            if (createdContext != 0) {
                ucp.cleanup(createdContext);
            }
            arena.close();
            if (e instanceof UcxException ucx) {
                throw ucx;
            }
            throw new TransportException(Reason.PEER_UNREACHABLE, -1,
                    "rank " + rank + " cannot listen on " + config.listen() + ": " + e.getMessage(), e);
        }
        this.server = boundServer;
        this.selector = openedSelector;
    }

    private long createContext() {
        MemorySegment params = arena.allocate(UcpParams.LAYOUT);
        UcpParams.fieldMask(params, UcpConstants.UCP_PARAM_FIELD_FEATURES | UcpConstants.UCP_PARAM_FIELD_ESTIMATED_NUM_EPS
                | UcpConstants.UCP_PARAM_FIELD_NAME);
        UcpParams.features(params, UcpConstants.UCP_FEATURE_AM | UcpConstants.UCP_FEATURE_RMA
                | UcpConstants.UCP_FEATURE_WAKEUP);
        UcpParams.estimatedNumEps(params, size);
        UcpParams.name(params, arena.allocateFrom("dvmm-r" + rank).address());
        // UCX_* environment variables (UCX_TLS, UCX_NET_DEVICES, ...) reach UCX through its config.
        long ucxConfig = ucp.configRead();
        try {
            if (config.remoteReads() != UcxTransportConfig.RemoteReads.OFF && infinibandDevicePresent()) {
                keepRegistrationsFromPinning(ucxConfig);
            }
            return ucp.init(params, ucxConfig);
        } finally {
            ucp.configRelease(ucxConfig);
        }
    }

    /**
     * An exposed region is read while its owner punches pages out of it: a pinned registration would keep serving
     * the old pages. UCX 1.13's IB memory domain gives {@code UCP_MEM_MAP_NONBLOCK} on-demand paging only where
     * {@code UCX_IB_ODP_MAX_SIZE} allows it, which "auto" does not with upstream rdma-core (it probes only the old
     * experimental verbs), so by default it would pin. Hence, for this context only and unless the user set them:
     * implicit ODP (one key for the address space, never pinned) where the HCA has it, else direct registration with
     * ODP for NONBLOCK regions of any size; an HCA without ODP then refuses the registration instead of pinning.
     */
    private void keepRegistrationsFromPinning(long ucxConfig) {
        boolean userMethods = System.getenv("UCX_IB_" + REG_METHODS) != null;
        boolean userOdpSize = System.getenv("UCX_IB_" + ODP_MAX_SIZE) != null;
        if (!userMethods) {
            ucp.configModify(ucxConfig, REG_METHODS, "odp,direct");
        }
        if (!userOdpSize) {
            ucp.configModify(ucxConfig, ODP_MAX_SIZE, "inf");
        }
        if (userMethods || userOdpSize) {
            LOG.info("rank {}: remote reads with the user's UCX_IB_{} / UCX_IB_{}: make sure they never pin (docs/"
                    + "DEPLOYMENT.md)", rank, REG_METHODS, ODP_MAX_SIZE);
        }
    }

    /**
     * Whether the kernel lists an InfiniBand/RoCE device: only then is there an IB memory domain to configure (UCX
     * warns about variables that no component used).
     */
    private static boolean infinibandDevicePresent() {
        try (var devices = java.nio.file.Files.list(java.nio.file.Path.of("/sys/class/infiniband"))) {
            return devices.findAny().isPresent();
        } catch (IOException e) {
            return false;
        }
    }

    private long createWorker(long ucpContext) {
        MemorySegment params = arena.allocate(UcpWorkerParams.LAYOUT);
        UcpWorkerParams.fieldMask(params, UcpConstants.UCP_WORKER_PARAM_FIELD_THREAD_MODE);
        UcpWorkerParams.threadMode(params, UcsConstants.UCS_THREAD_MODE_MULTI);
        long created = ucp.workerCreate(ucpContext, params);
        MemorySegment attr = arena.allocate(UcpWorkerAttr.LAYOUT);
        UcpWorkerAttr.fieldMask(attr, UcpConstants.UCP_WORKER_ATTR_FIELD_THREAD_MODE
                | UcpConstants.UCP_WORKER_ATTR_FIELD_MAX_AM_HEADER);
        ucp.workerQuery(created, attr);
        String problem = null;
        if (UcpWorkerAttr.threadMode(attr) != UcsConstants.UCS_THREAD_MODE_MULTI) {
            problem = "this UCX was built without multi-thread support (configure --enable-mt): dvmm sends from"
                    + " any thread";
        } else if (UcpWorkerAttr.maxAmHeader(attr) < AM_HEADER_LENGTH) {
            problem = "this UCX carries active-message headers of at most " + UcpWorkerAttr.maxAmHeader(attr)
                    + " bytes, dvmm needs " + AM_HEADER_LENGTH;
        }
        if (problem != null) {
            ucp.workerDestroy(created);
            throw new UcxException(problem);
        }
        return created;
    }

    private void installHandler() {
        MemorySegment params = arena.allocate(UcpAmHandlerParam.LAYOUT);
        UcpAmHandlerParam.fieldMask(params, UcpConstants.UCP_AM_HANDLER_PARAM_FIELD_ID
                | UcpConstants.UCP_AM_HANDLER_PARAM_FIELD_CB | UcpConstants.UCP_AM_HANDLER_PARAM_FIELD_FLAGS);
        UcpAmHandlerParam.id(params, AM_ID);
        UcpAmHandlerParam.flags(params, UcpConstants.UCP_AM_FLAG_WHOLE_MSG);
        UcpAmHandlerParam.cb(params, Ucp.activeMessageStub(this::onActiveMessage, arena).address());
        ucp.setAmRecvHandler(worker, params);
    }

    private void initReads(int count) {
        readSlots = new ReadSlot[count];
        freeReads = new int[count];
        finishedReads = new int[count];
        deliveringReads = new int[count];
        MemorySegment params = count == 0 ? MemorySegment.NULL : arena.allocate(UcpRequestParam.LAYOUT, count);
        for (int i = 0; i < count; i++) {
            MemorySegment param = params.asSlice(i * UcpRequestParam.SIZE, UcpRequestParam.SIZE);
            UcpRequestParam.opAttrMask(param, UcpConstants.UCP_OP_ATTR_FIELD_CALLBACK
                    | UcpConstants.UCP_OP_ATTR_FIELD_USER_DATA);
            UcpRequestParam.cbSend(param, readCompletionStub.address());
            UcpRequestParam.userData(param, i);
            readSlots[i] = new ReadSlot(param);
            freeReads[i] = count - 1 - i;
        }
        freeReadCount = count;
    }

    private void initSlots(int count) {
        SendSlot[] created = new SendSlot[count];
        freeSlots = new int[count];
        long stride = SLOT_DATA + ((inlinePayload + 63L) & -64L);
        MemorySegment memory = arena.allocate(stride * count, 64);
        for (int i = 0; i < count; i++) {
            created[i] = new SendSlot(i, memory.asSlice(i * stride, stride));
            freeSlots[i] = i;
        }
        freeCount = count;
        slots = created;
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int clusterSize() {
        return size;
    }

    @Override
    public Endpoint localEndpoint() {
        return localEndpoint;
    }

    @Override
    public int maxPayload() {
        return maxPayload;
    }

    /** Messages dropped for a bad AM header (unknown sender, wrong token, wrong size) or a bad frame. */
    public long rejectedMessages() {
        return rejectedMessages.get();
    }

    /** Replies that matched no outstanding request (late after a timeout, or from the wrong peer). */
    public long droppedReplies() {
        return droppedReplies.get();
    }

    /** Requests armed or waiting right now. */
    public int outstandingRequests() {
        return requests.outstanding();
    }

    /** This worker's UCX address (for tests that play a raw UCX peer). */
    byte[] workerAddress() {
        return workerAddress.clone();
    }

    /** The session token this node expects in messages from {@code peer} (for tests). */
    long inboundToken(int peer) {
        return peer(peer).inboundToken;
    }

    /** Whether this transport does one-sided reads (configured on, or auto with an RDMA transport present). */
    public boolean remoteReadsEnabled() {
        return remoteReads;
    }

    /** One-sided reads started and not yet delivered to their handler (for tests and diagnostics). */
    public int outstandingReads() {
        synchronized (readLock) {
            return readSlots.length - freeReadCount;
        }
    }

    /** Whether UCX sees an RDMA-capable transport (verbs rc/ud/dc) on this node. */
    public boolean rdmaDevicePresent() {
        return rdmaDevicePresent;
    }

    // ---------------------------------------------------------------- lifecycle

    @Override
    public void start(List<Endpoint> cluster, MessageHandler messageHandler, PeerListener listener)
            throws TransportException {
        if (cluster.size() != size) {
            throw new IllegalArgumentException("cluster lists " + cluster.size() + " endpoints, expected " + size);
        }
        if (messageHandler == null || listener == null) {
            throw new IllegalArgumentException("message handler and peer listener are required");
        }
        for (int r = 0; r < rank; r++) {
            Endpoint endpoint = cluster.get(r);
            InetSocketAddress address = endpoint.toSocketAddress();
            if (address.isUnresolved()) {
                throw new TransportException(Reason.PEER_UNREACHABLE, r,
                        "cannot resolve rank " + r + "'s host " + endpoint.host());
            }
            peers[r].endpoint = endpoint;
            peers[r].address = address;
        }
        synchronized (lifecycle) {
            if (closed) {
                throw closedException();
            }
            if (started) {
                throw new IllegalStateException("transport of rank " + rank + " is already started");
            }
            started = true;
            this.handler = messageHandler;
            this.peerListener = listener;
            Thread progress = new Thread(this::runProgressLoop, "dvmm-ucx-progress-r" + rank);
            progress.setDaemon(true);
            Thread bootstrap = new Thread(this::runBootstrapLoop, "dvmm-ucx-bootstrap-r" + rank);
            bootstrap.setDaemon(true);
            progressThread = progress;
            bootstrapThread = bootstrap;
            progress.start();
            bootstrap.start();
        }
    }

    @Override
    public void awaitConnected(Duration timeout) throws TransportException {
        synchronized (lifecycle) {
            if (!started) {
                throw new IllegalStateException("transport of rank " + rank + " is not started");
            }
            PeerLink.awaitAll(lifecycle, peers, rank, timeout, "no UCX endpoint to",
                    () -> closed ? closedException() : null);
        }
    }

    @Override
    public boolean isPeerUp(int peer) {
        return peer(peer).state == PEER_UP;
    }

    // ---------------------------------------------------------------- send path (any thread)

    @Override
    public void send(int peer, OutboundMessage message) throws TransportException {
        transmit(peer(peer), FrameDescriptor.KIND_MESSAGE, 0, message);
    }

    @Override
    public void request(int peer, OutboundMessage message, ReplyBuffer reply, long timeoutNanos)
            throws TransportException {
        Peer target = peer(peer);
        if (Thread.currentThread() == progressThread) {
            throw new IllegalStateException("a blocking request on the progress thread would wait for itself");
        }
        long id = requests.armBlocking(peer, timeoutNanos, Thread.currentThread(), reply);
        if (id == 0) {
            throw overloaded(peer);
        }
        try {
            transmit(target, FrameDescriptor.KIND_REQUEST, id, message);
        } catch (TransportException | RuntimeException e) {
            requests.abandon(id);
            throw e;
        }
        if (config.requestSpinNanos() > 0) {
            pollForReply(id);
        }
        requests.await(id, 0);
    }

    /**
     * Polls the worker on the requesting thread for up to {@link UcxTransportConfig#requestSpinNanos()}, so that a
     * reply that comes within that time completes here, without waking this thread from the progress thread. Only
     * replies to blocking requests at the head of their peer's queue are completed here (that keeps per-peer order);
     * anything else the poll found is left to the progress thread, which is signalled.
     */
    private void pollForReply(long id) {
        long until = System.nanoTime() + config.requestSpinNanos();
        callersPolling.incrementAndGet();
        try {
            pollUntil(id, until);
        } finally {
            // The progress thread polls again: the busy-poll window restarts from here.
            lastSend = System.nanoTime();
            callersPolling.decrementAndGet();
        }
    }

    private void pollUntil(long id, long until) {
        while (!requests.isDone(id) && System.nanoTime() - until < 0 && !closed) {
            if (pollFromCaller() && requests.isDone(id)) {
                return;
            }
            // Not onSpinWait: with fewer free cores than busy threads the other pollers need this one (measured: a
            // yield per poll is also faster than polling several times between yields).
            Thread.yield();
        }
    }

    /**
     * One {@code ucp_worker_progress} on a thread other than the progress thread, if no thread polls right now:
     * replies to blocking requests that are next in line are completed here, the rest is left to the progress
     * thread, which is woken. Returns false if another thread held the poller.
     */
    private boolean pollFromCaller() {
        if (!poller.compareAndSet(0, 1)) {
            return false;
        }
        boolean leftOver = false;
        try {
            if (!closed) {
                ucp.workerProgress(worker);
                if (readyCount > 0) {
                    completeRepliesInPlace();
                }
                leftOver = readyCount > 0;
            }
        } finally {
            poller.set(0);
        }
        if (leftOver || finishedReadCount > 0 || !events.isEmpty()) {
            // Dekker pair with the progress thread: it sets 'sleeping', then reads 'workLeft'.
            workLeft = true;
            if (sleeping) {
                signalProgress();
            }
        }
        return true;
    }

    /**
     * Delivers the replies to blocking requests at the head of each ready peer's queue; stops at anything a handler
     * must see (messages, requests, callback replies, rendezvous), and keeps those peers queued for the progress
     * thread. Requesting thread holding {@link #poller}.
     */
    private void completeRepliesInPlace() {
        int kept = 0;
        for (int i = 0; i < readyCount; i++) {
            Peer peer = peers[readyPeers[i]];
            // Not while the progress thread delivers an earlier message of this peer: order.
            while (!peer.delivering && !peer.receiving && !peer.rendezvousArrived && peer.parked > 0
                    && peer.state != PEER_DOWN && !peer.condemned) {
                Parked next = peer.parkedAt(peer.nextSequence);
                if (next == null || next.rendezvous) {
                    break;
                }
                long header = next.header.address();
                if (FrameDescriptor.kind(ALL, header) != FrameDescriptor.KIND_REPLY
                        || !requests.isPendingBlocking(FrameDescriptor.correlationId(ALL, header))) {
                    break;
                }
                peer.unpark(next);
                peer.nextSequence++;
                long data = next.held ? next.data : next.copyAddress();
                deliver(polledInbound, peer.rank, header, data, (int) next.length);
                if (next.held) {
                    ucp.amDataRelease(worker, next.data);
                }
            }
            if (peer.parked > 0 || peer.rendezvousArrived || peer.state == PEER_DOWN || peer.condemned) {
                readyPeers[kept++] = peer.rank;
            } else {
                peer.ready = false;
            }
        }
        readyCount = kept;
    }

    @Override
    public long requestAsync(int peer, OutboundMessage message, ReplyHandler replyHandler, long token,
                             long timeoutNanos) throws TransportException {
        Peer target = peer(peer);
        long id = requests.armAsync(peer, timeoutNanos, replyHandler, token);
        if (id == 0) {
            throw overloaded(peer);
        }
        try {
            transmit(target, FrameDescriptor.KIND_REQUEST, id, message);
        } catch (TransportException | RuntimeException e) {
            if (requests.abandon(id)) {
                throw e;
            }
            // A completer (peer death, close) already owns the request and reports the failure.
        }
        return id;
    }

    @Override
    public void reply(int peer, long correlationId, OutboundMessage message) throws TransportException {
        if (correlationId == 0) {
            throw new IllegalArgumentException("correlation id 0 belongs to no request");
        }
        transmit(peer(peer), FrameDescriptor.KIND_REPLY, correlationId, message);
    }

    // ---------------------------------------------------------------- one-sided reads

    @Override
    public void exposeMemory(MemorySegment region) throws TransportException {
        if (region == null || !region.isNative() || region.byteSize() == 0) {
            throw new IllegalArgumentException("only a non-empty native memory region can be exposed");
        }
        synchronized (lifecycle) {
            if (closed) {
                throw closedException();
            }
            if (started) {
                throw new IllegalStateException("rank " + rank + " exposes memory after start: peers learn it while"
                        + " connecting");
            }
            if (exposedMemh != 0) {
                throw new IllegalStateException("rank " + rank + " already exposed a region");
            }
            if (!remoteReads) {
                throw new TransportException(Reason.UNSUPPORTED, -1, remoteReadsOff());
            }
            long memh;
            try (Arena scratch = Arena.ofConfined()) {
                MemorySegment params = scratch.allocate(UcpMemMapParams.LAYOUT);
                UcpMemMapParams.fieldMask(params, UcpConstants.UCP_MEM_MAP_PARAM_FIELD_ADDRESS
                        | UcpConstants.UCP_MEM_MAP_PARAM_FIELD_LENGTH | UcpConstants.UCP_MEM_MAP_PARAM_FIELD_FLAGS);
                UcpMemMapParams.address(params, region.address());
                UcpMemMapParams.length(params, region.byteSize());
                // Non-blocking: on InfiniBand an on-demand-paging registration (see keepRegistrationsFromPinning).
                UcpMemMapParams.flags(params, UcpConstants.UCP_MEM_MAP_NONBLOCK);
                memh = ucp.memMap(context, params);
            } catch (UcxException e) {
                throw new TransportException(Reason.UNSUPPORTED, -1, "rank " + rank + " cannot register "
                        + region.byteSize() + " bytes for remote reads (" + e.getMessage() + "); on InfiniBand this"
                        + " needs an HCA with on-demand paging, see docs/DEPLOYMENT.md", e);
            }
            try {
                exposedKey = ucp.rkeyPack(context, memh);
            } catch (UcxException e) {
                ucp.memUnmap(context, memh);
                throw new TransportException(Reason.UNSUPPORTED, -1, "rank " + rank + " cannot pack the remote key"
                        + " of its region: " + e.getMessage(), e);
            }
            if (exposedKey.length == 0 || exposedKey.length > MAX_WORKER_ADDRESS) {
                int keyLength = exposedKey.length;
                ucp.memUnmap(context, memh);
                exposedKey = new byte[0];
                throw new TransportException(Reason.UNSUPPORTED, -1, "rank " + rank + "'s remote key has "
                        + keyLength + " bytes, the bootstrap carries 1.." + MAX_WORKER_ADDRESS);
            }
            exposedMemh = memh;
            exposedBase = region.address();
            exposedLength = region.byteSize();
        }
    }

    private String remoteReadsOff() {
        return "rank " + rank + " does no one-sided reads: remote reads are " + config.remoteReads()
                + (config.remoteReads() == UcxTransportConfig.RemoteReads.AUTO
                ? " and UCX sees no RDMA transport here" : "");
    }

    @Override
    public boolean canReadRemote(int peer) {
        if (!remoteReads || peer < 0 || peer >= size || peer == rank) {
            return false;
        }
        Peer target = peers[peer];
        return target.state == PEER_UP && target.rkey != 0;
    }

    @Override
    public void readRemote(int peer, long offset, MemorySegment dst, RemoteReadHandler readHandler, long token)
            throws TransportException {
        Peer target = peer(peer);
        if (readHandler == null || dst == null || !dst.isNative()) {
            throw new IllegalArgumentException("a remote read needs a handler and native destination memory");
        }
        if (!remoteReads) {
            throw new TransportException(Reason.UNSUPPORTED, peer, remoteReadsOff());
        }
        if (closed) {
            throw closedException();
        }
        if (target.state != PEER_UP) {
            throw notUp(target);
        }
        long length = dst.byteSize();
        long exposed = target.remoteLength;
        if (exposed == 0) {
            throw new TransportException(Reason.UNSUPPORTED, peer, "rank " + peer + " exposed no memory");
        }
        if (offset < 0 || length > exposed || offset > exposed - length) {
            throw new TransportException(Reason.UNSUPPORTED, peer, "bytes " + offset + ".." + (offset + length)
                    + " are outside the " + exposed + " bytes rank " + peer + " exposed");
        }
        int index = acquireRead(peer);
        ReadSlot slot = readSlots[index];
        slot.peer = peer;
        slot.handler = readHandler;
        slot.token = token;
        boolean onProgressThread = Thread.currentThread() == progressThread;
        // As for sends: the 'senders' count keeps the endpoint and the remote key alive during the UCX call.
        target.senders.incrementAndGet();
        try {
            int state = target.state;
            long ep = target.ep;
            long rkey = target.rkey;
            if (closed || ep == 0 || rkey == 0 || state != PEER_UP) {
                releaseRead(index);
                throw notUp(target);
            }
            slot.state = READ_INFLIGHT;
            readsInUcx.incrementAndGet();
            long status = ucp.getNbx(ep, dst.address(), length, target.remoteBase + offset, rkey, slot.param);
            if (Ucp.isRequest(status)) {
                if (!onProgressThread) {
                    // The completion needs progress: keep the progress thread polling, wake it if it sleeps.
                    lastSend = System.nanoTime();
                    if (sleeping) {
                        ucp.workerSignal(worker);
                    }
                }
                return;
            }
            readsInUcx.decrementAndGet();
            if (status == 0) {
                // Done at once (shared memory, loopback): the handler still runs on the progress thread.
                finishRead(index, UcsConstants.UCS_OK);
                if (!onProgressThread) {
                    signalProgress();
                }
                return;
            }
            if (slot.compareAndSetState(READ_INFLIGHT, READ_STARTING)) {
                releaseRead(index);
            }
            int error = Ucp.status(status);
            throw new TransportException(error == UcsConstants.UCS_ERR_UNSUPPORTED
                    || error == UcsConstants.UCS_ERR_NOT_IMPLEMENTED ? Reason.UNSUPPORTED : Reason.PEER_DIED, peer,
                    "reading from rank " + peer + " failed: " + ucp.statusString(error));
        } finally {
            target.senders.decrementAndGet();
        }
    }

    private int acquireRead(int peer) throws TransportException {
        synchronized (readLock) {
            if (freeReadCount == 0) {
                throw new TransportException(Reason.OVERLOADED, peer, "all " + readSlots.length
                        + " remote read slots of rank " + rank + " are in use");
            }
            int index = freeReads[--freeReadCount];
            readSlots[index].state = READ_STARTING;
            return index;
        }
    }

    private void releaseRead(int index) {
        ReadSlot slot = readSlots[index];
        slot.handler = null;
        synchronized (readLock) {
            slot.state = READ_FREE;
            freeReads[freeReadCount++] = index;
        }
    }

    /** Queues a read UCX finished for delivery by the progress thread. Any thread; never blocks on UCX. */
    private void finishRead(int index, int status) {
        ReadSlot slot = readSlots[index];
        slot.status = status;
        if (slot.compareAndSetState(READ_INFLIGHT, READ_COMPLETED)) {
            synchronized (readLock) {
                finishedReads[finishedReadCount++] = index;
            }
        } else if (slot.state == READ_ABANDONED) {
            // The transport already failed it (peer down, close): UCX is done with the memory now.
            releaseRead(index);
        }
    }

    /** {@code ucp_send_nbx_callback_t} of {@code ucp_get_nbx}: park the outcome, deliver after progress. */
    private void onReadComplete(long request, byte status, long userData) {
        ucp.requestFree(request);
        readsInUcx.decrementAndGet();
        finishRead((int) userData, status);
    }

    /** Whether UCX holds a read from {@code peer}. */
    private boolean readsHeldByUcx(int peer) {
        for (ReadSlot slot : readSlots) {
            int state = slot.state;
            if ((state == READ_INFLIGHT || state == READ_ABANDONED) && slot.peer == peer) {
                return true;
            }
        }
        return false;
    }

    /** Calls the handlers of finished reads, outside any UCX callback. Progress thread (or closer). */
    private void deliverReads() {
        int count;
        synchronized (readLock) {
            count = finishedReadCount;
            System.arraycopy(finishedReads, 0, deliveringReads, 0, count);
            finishedReadCount = 0;
        }
        for (int i = 0; i < count; i++) {
            int index = deliveringReads[i];
            ReadSlot slot = readSlots[index];
            int peer = slot.peer;
            RemoteReadHandler readHandler = slot.handler;
            long token = slot.token;
            TransportException failure = slot.status == UcsConstants.UCS_OK ? null : readFailure(peer, slot.status);
            releaseRead(index);
            callReadHandler(readHandler, peer, token, failure);
        }
    }

    private TransportException readFailure(int peer, int status) {
        if (closed) {
            return closedException();
        }
        Peer target = peers[peer];
        TransportException cause = target.downCause;
        if (cause != null) {
            return new TransportException(Reason.PEER_DIED, peer, "rank " + peer + " went down during a remote read: "
                    + cause.getMessage(), cause);
        }
        return new TransportException(Reason.PEER_DIED, peer, "reading from rank " + peer + " failed: "
                + ucp.statusString(status));
    }

    private void callReadHandler(RemoteReadHandler readHandler, int peer, long token, TransportException failure) {
        try {
            readHandler.onRemoteRead(peer, token, failure);
        } catch (RuntimeException e) {
            LOG.error("rank {}: remote read handler failed on a read from rank {}: {}", rank, peer, e.toString());
        }
    }

    /**
     * Fails the reads UCX still holds for {@code peer} (every peer if -1) after their endpoint closed: UCX cancels
     * what it tracks, this catches the rest. Their slots come back when UCX's callback does, or never (the worker
     * is being destroyed). Progress thread (or closer), outside UCX callbacks.
     */
    private void abandonReads(int peer, TransportException cause) {
        for (int i = 0; i < readSlots.length; i++) {
            ReadSlot slot = readSlots[i];
            if (slot.state == READ_INFLIGHT && (peer < 0 || slot.peer == peer)
                    && slot.compareAndSetState(READ_INFLIGHT, READ_ABANDONED)) {
                TransportException failure = cause.reason() == Reason.CLOSED ? closedException()
                        : new TransportException(Reason.PEER_DIED, slot.peer, "rank " + slot.peer
                        + " went down during a remote read: " + cause.getMessage(), cause);
                callReadHandler(slot.handler, slot.peer, slot.token, failure);
            }
        }
    }

    private TransportException overloaded(int peer) {
        return new TransportException(Reason.OVERLOADED, peer,
                "all " + requests.capacity() + " request slots of rank " + rank + " are in use");
    }

    private TransportException closedException() {
        return new TransportException(Reason.CLOSED, -1, "transport of rank " + rank + " is closed");
    }

    private Peer peer(int peer) {
        if (peer < 0 || peer >= size || peer == rank) {
            throw new IllegalArgumentException("rank " + peer + " is not a peer of rank " + rank
                    + " in a cluster of " + size);
        }
        return peers[peer];
    }

    private TransportException notUp(Peer peer) {
        if (closed) {
            return closedException();
        }
        if (peer.state == PEER_NEW) {
            return new TransportException(Reason.PEER_UNREACHABLE, peer.rank,
                    "rank " + peer.rank + " is not connected to rank " + rank + " yet");
        }
        TransportException cause = peer.downCause;
        return new TransportException(cause.reason() == Reason.CLOSED ? Reason.CLOSED : Reason.PEER_DIED,
                peer.rank, "rank " + peer.rank + " is down: " + cause.getMessage(), cause);
    }

    private void transmit(Peer peer, byte kind, long correlationId, OutboundMessage message)
            throws TransportException {
        int length = message.payloadLength();
        if (length > maxPayload) {
            throw new TransportException(Reason.PAYLOAD_TOO_LARGE, peer.rank,
                    "payload of " + length + " bytes exceeds the maximum of " + maxPayload);
        }
        if (closed) {
            throw closedException();
        }
        boolean onProgressThread = Thread.currentThread() == progressThread;
        MemorySegment source = message.payloadSegment();
        // Zero-copy only where the caller can wait for completion and the memory has an address.
        boolean zeroCopy = length > inlinePayload && !onProgressThread && source.isNative();
        SendSlot slot = acquireSlot(peer, onProgressThread);
        long data;
        if (length == 0) {
            data = 0;
        } else if (length <= inlinePayload) {
            MemorySegment.copy(source, message.payloadOffset(), slot.memory, SLOT_DATA, length);
            data = slot.dataAddress;
        } else if (zeroCopy) {
            data = source.address() + message.payloadOffset();
        } else {
            data = slot.largeCopy(source, message.payloadOffset(), length);
        }
        slot.waiter = zeroCopy ? Thread.currentThread() : null;
        slot.done = false;
        MemorySegment header = slot.memory;
        FrameDescriptor.encode(header, SLOT_HEADER, kind, message.type(), message.flags(), length, correlationId,
                message.arg0(), message.arg1(), message.arg2(), message.arg3());
        header.set(INT, SLOT_HEADER + SENDER_OFFSET, rank);
        header.set(INT, SLOT_HEADER + AM_RESERVED_OFFSET, 0);
        long status;
        // No lock of ours around the UCX call: UCX's callbacks run holding its worker lock and take
        // ours (the slot pool), so a sender holding one of ours while waiting for UCX's could deadlock.
        // The 'senders' count keeps the endpoint alive instead (peerDown closes it once it drops to 0).
        peer.senders.incrementAndGet();
        try {
            // Dekker pair with peerDown(): it writes 'state' then reads 'senders'.
            int state = peer.state;
            long ep = peer.ep;
            // Replies may flow once our endpoint exists, a moment before the peer counts as up.
            if (closed || ep == 0 || (state != PEER_UP && !(kind == FrameDescriptor.KIND_REPLY
                    && state == PEER_NEW))) {
                releaseSlot(slot);
                throw notUp(peer);
            }
            // Concurrent senders may hand UCX their sequence numbers out of order: the receiver reorders.
            header.set(LONG, SLOT_HEADER + SEQUENCE_OFFSET, peer.sendSequence.getAndIncrement());
            header.set(LONG, SLOT_HEADER + TOKEN_OFFSET, peer.outboundToken);
            status = ucp.amSendNbx(ep, AM_ID, slot.headerAddress, AM_HEADER_LENGTH, data, length, slot.param);
            if (Ucp.isRequest(status)) {
                inflightSends.incrementAndGet();
                if (sleeping) {
                    // Completion needs the progress thread awake (e.g. the rest of a rendezvous).
                    ucp.workerSignal(worker);
                }
            } else if (busyPollNanos > 0 && !onProgressThread) {
                // Whatever answers this (a page for a fault, a reply) is then met by a polling thread:
                // a send restarts the busy-poll window, and wakes a sleeping progress thread, so its
                // wake-up overlaps the message's flight instead of following the answer's arrival.
                lastSend = System.nanoTime();
                if (sleeping) {
                    ucp.workerSignal(worker);
                }
            }
        } finally {
            peer.senders.decrementAndGet();
        }
        if (status == 0) {
            releaseSlot(slot);
            return;
        }
        if (Ucp.isError(status)) {
            releaseSlot(slot);
            // The sequence number is lost, so the peer would wait for it forever: it is down for us.
            events.add(new PeerEvent(peer.rank, new TransportException(Reason.PEER_DIED, peer.rank,
                    "sending to rank " + peer.rank + " failed: " + ucp.statusString(Ucp.status(status)))));
            if (Thread.currentThread() != progressThread) {
                signalProgress();
            }
            throw sendFailed(peer, Ucp.status(status));
        }
        if (zeroCopy) {
            awaitSend(peer, slot, status);
        }
    }

    private TransportException sendFailed(Peer peer, int status) {
        if (closed) {
            return closedException();
        }
        return new TransportException(Reason.PEER_DIED, peer.rank, "sending to rank " + peer.rank + " failed: "
                + ucp.statusString(status));
    }

    /** Waits until UCX is done with the caller's memory; the progress thread completes the slot. */
    private void awaitSend(Peer peer, SendSlot slot, long request) throws TransportException {
        long deadline = System.nanoTime() + SEND_TIMEOUT_NANOS;
        boolean cancelled = false;
        while (!slot.done) {
            long remaining = deadline - System.nanoTime();
            if (remaining <= 0 && !cancelled) {
                cancelled = true;
                peer.senders.incrementAndGet();
                try {
                    if (!slot.done && peer.state != PEER_DOWN && !closed) {
                        ucp.requestCancel(worker, request);
                    }
                } finally {
                    peer.senders.decrementAndGet();
                }
                deadline = System.nanoTime() + SEND_TIMEOUT_NANOS;
                continue;
            }
            // Completion needs progress: poll here too, in case the progress thread runs a handler that waits for a
            // lock this thread holds (a large send under the DSM's engine lock).
            if (!pollFromCaller() || !slot.done) {
                LockSupport.parkNanos(slot, Math.min(Math.max(remaining, 1), 1_000_000));
            }
        }
        int status = slot.status;
        releaseSlot(slot);
        if (status != UcsConstants.UCS_OK) {
            if (cancelled) {
                throw new TransportException(Reason.TIMEOUT, peer.rank, "sending " + " to rank " + peer.rank
                        + " did not complete within " + SEND_TIMEOUT_NANOS / 1_000_000 + " ms");
            }
            throw sendFailed(peer, status);
        }
    }

    private SendSlot acquireSlot(Peer peer, boolean onProgressThread) throws TransportException {
        for (;;) {
            synchronized (pool) {
                if (freeCount == 0 && onProgressThread) {
                    // The progress thread frees slots, so it must never wait for one: grow the pool.
                    growSlots();
                }
                if (freeCount > 0) {
                    return slots[freeSlots[--freeCount]];
                }
                if (closed) {
                    throw closedException();
                }
            }
            // Every buffer is in a send UCX has not finished. Poll the worker here (never holding a lock of ours):
            // the sends then finish even while the progress thread runs a handler that waits for a lock this
            // thread holds, as the DSM's fault thread does while it sends.
            pollFromCaller();
            synchronized (pool) {
                if (freeCount > 0 || closed) {
                    continue;
                }
                slotWaiters++;
                try {
                    pool.wait(1);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new TransportException(Reason.INTERRUPTED, peer.rank,
                            "interrupted while waiting for a send buffer");
                } finally {
                    slotWaiters--;
                }
            }
        }
    }

    private void growSlots() {
        SendSlot[] old = slots;
        int grown = old.length + Math.max(16, old.length / 4);
        SendSlot[] bigger = java.util.Arrays.copyOf(old, grown);
        long stride = SLOT_DATA + ((inlinePayload + 63L) & -64L);
        MemorySegment memory = arena.allocate(stride * (grown - old.length), 64);
        int[] free = java.util.Arrays.copyOf(freeSlots, grown);
        for (int i = old.length; i < grown; i++) {
            bigger[i] = new SendSlot(i, memory.asSlice((i - old.length) * stride, stride));
            free[freeCount++] = i;
        }
        freeSlots = free;
        slots = bigger;
        LOG.info("rank {}: grew the UCX send buffers to {}", rank, grown);
    }

    private void releaseSlot(SendSlot slot) {
        slot.waiter = null;
        synchronized (pool) {
            freeSlots[freeCount++] = slot.index;
            if (slotWaiters > 0) {
                pool.notifyAll();
            }
        }
    }

    /** UCX finished a send that did not complete at once. Progress thread. */
    private void onSendComplete(long request, byte status, long userData) {
        ucp.requestFree(request);
        inflightSends.decrementAndGet();
        SendSlot slot = slots[(int) userData];
        slot.status = status;
        Thread waiter = slot.waiter;
        if (waiter != null) {
            // Release: status is visible to the waiter that sees done.
            slot.done = true;
            LockSupport.unpark(waiter);
        } else {
            releaseSlot(slot);
        }
    }

    // ---------------------------------------------------------------- receive path (progress thread)

    /** {@code ucp_am_recv_callback_t}: one dvmm frame (or a stranger's message). */
    private byte onActiveMessage(long arg, long header, long headerLength, long data, long length, long param) {
        long attributes = ALL.get(LONG, param + UcpAmRecvParam.RECV_ATTR_OFFSET);
        boolean rendezvous = (attributes & UcpConstants.UCP_AM_RECV_ATTR_FLAG_RNDV) != 0;
        if (closed) {
            return (byte) UcsConstants.UCS_OK;
        }
        if (headerLength != AM_HEADER_LENGTH) {
            return reject("an active message with a " + headerLength + "-byte header (expected "
                    + AM_HEADER_LENGTH + ")");
        }
        int sender = ALL.get(INT, header + SENDER_OFFSET);
        if (sender < 0 || sender >= size || sender == rank || peers[sender] == null) {
            return reject("an active message from unknown rank " + sender);
        }
        Peer peer = peers[sender];
        if (ALL.get(LONG, header + TOKEN_OFFSET) != peer.inboundToken) {
            return reject("an active message claiming rank " + sender + " without its session token");
        }
        if (peer.state == PEER_DOWN || peer.condemned) {
            return (byte) UcsConstants.UCS_OK;
        }
        int check = FrameDescriptor.check(ALL, header, maxPayload);
        String problem = null;
        if (check != FrameDescriptor.OK) {
            problem = FrameDescriptor.describe(check, ALL, header, maxPayload);
        } else if (FrameDescriptor.kind(ALL, header) == FrameDescriptor.KIND_HANDSHAKE) {
            problem = "a handshake frame outside the bootstrap";
        } else if (FrameDescriptor.payloadLength(ALL, header) != length) {
            problem = "payload length field " + FrameDescriptor.payloadLength(ALL, header) + " but " + length
                    + " bytes of data";
        } else if (ALL.get(INT, header + AM_RESERVED_OFFSET) != 0) {
            problem = "non-zero reserved AM header bits";
        }
        long sequence = ALL.get(LONG, header + SEQUENCE_OFFSET);
        if (problem == null && sequence < peer.nextSequence) {
            problem = "sequence number " + sequence + " repeats (next expected " + peer.nextSequence + ")";
        }
        if (problem != null) {
            rejectedMessages.incrementAndGet();
            malformed(peer, problem);
            return (byte) UcsConstants.UCS_OK;
        }
        // Never delivered here: this runs inside ucp_worker_progress, which holds UCX's worker lock, and
        // a handler waiting for a lock of its own whose holder is sending (waiting for the worker lock)
        // would deadlock. Parked instead (data kept by UCX where it allows, else copied) and delivered
        // in sequence order by deliverReady() once progress returns.
        boolean held = rendezvous || (attributes & UcpConstants.UCP_AM_RECV_ATTR_FLAG_DATA) != 0;
        if (!peer.park(sequence, header, data, length, held, rendezvous)) {
            rejectedMessages.incrementAndGet();
            malformed(peer, "sequence number " + sequence + " arrived twice or is too far ahead of "
                    + peer.nextSequence);
            return (byte) UcsConstants.UCS_OK;
        }
        markReady(peer);
        return held ? (byte) UcsConstants.UCS_INPROGRESS : (byte) UcsConstants.UCS_OK;
    }

    /** Queues a peer for deliverReady(). Progress thread. */
    private void markReady(Peer peer) {
        if (!peer.ready) {
            peer.ready = true;
            readyPeers[readyCount++] = peer.rank;
        }
    }

    /** Delivers what UCX callbacks parked, outside any UCX callback and without the poller. Progress thread. */
    private void deliverReady() {
        for (;;) {
            Peer peer;
            takePoller();
            try {
                if (readyCount == 0) {
                    return;
                }
                peer = peers[readyPeers[--readyCount]];
                peer.ready = false;
            } finally {
                poller.set(0);
            }
            drain(peer);
        }
    }

    private byte reject(String what) {
        rejectedMessages.incrementAndGet();
        LOG.warn("rank {}: dropped {}", rank, what);
        // For a rendezvous message UCS_OK drops the descriptor and completes the sender's send.
        return (byte) UcsConstants.UCS_OK;
    }

    private void malformed(Peer peer, String why) {
        LOG.warn("rank {}: rank {} sent a bad message: {}", rank, peer.rank, why);
        condemn(peer, new TransportException(Reason.MALFORMED_FRAME, peer.rank,
                "rank " + peer.rank + " sent a bad message: " + why));
    }

    /**
     * Takes a peer down from inside a UCX callback: its messages are ignored from now on, and
     * peerDown (which runs listener and reply callbacks) follows at the top of the progress loop,
     * outside UCX's worker lock. Progress thread.
     */
    private void condemn(Peer peer, TransportException cause) {
        if (!peer.condemned) {
            peer.condemned = true;
            events.add(new PeerEvent(peer.rank, cause));
        }
    }

    private void deliver(InboundMessage inbound, int sender, long header, long data, int length) {
        inbound.wrap(sender, ALL, header, ALL, data, length);
        if (FrameDescriptor.kind(ALL, header) == FrameDescriptor.KIND_REPLY) {
            try {
                if (!requests.complete(inbound)) {
                    droppedReplies.incrementAndGet();
                }
            } catch (RuntimeException e) {
                LOG.error("rank {}: reply handler failed: {}", rank, e.toString());
            }
            return;
        }
        try {
            handler.onMessage(inbound);
        } catch (RuntimeException e) {
            LOG.error("rank {}: message handler failed on type {} from rank {}: {}", rank, inbound.type(), sender,
                    e.toString());
        }
    }

    /** Fetches a rendezvous message's data into the peer's buffer; delivery waits for it. */
    private void startRendezvous(Peer peer, long header, long descriptor, long length) {
        MemorySegment.copy(ALL, header, peer.rendezvousHeader, 0, AM_HEADER_LENGTH);
        long buffer = peer.rendezvousBuffer(length, maxPayload);
        peer.rendezvousLength = (int) length;
        peer.receiving = true;
        MemorySegment param = peer.receiveParam;
        UcpRequestParam.opAttrMask(param, UcpConstants.UCP_OP_ATTR_FIELD_CALLBACK
                | UcpConstants.UCP_OP_ATTR_FIELD_USER_DATA);
        UcpRequestParam.cbSend(param, receiveCompletionStub.address());
        UcpRequestParam.userData(param, peer.rank);
        long status = ucp.amRecvDataNbx(worker, descriptor, buffer, length, param);
        if (status == 0) {
            finishRendezvous(peer);
        } else if (Ucp.isError(status)) {
            peer.receiving = false;
            // peerDown runs handlers, not under the poller: it follows from the event queue.
            condemn(peer, new TransportException(Reason.PEER_DIED, peer.rank, "receiving a large message from rank "
                    + peer.rank + " failed: " + ucp.statusString(Ucp.status(status))));
        }
    }

    /** Delivers the fetched rendezvous message. Progress thread holding the poller (released meanwhile). */
    private void finishRendezvous(Peer peer) {
        peer.receiving = false;
        peer.nextSequence++;
        deliverUnpolled(peer, peer.rendezvousHeader.address(), peer.rendezvousData.address(), peer.rendezvousLength);
    }

    /**
     * Runs the handler of one message of {@code peer} with the poller released, so that other threads can poll the
     * worker while it runs (it may wait for a lock whose holder waits for UCX); meanwhile they leave this peer's
     * queue alone. Progress thread holding the poller; holds it again on return.
     */
    private void deliverUnpolled(Peer peer, long header, long data, int length) {
        peer.delivering = true;
        poller.set(0);
        try {
            deliver(inbound, peer.rank, header, data, length);
        } finally {
            takePoller();
            peer.delivering = false;
        }
    }

    /** {@code ucp_am_recv_data_nbx_callback_t}: a rendezvous fetch ended; delivered by deliverReady(). */
    private void onReceiveComplete(long request, byte status, long length, long userData) {
        ucp.requestFree(request);
        Peer peer = peers[(int) userData];
        if (peer.state == PEER_DOWN || closed) {
            peer.receiving = false;
            return;
        }
        if (status != UcsConstants.UCS_OK) {
            peer.receiving = false;
            condemn(peer, new TransportException(Reason.PEER_DIED, peer.rank, "receiving a large message from rank "
                    + peer.rank + " failed: " + ucp.statusString(status)));
            return;
        }
        peer.rendezvousArrived = true;
        markReady(peer);
    }

    /** Delivers a fetched rendezvous message and then the parked messages that are now in turn. Progress thread. */
    private void drain(Peer peer) {
        takePoller();
        try {
            if (peer.rendezvousArrived) {
                peer.rendezvousArrived = false;
                if (peer.state != PEER_DOWN && !peer.condemned) {
                    finishRendezvous(peer);
                }
            }
            while (!peer.receiving && peer.parked > 0 && peer.state != PEER_DOWN && !peer.condemned && !closed) {
                Parked next = peer.parkedAt(peer.nextSequence);
                if (next == null) {
                    return;
                }
                peer.unpark(next);
                if (next.rendezvous) {
                    startRendezvous(peer, next.header.address(), next.data, next.length);
                } else {
                    peer.nextSequence++;
                    long data = next.held ? next.data : next.copyAddress();
                    // A message parked meanwhile must not take this slot while its handler reads it.
                    next.delivering = true;
                    try {
                        deliverUnpolled(peer, next.header.address(), data, (int) next.length);
                    } finally {
                        next.delivering = false;
                    }
                    if (next.held) {
                        ucp.amDataRelease(worker, next.data);
                    }
                }
            }
        } finally {
            poller.set(0);
        }
    }

    /** {@code ucp_err_handler_cb_t}: UCX gave up on the endpoint to a peer. */
    private void onEndpointError(long arg, long ep, byte status) {
        Peer peer = peers[(int) arg];
        condemn(peer, new TransportException(Reason.PEER_DIED, peer.rank,
                "UCX reports the endpoint to rank " + peer.rank + " failed: " + ucp.statusString(status)));
    }

    // ---------------------------------------------------------------- progress thread

    /**
     * Progress, then deliver what the callbacks parked. When there is nothing to do: poll on for
     * {@link UcxTransportConfig#busyPollNanos()} after the last event handled or the last send (and
     * while sends are in flight, up to {@link #INFLIGHT_POLL_NANOS}), yielding the core between polls,
     * so a thread that needs this core (the one waiting for this very message, on a machine with
     * fewer free cores than busy threads) runs at once; after that arm the worker and sleep in poll()
     * on its event fd, which costs no CPU but a wake-up per message (on this 2-core build host: p50
     * about the same, p99 1-2 ms instead of 30-120 us).
     */
    private void runProgressLoop() {
        MemorySegment fd = pollFd;
        long busyPoll = busyPollNanos;
        long lastWork = System.nanoTime();
        long nextTick = lastWork;
        try {
            while (!closed) {
                if (callersPolling.get() > 0 && !workLeft && readyCount == 0 && finishedReadCount == 0
                        && events.isEmpty() && !deadEndpoints) {
                    // A requesting thread polls the worker for its reply: leave it the worker (and the core, if it
                    // shares this one), but stay runnable, so that polling resumes the moment it stops. Measured:
                    // parking here instead (timed, 50 us to 1 ms) gave p99 round trips of milliseconds, and an
                    // unpark by the last poller doubled the p50.
                    long now = System.nanoTime();
                    if (now - nextTick >= 0) {
                        requests.expire(now);
                        nextTick = now + TICK_NANOS;
                    }
                    Thread.yield();
                    lastWork = now;
                    continue;
                }
                workLeft = false;
                if (!events.isEmpty()) {
                    drainEvents();
                }
                if (deadEndpoints) {
                    closeDeadEndpoints();
                }
                int progressed;
                takePoller();
                try {
                    progressed = ucp.workerProgress(worker);
                } finally {
                    poller.set(0);
                }
                // Handlers run without the poller (see there); what other threads' polls parked is delivered too.
                if (readyCount > 0) {
                    deliverReady();
                    progressed++;
                }
                if (finishedReadCount > 0) {
                    deliverReads();
                    progressed++;
                }
                if (progressed > 0) {
                    lastWork = System.nanoTime();
                    continue;
                }
                long now = System.nanoTime();
                if (now - nextTick >= 0) {
                    requests.expire(now);
                    nextTick = now + TICK_NANOS;
                }
                long idle = Math.min(now - lastWork, now - lastSend);
                boolean inflight = inflightSends.get() > 0 || readsInUcx.get() > 0;
                if (idle < busyPoll || (inflight && idle < INFLIGHT_POLL_NANOS)) {
                    // Not onSpinWait: with fewer free cores than busy threads a pure spin keeps the
                    // thread that waits for this very message off the core (measured: p50 2x the
                    // busy-poll time); a yield hands it over and costs well under a microsecond if
                    // nothing else wants the core.
                    Thread.yield();
                    continue;
                }
                sleeping = true;
                // Dekker pair with transmit() and readRemote(): they bump their counts, then read 'sleeping'.
                boolean busy = inflightSends.get() > 0 || readsInUcx.get() > 0;
                if (busy || !events.isEmpty() || closed || finishedReadCount > 0 || workLeft) {
                    sleeping = false;
                    if (busy) {
                        // Sends stuck this long (a peer that does not read) need progress that the
                        // event fd of every transport need not announce: look again every millisecond.
                        ucp.waitForEvents(fd, 1, 1);
                    }
                    continue;
                }
                int armed;
                takePoller();
                try {
                    armed = ucp.workerArm(worker);
                } finally {
                    poller.set(0);
                }
                if (armed == UcsConstants.UCS_OK) {
                    ucp.waitForEvents(fd, 1, requests.outstanding() > 0 ? (int) (TICK_NANOS / 1_000_000) : 100);
                }
                sleeping = false;
                lastWork = System.nanoTime();
            }
        } catch (RuntimeException | Error e) {
            LOG.error("rank {}: UCX progress thread failed, closing: {}", rank, e.toString());
            closed = true;
        } finally {
            sleeping = false;
            releaseAll();
        }
    }

    /**
     * Takes {@link #poller} from requesting threads, which hold it for one progress call at most. Progress thread.
     * Yields while it waits: a holder that shares this CPU (one CPU per node) runs only when this thread lets it, so a
     * pure spin could last a whole time slice. (The millisecond round-trip p99s seen between node processes pinned to
     * a CPU each came from C2 compiling on that CPU, not from this spin: see FaultBenchmark.RTT_WARMUP.)
     */
    private void takePoller() {
        while (!poller.compareAndSet(0, 1)) {
            Thread.yield();
        }
    }

    /** Closes the endpoints of peers that went down, once no sender is inside UCX with them. */
    private void closeDeadEndpoints() {
        deadEndpoints = false;
        for (Peer peer : peers) {
            if (peer != null && peer.state == PEER_DOWN && peer.ep != 0) {
                while (peer.senders.get() != 0) {
                    Thread.onSpinWait();
                }
                long ep = peer.ep;
                peer.ep = 0;
                // UCX cancels the reads it tracks on this endpoint (their callbacks queue them); the rest fail here.
                takePoller();
                try {
                    forceClose(ep, closeParam);
                } finally {
                    poller.set(0);
                }
                deliverReads();
                abandonReads(peer.rank, peer.downCause);
                destroyRemoteKey(peer);
            }
        }
    }

    /** Forgets a peer's remote key; only once no reader can be inside UCX with it (senders at 0, or never up). */
    private void destroyRemoteKey(Peer peer) {
        long rkey = peer.rkey;
        if (rkey != 0) {
            peer.rkey = 0;
            peer.remoteLength = 0;
            ucp.rkeyDestroy(rkey);
        }
    }

    private void signalProgress() {
        synchronized (lifecycle) {
            if (!released) {
                ucp.workerSignal(worker);
            }
        }
    }

    private void drainEvents() {
        PeerEvent event;
        while ((event = events.poll()) != null) {
            Peer peer = peers[event.rank];
            if (event.down == null) {
                if (peer.state == PEER_UP) {
                    synchronized (lifecycle) {
                        lifecycle.notifyAll();
                    }
                    try {
                        peerListener.onPeerUp(peer.rank);
                    } catch (RuntimeException e) {
                        LOG.error("rank {}: peer listener failed on rank {} up: {}", rank, peer.rank, e.toString());
                    }
                }
            } else {
                peerDown(peer, event.down);
            }
        }
    }

    /**
     * Takes a peer down for good (progress thread, without the poller: the listener and reply handlers run here).
     * Its endpoint is closed later, from the top of the progress loop
     * ({@link #closeDeadEndpoints}), once no sender is inside UCX with it.
     */
    private void peerDown(Peer peer, TransportException cause) {
        synchronized (peer) {
            if (peer.state == PEER_DOWN) {
                return;
            }
            peer.downCause = cause;
            peer.state = PEER_DOWN;
        }
        deadEndpoints = true;
        closeQuietly(peer.bootstrap);
        takePoller();
        try {
            peer.releaseParked(ucp, worker);
        } finally {
            poller.set(0);
        }
        LOG.warn("rank {}: rank {} is down: {}", rank, peer.rank, cause.getMessage());
        try {
            requests.failPeer(peer.rank, cause);
        } catch (RuntimeException e) {
            LOG.error("rank {}: reply handler failed on rank {} down: {}", rank, peer.rank, e.toString());
        }
        synchronized (lifecycle) {
            lifecycle.notifyAll();
        }
        try {
            peerListener.onPeerDown(peer.rank, cause);
        } catch (RuntimeException e) {
            LOG.error("rank {}: peer listener failed on rank {} down: {}", rank, peer.rank, e.toString());
        }
    }

    // ---------------------------------------------------------------- bootstrap thread

    private void runBootstrapLoop() {
        try {
            while (!closed) {
                long now = System.nanoTime();
                for (int r = 0; r < rank && !closed; r++) {
                    Peer peer = peers[r];
                    if (peer.state == PEER_NEW && peer.bootstrap == null && now - peer.nextConnectAttempt >= 0) {
                        connect(peer);
                    }
                }
                selector.select(TICK_NANOS / 1_000_000);
                var keys = selector.selectedKeys();
                for (SelectionKey key : keys) {
                    if (!key.isValid()) {
                        continue;
                    }
                    if (key.isAcceptable()) {
                        SocketChannel accepted = server.accept();
                        if (accepted != null) {
                            accept(accepted);
                        }
                    } else if (key.isReadable()) {
                        watch(key, (Peer) key.attachment());
                    }
                }
                keys.clear();
            }
        } catch (IOException | RuntimeException e) {
            if (!closed) {
                LOG.error("rank {}: UCX bootstrap thread failed: {}", rank, e.toString());
            }
        }
    }

    /** A readable liveness link: the peer closed it (down) or sent something it must not. */
    private void watch(SelectionKey key, Peer peer) {
        ByteBuffer scratch = ByteBuffer.allocate(64);
        String why;
        try {
            int read = ((SocketChannel) key.channel()).read(scratch);
            why = read < 0 ? "its bootstrap connection closed" : "it sent " + read + " unexpected bootstrap bytes";
        } catch (IOException e) {
            why = "its bootstrap connection failed: " + e.getMessage();
        }
        key.cancel();
        events.add(new PeerEvent(peer.rank, new TransportException(Reason.PEER_DIED, peer.rank,
                "rank " + peer.rank + " is gone: " + why)));
        signalProgress();
    }

    private void connect(Peer peer) {
        SocketChannel channel = null;
        try {
            channel = SocketChannel.open();
            handshaking = channel;
            if (closed) {
                return;
            }
            channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
            Socket socket = channel.socket();
            int timeout = (int) config.handshakeTimeout().toMillis();
            socket.connect(peer.address, timeout);
            socket.setSoTimeout(timeout);
            DataInputStream in = new DataInputStream(socket.getInputStream());
            OutputStream out = socket.getOutputStream();
            Frame challenge = readFrame(in, STEP_CHALLENGE);
            if (challenge.arg0 != peer.rank || challenge.arg1 != size || challenge.arg3 != BOOTSTRAP_MAGIC
                    || challenge.payload.length != PeerAuthenticator.NONCE_LENGTH) {
                throw new IOException(peer.endpoint + " answers as rank " + challenge.arg0 + " of a "
                        + challenge.arg1 + "-node cluster" + (challenge.arg3 != BOOTSTRAP_MAGIC
                        ? " without this version of the UCX bootstrap" : "") + ", expected rank " + peer.rank + " of " + size);
            }
            byte[] connectorNonce = authenticator.nonce();
            byte[] proof = authenticator.proof(challenge.payload, connectorNonce, rank, peer.rank, size);
            writeFrame(out, STEP_PROOF, rank, size, peer.rank, BOOTSTRAP_MAGIC, connectorNonce, proof);
            Frame welcome = readFrame(in, STEP_WELCOME);
            byte[] expected = authenticator.welcome(challenge.payload, connectorNonce, rank, peer.rank, size);
            if (!PeerAuthenticator.matches(expected, welcome.payload)) {
                throw new IOException("rank " + peer.rank + " did not prove it knows the cluster secret");
            }
            Frame address = readFrame(in, STEP_ADDRESS);
            Frame region = readFrame(in, STEP_REGION);
            createEndpoint(peer, address, region);
            writeFrame(out, STEP_ADDRESS, rank, peer.inboundToken, 0, 0, workerAddress, null);
            writeRegion(out);
            readFrame(in, STEP_READY);
            up(peer, channel);
            channel = null;
        } catch (IOException | UcxException e) {
            peer.lastError = e.getMessage();
            peer.nextConnectAttempt = System.nanoTime() + config.connectRetryInterval().toNanos();
            discardEndpoint(peer);
        } finally {
            handshaking = null;
            closeQuietly(channel);
        }
    }

    private void accept(SocketChannel channel) {
        Peer peer = null;
        handshaking = channel;
        try {
            channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
            Socket socket = channel.socket();
            socket.setSoTimeout((int) config.handshakeTimeout().toMillis());
            DataInputStream in = new DataInputStream(socket.getInputStream());
            OutputStream out = socket.getOutputStream();
            byte[] acceptorNonce = authenticator.nonce();
            writeFrame(out, STEP_CHALLENGE, rank, size, 0, BOOTSTRAP_MAGIC, acceptorNonce, null);
            Frame proof = readFrame(in, STEP_PROOF);
            int peerRank = (int) proof.arg0;
            if (proof.arg1 != size || proof.arg2 != rank || proof.arg3 != BOOTSTRAP_MAGIC
                    || peerRank <= rank || peerRank >= size
                    || proof.payload.length != PeerAuthenticator.NONCE_LENGTH + PeerAuthenticator.MAC_LENGTH) {
                throw new IOException("a connection claims rank " + proof.arg0 + " of a " + proof.arg1
                        + "-node cluster (must be above " + rank + " of " + size + ")");
            }
            byte[] connectorNonce = java.util.Arrays.copyOf(proof.payload, PeerAuthenticator.NONCE_LENGTH);
            byte[] mac = java.util.Arrays.copyOfRange(proof.payload, PeerAuthenticator.NONCE_LENGTH,
                    proof.payload.length);
            byte[] expected = authenticator.proof(acceptorNonce, connectorNonce, peerRank, rank, size);
            if (!PeerAuthenticator.matches(expected, mac)) {
                throw new IOException("a connection claiming rank " + peerRank
                        + " did not prove it knows the cluster secret");
            }
            peer = peers[peerRank];
            if (peer.state != PEER_NEW || peer.bootstrap != null) {
                peer = null;
                throw new IOException("rank " + peerRank + " connected twice");
            }
            byte[] welcome = authenticator.welcome(acceptorNonce, connectorNonce, peerRank, rank, size);
            writeFrame(out, STEP_WELCOME, rank, size, peerRank, 0, welcome, null);
            writeFrame(out, STEP_ADDRESS, rank, peer.inboundToken, 0, 0, workerAddress, null);
            writeRegion(out);
            Frame address = readFrame(in, STEP_ADDRESS);
            Frame region = readFrame(in, STEP_REGION);
            createEndpoint(peer, address, region);
            writeFrame(out, STEP_READY, rank, 0, 0, 0, new byte[0], null);
            up(peer, channel);
            channel = null;
        } catch (IOException | UcxException e) {
            rejectedMessages.incrementAndGet();
            LOG.warn("rank {}: refused a bootstrap connection: {}", rank, e.getMessage());
            if (peer != null) {
                peer.lastError = e.getMessage();
                discardEndpoint(peer);
            }
        } finally {
            handshaking = null;
            closeQuietly(channel);
        }
    }

    /** This node's exposed region (an empty key if none), for the peer's one-sided reads. */
    private void writeRegion(OutputStream out) throws IOException {
        writeFrame(out, STEP_REGION, rank, exposedBase, exposedLength, 0, exposedKey, null);
    }

    /** Creates the endpoint to a peer from its ADDRESS frame, and unpacks its REGION's key on it. Bootstrap thread. */
    private void createEndpoint(Peer peer, Frame address, Frame region) throws IOException {
        if (address.arg0 != peer.rank || address.payload.length == 0) {
            throw new IOException("rank " + peer.rank + " sent a bad worker address frame");
        }
        boolean exposes = region.payload.length > 0;
        if (region.arg0 != peer.rank || region.arg3 != 0 || (exposes
                ? region.arg1 == 0 || region.arg2 <= 0 || region.arg1 + region.arg2 < region.arg1
                : region.arg1 != 0 || region.arg2 != 0)) {
            throw new IOException("rank " + peer.rank + " sent a bad memory region frame (base " + region.arg1
                    + ", length " + region.arg2 + ", key of " + region.payload.length + " bytes)");
        }
        MemorySegment remote = Arena.ofAuto().allocateFrom(ValueLayout.JAVA_BYTE, address.payload);
        MemorySegment params = peer.endpointParams;
        UcpEpParams.fieldMask(params, UcpConstants.UCP_EP_PARAM_FIELD_REMOTE_ADDRESS
                | UcpConstants.UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE | UcpConstants.UCP_EP_PARAM_FIELD_ERR_HANDLER);
        UcpEpParams.address(params, remote.address());
        UcpEpParams.errMode(params, UcpConstants.UCP_ERR_HANDLING_MODE_PEER);
        UcpEpParams.errHandlerCb(params, endpointErrorStub.address());
        UcpEpParams.errHandlerArg(params, peer.rank);
        long ep = ucp.epCreate(worker, params);
        long rkey = 0;
        if (exposes && remoteReads) {
            try {
                rkey = ucp.epRkeyUnpack(ep, region.payload);
            } catch (UcxException e) {
                forceClose(ep, peer.closeParam);
                throw new IOException("cannot unpack rank " + peer.rank + "'s remote key: " + e.getMessage(), e);
            }
        }
        boolean stored = false;
        synchronized (peer) {
            if (!closed && peer.state == PEER_NEW) {
                peer.outboundToken = address.arg1;
                peer.remoteBase = region.arg1;
                peer.remoteLength = rkey == 0 ? 0 : region.arg2;
                peer.rkey = rkey;
                peer.ep = ep;
                stored = true;
            }
        }
        if (!stored) {
            if (rkey != 0) {
                ucp.rkeyDestroy(rkey);
            }
            forceClose(ep, peer.closeParam);
            throw new IOException("transport closed while connecting to rank " + peer.rank);
        }
        // Keeps the address bytes reachable until ucp_ep_create has read them (it copies what it needs).
        java.lang.ref.Reference.reachabilityFence(remote);
    }

    private void discardEndpoint(Peer peer) {
        long ep;
        synchronized (peer) {
            if (peer.state != PEER_NEW) {
                return;
            }
            ep = peer.ep;
            peer.ep = 0;
        }
        if (ep != 0) {
            // Only replies use an endpoint before the peer is up; wait for any to leave UCX.
            while (peer.senders.get() != 0) {
                Thread.onSpinWait();
            }
            destroyRemoteKey(peer);
            forceClose(ep, peer.closeParam);
        }
    }

    /** Closes an endpoint without flushing (the peer is gone or never came up); UCX frees the request. */
    private void forceClose(long ep, MemorySegment param) {
        UcpRequestParam.opAttrMask(param, UcpConstants.UCP_OP_ATTR_FIELD_FLAGS);
        UcpRequestParam.flags(param, UcpConstants.UCP_EP_CLOSE_FLAG_FORCE);
        long status = ucp.epCloseNbx(ep, param);
        if (Ucp.isRequest(status)) {
            ucp.requestFree(status);
        }
    }

    private void up(Peer peer, SocketChannel channel) throws IOException {
        channel.configureBlocking(false);
        synchronized (peer) {
            if (closed || peer.state != PEER_NEW) {
                throw new IOException("transport closed while connecting to rank " + peer.rank);
            }
            peer.bootstrap = channel;
            peer.lastError = null;
            peer.state = PEER_UP;
        }
        channel.register(selector, SelectionKey.OP_READ, peer);
        LOG.info("rank {}: UCX endpoint to rank {} is up (bootstrap {})", rank, peer.rank,
                channel.socket().getRemoteSocketAddress());
        synchronized (lifecycle) {
            lifecycle.notifyAll();
        }
        events.add(new PeerEvent(peer.rank, null));
        signalProgress();
    }

    /** A bootstrap frame as read from the socket. */
    private record Frame(short step, long arg0, long arg1, long arg2, long arg3, byte[] payload) {
    }

    private static Frame readFrame(DataInputStream in, short expectedStep) throws IOException {
        byte[] header = new byte[FrameDescriptor.HEADER_LENGTH];
        in.readFully(header);
        MemorySegment h = MemorySegment.ofArray(header);
        int check = FrameDescriptor.check(h, 0, MAX_WORKER_ADDRESS);
        if (check != FrameDescriptor.OK) {
            throw new IOException("bad bootstrap frame: " + FrameDescriptor.describe(check, h, 0, MAX_WORKER_ADDRESS));
        }
        short step = FrameDescriptor.type(h, 0);
        if (FrameDescriptor.kind(h, 0) != FrameDescriptor.KIND_HANDSHAKE || step != expectedStep) {
            throw new IOException("expected bootstrap step " + expectedStep + ", got kind "
                    + FrameDescriptor.kind(h, 0) + " step " + step);
        }
        byte[] payload = new byte[FrameDescriptor.payloadLength(h, 0)];
        in.readFully(payload);
        return new Frame(step, FrameDescriptor.arg(h, 0, 0), FrameDescriptor.arg(h, 0, 1),
                FrameDescriptor.arg(h, 0, 2), FrameDescriptor.arg(h, 0, 3), payload);
    }

    private static void writeFrame(OutputStream out, short step, long arg0, long arg1, long arg2, long arg3,
                                   byte[] first, byte[] second) throws IOException {
        int length = first.length + (second == null ? 0 : second.length);
        byte[] frame = new byte[FrameDescriptor.HEADER_LENGTH + length];
        MemorySegment f = MemorySegment.ofArray(frame);
        FrameDescriptor.encode(f, 0, FrameDescriptor.KIND_HANDSHAKE, step, (short) 0, length, 0, arg0, arg1, arg2,
                arg3);
        System.arraycopy(first, 0, frame, FrameDescriptor.HEADER_LENGTH, first.length);
        if (second != null) {
            System.arraycopy(second, 0, frame, FrameDescriptor.HEADER_LENGTH + first.length, second.length);
        }
        out.write(frame);
        out.flush();
    }

    // ---------------------------------------------------------------- close

    @Override
    public void close() {
        Thread progress;
        synchronized (lifecycle) {
            if (closed && (progressThread == null || !progressThread.isAlive())) {
                if (progressThread == null) {
                    releaseAll();
                }
                return;
            }
            closed = true;
            progress = progressThread;
            lifecycle.notifyAll();
            if (progress != null && !released) {
                ucp.workerSignal(worker);
            }
        }
        synchronized (pool) {
            pool.notifyAll();
        }
        if (progress == null) {
            releaseAll();
            return;
        }
        selector.wakeup();
        closeQuietly(handshaking);
        if (progress == Thread.currentThread()) {
            // Called from a handler: the loop sees 'closed' when the handler returns and cleans up.
            return;
        }
        joinQuietly(progress);
    }

    private static void joinQuietly(Thread thread) {
        boolean interrupted = false;
        while (thread.isAlive()) {
            try {
                thread.join();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Fails what is outstanding, flushes and closes the endpoints, ends the bootstrap, destroys the
     * worker and the context. Runs once: on the progress thread, or in close() if never started.
     */
    private void releaseAll() {
        synchronized (lifecycle) {
            if (released) {
                return;
            }
            released = true;
            closed = true;
        }
        // Kept for good: no requesting thread polls the worker from here on (it is about to be destroyed).
        takePoller();
        TransportException closedCause = closedException();
        long[] endpoints = new long[size];
        for (Peer peer : peers) {
            if (peer == null) {
                continue;
            }
            synchronized (peer) {
                if (peer.state != PEER_DOWN) {
                    peer.downCause = closedCause;
                    peer.state = PEER_DOWN;
                }
            }
            // Senders that saw the peer up finish their UCX call; later ones see it down.
            while (peer.senders.get() != 0) {
                Thread.onSpinWait();
            }
            endpoints[peer.rank] = peer.ep;
            peer.ep = 0;
        }
        Thread bootstrap = bootstrapThread;
        if (bootstrap != null) {
            selector.wakeup();
            joinQuietly(bootstrap);
        }
        try {
            requests.failAll(closedCause);
        } catch (RuntimeException e) {
            LOG.error("rank {}: reply handler failed on close: {}", rank, e.toString());
        }
        flushAndClose(endpoints);
        for (Peer peer : peers) {
            if (peer != null) {
                closeQuietly(peer.bootstrap);
                peer.releaseParked(ucp, worker);
                destroyRemoteKey(peer);
            }
        }
        closeQuietly(server);
        closeQuietly(selector);
        for (SendSlot slot : slots) {
            Thread waiter = slot.waiter;
            if (waiter != null && !slot.done) {
                slot.status = UcsConstants.UCS_ERR_CANCELED;
                slot.done = true;
                LockSupport.unpark(waiter);
            }
        }
        ucp.workerDestroy(worker);
        // Reads UCX finished while closing are told what happened; the rest fail now, UCX has let go of them.
        deliverReads();
        abandonReads(-1, closedCause);
        if (exposedMemh != 0) {
            ucp.memUnmap(context, exposedMemh);
            exposedMemh = 0;
        }
        ucp.cleanup(context);
        for (Peer peer : peers) {
            if (peer != null) {
                peer.freeBuffers();
            }
        }
        synchronized (pool) {
            // Waiting senders have been woken and see 'closed'; nobody touches slot memory after this.
            for (SendSlot slot : slots) {
                slot.releaseLarge();
            }
        }
        arena.close();
        synchronized (lifecycle) {
            lifecycle.notifyAll();
        }
    }

    /** Closes endpoints in flush mode, so messages sent before close() still arrive; bounded in time. */
    private void flushAndClose(long[] endpoints) {
        long[] pending = new long[endpoints.length];
        int count = 0;
        for (int r = 0; r < endpoints.length; r++) {
            long ep = endpoints[r];
            if (ep == 0) {
                continue;
            }
            if (readsHeldByUcx(r)) {
                // A flush would wait for the reads (forever, from a stuck owner over emulated RMA), and a
                // worker destroyed with them still on the endpoint aborts: cancel them, they fail with CLOSED.
                forceClose(ep, closeParam);
                continue;
            }
            UcpRequestParam.opAttrMask(closeParam, 0);
            long status = ucp.epCloseNbx(ep, closeParam);
            if (Ucp.isRequest(status)) {
                pending[count++] = status;
            }
        }
        long deadline = System.nanoTime() + CLOSE_FLUSH_NANOS;
        for (int i = 0; i < count; i++) {
            while (ucp.requestCheckStatus(pending[i]) == UcsConstants.UCS_INPROGRESS
                    && System.nanoTime() - deadline < 0) {
                ucp.workerProgress(worker);
            }
            ucp.requestFree(pending[i]);
        }
    }

    private static void closeQuietly(AutoCloseable closeable) {
        if (closeable == null) {
            return;
        }
        try {
            closeable.close();
        } catch (Exception e) {
            LOG.debug("close failed: {}", e.toString());
        }
    }

    // ---------------------------------------------------------------- state

    /** A peer event from the bootstrap thread: up ({@code down == null}) or down. */
    private record PeerEvent(int rank, TransportException down) {
    }

    /** One transport-owned send buffer: request param, AM header and inline payload in native memory. */
    private final class SendSlot {
        final int index;
        final MemorySegment memory;
        final MemorySegment param;
        final long headerAddress;
        final long dataAddress;
        volatile boolean done;
        volatile int status;
        volatile Thread waiter;
        private Arena largeArena;
        private MemorySegment large;

        SendSlot(int index, MemorySegment memory) {
            this.index = index;
            this.memory = memory;
            this.param = memory.asSlice(SLOT_PARAM, UcpRequestParam.SIZE);
            this.headerAddress = memory.address() + SLOT_HEADER;
            this.dataAddress = memory.address() + SLOT_DATA;
            UcpRequestParam.opAttrMask(param, UcpConstants.UCP_OP_ATTR_FIELD_CALLBACK
                    | UcpConstants.UCP_OP_ATTR_FIELD_USER_DATA);
            UcpRequestParam.cbSend(param, sendCompletionStub.address());
            UcpRequestParam.userData(param, index);
        }

        /** Copies a payload above the inline size into this slot's own buffer (rare: progress thread, heap memory). */
        long largeCopy(MemorySegment source, long offset, int length) {
            if (large == null || large.byteSize() < length) {
                releaseLarge();
                largeArena = Arena.ofShared();
                large = largeArena.allocate(Math.max(length, maxPayload / 4), 64);
            }
            MemorySegment.copy(source, offset, large, 0, length);
            return large.address();
        }

        void releaseLarge() {
            if (largeArena != null) {
                largeArena.close();
                largeArena = null;
                large = null;
            }
        }
    }

    /** One one-sided read: its UCX request param (user data = slot index) and whom to tell. */
    private static final class ReadSlot {
        private static final java.lang.invoke.VarHandle STATE;

        static {
            try {
                STATE = java.lang.invoke.MethodHandles.lookup().findVarHandle(ReadSlot.class, "state", int.class);
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(e);
            }
        }

        final MemorySegment param;
        /** READ_*; the transitions out of INFLIGHT are compare-and-set, so one completer wins. */
        volatile int state;
        int peer;
        RemoteReadHandler handler;
        long token;
        volatile int status;

        ReadSlot(MemorySegment param) {
            this.param = param;
        }

        boolean compareAndSetState(int expected, int next) {
            return STATE.compareAndSet(this, expected, next);
        }
    }

    /** A message parked until its sequence number is due. Progress thread only. */
    private static final class Parked {
        final MemorySegment header;
        long sequence = -1;
        long data;
        long length;
        boolean held;
        boolean rendezvous;
        /** Its handler runs: the slot is not reused (park grows the ring instead). */
        boolean delivering;
        private MemorySegment copy;

        Parked(Arena arena) {
            header = arena.allocate(AM_HEADER_LENGTH, 8);
        }

        void copyData(long address, long bytes) {
            if (copy == null || copy.byteSize() < bytes) {
                // GC-freed, never closed: closing a shared arena is a handshake with every JVM thread,
                // which must not happen per message (and waits forever for a thread stuck in a fault).
                copy = Arena.ofAuto().allocate(Math.max(bytes, PARKED_COPY_MIN), 8);
            }
            MemorySegment.copy(ALL, address, copy, 0, bytes);
        }

        long copyAddress() {
            return copy == null ? 0 : copy.address();
        }

        void free() {
            copy = null;
        }
    }

    /** Everything about one remote rank. The monitor of a Peer is its send lock. */
    private static final class Peer extends PeerLink {
        /** What this node expects in messages from the peer; the peer learns it in the bootstrap. */
        final long inboundToken;

        // Set in start(); bootstrap thread.
        Endpoint endpoint;
        InetSocketAddress address;
        long nextConnectAttempt;
        volatile SocketChannel bootstrap;
        final MemorySegment endpointParams;
        final MemorySegment closeParam;

        /** Set once by the bootstrap thread, cleared by the progress thread when the peer is down. */
        volatile long ep;
        volatile long outboundToken;
        /** The peer's exposed region: its unpacked remote key (0: none), base address and length. Set with ep. */
        volatile long rkey;
        long remoteBase;
        volatile long remoteLength;
        final AtomicLong sendSequence = new AtomicLong();
        /** Threads inside a UCX call with {@link #ep}; it is closed only at zero. */
        final AtomicInteger senders = new AtomicInteger();

        // Progress thread only: in-order delivery.
        long nextSequence;
        boolean receiving;
        /** The rendezvous fetch finished; its message is delivered by the next drain. */
        boolean rendezvousArrived;
        /** Queued in readyPeers. */
        boolean ready;
        /** Found dead inside a UCX callback; peerDown follows outside it. */
        boolean condemned;
        /** The progress thread runs a handler for one of this peer's messages (with the poller released). */
        boolean delivering;
        int parked;
        Parked[] parking = new Parked[0];
        final Arena arena;
        final MemorySegment rendezvousHeader;
        final MemorySegment receiveParam;
        MemorySegment rendezvousData;
        Arena rendezvousArena;
        int rendezvousLength;

        Peer(int rank, long inboundToken, Arena arena) {
            super(rank);
            this.inboundToken = inboundToken;
            this.arena = arena;
            this.endpointParams = arena.allocate(UcpEpParams.LAYOUT);
            this.closeParam = arena.allocate(UcpRequestParam.LAYOUT);
            this.rendezvousHeader = arena.allocate(AM_HEADER_LENGTH, 8);
            this.receiveParam = arena.allocate(UcpRequestParam.LAYOUT);
        }

        long rendezvousBuffer(long length, int maxPayload) {
            if (rendezvousData == null || rendezvousData.byteSize() < length) {
                if (rendezvousArena != null) {
                    rendezvousArena.close();
                }
                rendezvousArena = Arena.ofShared();
                rendezvousData = rendezvousArena.allocate(Math.max(length, Math.min(maxPayload, 1 << 20)), 4096);
            }
            return rendezvousData.address();
        }

        /** Parks a message; false if it is absurdly far ahead (a broken sender). */
        boolean park(long sequence, long header, long data, long length, boolean held, boolean rendezvous) {
            long distance = sequence - nextSequence;
            if (distance >= 1 << 20) {
                return false;
            }
            if (distance >= parking.length
                    || parking[(int) (sequence & (parking.length - 1))].delivering) {
                int capacity = Math.max(16, parking.length);
                // A ring at least twice as long: the slot being delivered (not carried over) is then never the target.
                while (capacity <= distance || capacity <= parking.length) {
                    capacity *= 2;
                }
                Parked[] grown = new Parked[capacity];
                for (Parked p : parking) {
                    if (p != null && p.sequence >= 0) {
                        grown[(int) (p.sequence & (capacity - 1))] = p;
                    }
                }
                for (int i = 0; i < capacity; i++) {
                    if (grown[i] == null) {
                        grown[i] = new Parked(arena);
                    }
                }
                parking = grown;
            }
            Parked slot = parking[(int) (sequence & (parking.length - 1))];
            if (slot.sequence >= 0) {
                return false;
            }
            slot.sequence = sequence;
            MemorySegment.copy(ALL, header, slot.header, 0, AM_HEADER_LENGTH);
            slot.held = held;
            slot.rendezvous = rendezvous;
            slot.length = length;
            if (held) {
                slot.data = data;
            } else {
                slot.copyData(data, length);
                slot.data = 0;
            }
            parked++;
            return true;
        }

        Parked parkedAt(long sequence) {
            if (parking.length == 0) {
                return null;
            }
            Parked slot = parking[(int) (sequence & (parking.length - 1))];
            return slot.sequence == sequence ? slot : null;
        }

        void unpark(Parked slot) {
            slot.sequence = -1;
            parked--;
        }

        /** Gives back everything parked (the peer is down or the transport closes). */
        void releaseParked(Ucp ucp, long worker) {
            for (Parked slot : parking) {
                if (slot != null) {
                    if (slot.sequence >= 0 && slot.held) {
                        ucp.amDataRelease(worker, slot.data);
                    }
                    slot.sequence = -1;
                    slot.free();
                }
            }
            parked = 0;
        }

        /** Frees the rendezvous buffer; only once UCX can no longer write into it. */
        void freeBuffers() {
            if (rendezvousArena != null) {
                rendezvousArena.close();
                rendezvousArena = null;
                rendezvousData = null;
            }
        }
    }
}
