package dev.dvmm.dsm.transport;

import dev.dvmm.dsm.transport.TransportException.Reason;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * {@link Transport} over TCP with JDK NIO: one selector thread per node, one authenticated
 * connection per peer pair, frames as described in {@link FrameDescriptor}. See {@link Transport}
 * for the design; this class adds the TCP specifics (socket options, buffers, backlog).
 *
 * <p>Memory: each established peer gets one receive buffer big enough for a maximal frame (so a
 * frame is always handed to the handler whole, in place) and, only if its socket ever fills, a
 * send backlog. Unauthenticated connections get 256-byte buffers, so a stranger costs little.
 */
public final class TcpTransport implements Transport {
    private static final Logger LOG = LogManager.getLogger(TcpTransport.class);

    private static final int HEADER = FrameDescriptor.HEADER_LENGTH;
    private static final int HANDSHAKE_MAX_PAYLOAD = PeerAuthenticator.NONCE_LENGTH + PeerAuthenticator.MAC_LENGTH;
    private static final int HANDSHAKE_BUFFER = 256;
    private static final short STEP_CHALLENGE = 1;
    private static final short STEP_PROOF = 2;
    private static final short STEP_WELCOME = 3;
    /** Period of the housekeeping tick: handshake deadlines, connect retries, callback timeouts. */
    private static final long TICK_MILLIS = 10;
    /** Largest view the transport makes over a caller's segment (ByteBuffers are int-indexed). */
    private static final long VIEW_WINDOW = 1L << 30;
    /** Consecutive reads from one connection before the selector serves the others. */
    private static final int MAX_READS_PER_WAKEUP = 8;
    /** How often a sender waiting for backlog space retries draining it itself. */
    private static final long BACKLOG_RETRY_MILLIS = 2;

    private static final int PEER_NEW = PeerLink.NEW;
    private static final int PEER_UP = PeerLink.UP;
    private static final int PEER_DOWN = PeerLink.DOWN;

    private static final int CONNECTING = 0;
    private static final int AWAIT_CHALLENGE = 1;
    private static final int AWAIT_PROOF = 2;
    private static final int AWAIT_WELCOME = 3;
    private static final int ESTABLISHED = 4;
    private static final int CLOSED = 5;

    private final TcpTransportConfig config;
    private final int rank;
    private final int size;
    private final int maxPayload;
    private final int inlinePayload;
    private final ServerSocketChannel server;
    private final Selector selector;
    private final Endpoint localEndpoint;
    private final Peer[] peers;
    private final RequestTable requests;
    private final PeerAuthenticator authenticator;
    private final AtomicLong rejectedConnections = new AtomicLong();
    private final AtomicLong droppedReplies = new AtomicLong();

    // Receive thread only.
    private final InboundMessage inbound = new InboundMessage();
    private final ArrayList<Connection> handshaking = new ArrayList<>();
    private final Consumer<SelectionKey> readyAction = this::onReady;

    /** Guards start/close and is notified whenever a peer comes up or goes down. */
    private final Object lifecycle = new Object();
    private volatile boolean closed;
    private boolean started;
    private boolean released;
    private Thread receiveThread;
    private MessageHandler handler;
    private PeerListener peerListener;
    /** Set by a sender whose write failed; the receive thread then takes that peer down. */
    private volatile boolean sendFailuresPending;
    /** Until when the receive thread polls without sleeping (see {@link #busyPollUntil}), and what else it polls. */
    private volatile long busyPollDeadline = System.nanoTime();
    private volatile PollWork busyPollWork;
    /** True while the receive thread busy-polls (it need not be woken for a new deadline). */
    private volatile boolean busyPolling;

    /** Binds the listening socket; nothing else happens until {@link #start}. */
    public TcpTransport(TcpTransportConfig config) throws TransportException {
        this.config = config;
        this.rank = config.rank();
        this.size = config.clusterSize();
        this.maxPayload = config.maxPayload();
        this.inlinePayload = Math.min(config.inlinePayloadBytes(), config.maxPayload());
        this.authenticator = new PeerAuthenticator(config.clusterSecret());
        this.requests = new RequestTable(config.requestSlots());
        this.peers = new Peer[size];
        for (int r = 0; r < size; r++) {
            peers[r] = r == rank ? null : new Peer(r, inlinePayload);
        }
        ServerSocketChannel boundServer = null;
        Selector openedSelector = null;
        try {
            openedSelector = Selector.open();
            boundServer = ServerSocketChannel.open();
            boundServer.setOption(StandardSocketOptions.SO_REUSEADDR, true);
            // Set before bind so accepted sockets negotiate a window scale for the large buffer.
            boundServer.setOption(StandardSocketOptions.SO_RCVBUF, config.socketBufferBytes());
            boundServer.bind(config.listen().toSocketAddress(), 64);
            boundServer.configureBlocking(false);
            boundServer.register(openedSelector, SelectionKey.OP_ACCEPT, null);
            InetSocketAddress bound = (InetSocketAddress) boundServer.getLocalAddress();
            this.localEndpoint = new Endpoint(config.listen().host(), bound.getPort());
        } catch (IOException | RuntimeException e) {
            closeQuietly(boundServer);
            closeQuietly(openedSelector);
            throw new TransportException(Reason.PEER_UNREACHABLE, -1,
                    "rank " + rank + " cannot listen on " + config.listen() + ": " + e.getMessage(), e);
        }
        this.server = boundServer;
        this.selector = openedSelector;
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

    /** Connections closed for a bad frame, a failed handshake or a handshake timeout, since start. */
    public long rejectedConnections() {
        return rejectedConnections.get();
    }

    /** Replies that matched no outstanding request (late after a timeout, or from the wrong peer). */
    public long droppedReplies() {
        return droppedReplies.get();
    }

    /** Requests armed or waiting right now. */
    public int outstandingRequests() {
        return requests.outstanding();
    }

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
            Thread thread = new Thread(this::runReceiveLoop, "dvmm-transport-r" + rank);
            thread.setDaemon(true);
            receiveThread = thread;
            thread.start();
        }
    }

    @Override
    public void awaitConnected(Duration timeout) throws TransportException {
        synchronized (lifecycle) {
            if (!started) {
                throw new IllegalStateException("transport of rank " + rank + " is not started");
            }
            PeerLink.awaitAll(lifecycle, peers, rank, timeout, "no authenticated connection to",
                    () -> closed ? closedException() : null);
        }
    }

    @Override
    public boolean isPeerUp(int peer) {
        return peer(peer).state == PEER_UP;
    }

    @Override
    public void send(int peer, OutboundMessage message) throws TransportException {
        transmit(peer(peer), FrameDescriptor.KIND_MESSAGE, 0, message);
    }

    @Override
    public void request(int peer, OutboundMessage message, ReplyBuffer reply, long timeoutNanos)
            throws TransportException {
        Peer target = peer(peer);
        if (Thread.currentThread() == receiveThread) {
            throw new IllegalStateException("a blocking request on the receive thread would wait for itself");
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
        requests.await(id, config.requestSpinNanos());
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

    @Override
    public void busyPollUntil(long deadlineNanos, PollWork work) {
        busyPollWork = work;
        busyPollDeadline = deadlineNanos;
        // Dekker pair with busyPoll(): the deadline is written before 'busyPolling' is read.
        if (!busyPolling && Thread.currentThread() != receiveThread && deadlineNanos - System.nanoTime() > 0) {
            selector.wakeup();
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

    // ---------------------------------------------------------------- send path (any thread)

    private void transmit(Peer peer, byte kind, long correlationId, OutboundMessage message)
            throws TransportException {
        int length = message.payloadLength();
        if (length > maxPayload) {
            throw new TransportException(Reason.PAYLOAD_TOO_LARGE, peer.rank,
                    "payload of " + length + " bytes exceeds the maximum of " + maxPayload);
        }
        synchronized (peer) {
            if (peer.state != PEER_UP) {
                throw notUp(peer);
            }
            FrameDescriptor.encode(peer.frameSegment, 0, kind, message.type(), message.flags(), length,
                    correlationId, message.arg0(), message.arg1(), message.arg2(), message.arg3());
            ByteBuffer first;
            ByteBuffer second;
            if (length <= inlinePayload) {
                // Small payloads ride behind the header in one buffer: one write() and no allocation
                // (JDK NIO allocates per segment-backed buffer in a gathering write).
                if (length > 0) {
                    MemorySegment.copy(message.payloadSegment(), message.payloadOffset(), peer.frameSegment,
                            HEADER, length);
                }
                first = peer.frame;
                first.limit(HEADER + length).position(0);
                second = null;
            } else {
                first = peer.header;
                first.clear();
                second = peer.payloadView(message.payloadSegment(), message.payloadOffset(), length);
            }
            if (peer.backlogRead == peer.backlogWrite) {
                writeDirect(peer, first, second);
            } else {
                enqueue(peer, first, second);
            }
        }
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

    /** Writes the frame straight to the socket; what does not fit goes to the backlog. */
    private void writeDirect(Peer peer, ByteBuffer first, ByteBuffer second) throws TransportException {
        SocketChannel channel = peer.channel;
        try {
            if (second == null) {
                while (first.hasRemaining() && channel.write(first) > 0) {
                    // Keep writing while the socket accepts bytes.
                }
            } else {
                ByteBuffer[] gather = peer.gather;
                gather[1] = second;
                while (second.hasRemaining() && channel.write(gather, 0, 2) > 0) {
                    // Keep writing while the socket accepts bytes.
                }
                gather[1] = null;
            }
        } catch (IOException e) {
            peer.gather[1] = null;
            sendFailed(peer, e);
        }
        if (first.hasRemaining() || (second != null && second.hasRemaining())) {
            // The socket is full: keep the rest in order behind what is already queued.
            enqueue(peer, first, second);
        }
    }

    /**
     * Appends the unwritten rest of a frame to the peer's backlog and makes sure the receive thread
     * drains it when the socket has room. The caller holds the peer's lock.
     */
    private void enqueue(Peer peer, ByteBuffer first, ByteBuffer second) throws TransportException {
        reserveBacklog(peer, first.remaining() + (second == null ? 0 : second.remaining()));
        appendToBacklog(peer, first);
        if (second != null) {
            appendToBacklog(peer, second);
        }
        // A drain that emptied the backlog dropped write interest; every append must restore it.
        if ((peer.key.interestOpsOr(SelectionKey.OP_WRITE) & SelectionKey.OP_WRITE) == 0) {
            selector.wakeup();
        }
    }

    private void sendFailed(Peer peer, IOException e) throws TransportException {
        peer.sendFailure = e;
        sendFailuresPending = true;
        selector.wakeup();
        throw new TransportException(Reason.PEER_DIED, peer.rank,
                "sending to rank " + peer.rank + " failed: " + e.getMessage(), e);
    }

    /** Makes room for {@code bytes} more in the peer's backlog; the caller holds the peer's lock. */
    private void reserveBacklog(Peer peer, int bytes) throws TransportException {
        boolean onReceiveThread = Thread.currentThread() == receiveThread;
        long deadline = 0;
        for (;;) {
            if (peer.backlog == null) {
                int capacity = (int) Math.min(config.maxBacklogBytes(),
                        Math.max(1 << 20, 2L * (HEADER + maxPayload)));
                peer.backlog = ByteBuffer.allocateDirect(capacity);
                peer.backlogSegment = MemorySegment.ofBuffer(peer.backlog);
            }
            int used = peer.backlogWrite - peer.backlogRead;
            int capacity = peer.backlog.capacity();
            if (capacity - used >= bytes) {
                if (peer.backlogWrite + bytes > capacity) {
                    MemorySegment.copy(peer.backlogSegment, peer.backlogRead, peer.backlogSegment, 0, used);
                    peer.backlogRead = 0;
                    peer.backlogWrite = used;
                }
                return;
            }
            if (onReceiveThread) {
                // The receive thread must never wait on a peer, or two nodes answering each other could deadlock.
                long grown = Math.min(config.maxBacklogBytes(), Math.max(2L * capacity, (long) used + bytes));
                if (grown < (long) used + bytes) {
                    throw new TransportException(Reason.OVERLOADED, peer.rank, "send backlog to rank " + peer.rank
                            + " would exceed " + config.maxBacklogBytes() + " bytes");
                }
                ByteBuffer bigger = ByteBuffer.allocateDirect((int) grown);
                MemorySegment biggerSegment = MemorySegment.ofBuffer(bigger);
                MemorySegment.copy(peer.backlogSegment, peer.backlogRead, biggerSegment, 0, used);
                peer.backlog = bigger;
                peer.backlogSegment = biggerSegment;
                peer.backlogRead = 0;
                peer.backlogWrite = used;
                return;
            }
            // Drain it ourselves rather than rely on the receive thread, which a slow handler may hold up.
            try {
                drainBacklog(peer);
            } catch (IOException e) {
                sendFailed(peer, e);
            }
            if (peer.backlog.capacity() - (peer.backlogWrite - peer.backlogRead) >= bytes) {
                continue;
            }
            long now = System.nanoTime();
            if (deadline == 0) {
                deadline = now + config.sendTimeout().toNanos();
            } else if (now - deadline >= 0) {
                throw new TransportException(Reason.TIMEOUT, peer.rank, "send backlog to rank " + peer.rank
                        + " did not drain within " + config.sendTimeout().toMillis() + " ms");
            }
            try {
                // Woken by the receive thread's drain; the short cap retries our own drain.
                peer.wait(Math.max(1, Math.min(BACKLOG_RETRY_MILLIS, (deadline - now) / 1_000_000)));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new TransportException(Reason.INTERRUPTED, peer.rank,
                        "interrupted while waiting to send to rank " + peer.rank);
            }
            if (peer.state != PEER_UP) {
                throw notUp(peer);
            }
        }
    }

    private static void appendToBacklog(Peer peer, ByteBuffer source) {
        int count = source.remaining();
        if (count == 0) {
            return;
        }
        peer.backlog.put(peer.backlogWrite, source, source.position(), count);
        source.position(source.limit());
        peer.backlogWrite += count;
    }

    // ---------------------------------------------------------------- receive thread

    private void runReceiveLoop() {
        try {
            long nextTick = System.nanoTime();
            while (!closed) {
                int ready;
                if (busyPoll()) {
                    ready = selector.selectNow(readyAction);
                    PollWork work = busyPollWork;
                    if (ready == 0 && (work == null || work.poll() == 0)) {
                        // Not onSpinWait: with fewer free cores than busy threads, the thread whose message or
                        // fault this one waits for may need this core (measured: p99 round trips of 120-180 us
                        // with a spinning receive thread, 27-30 us yielding).
                        Thread.yield();
                    }
                } else {
                    ready = selector.select(readyAction, TICK_MILLIS);
                }
                if (ready > 0 && config.busyPollNanos() > 0) {
                    // More is likely to follow soon (a reply, the peer's next request): wait for it awake.
                    long until = System.nanoTime() + config.busyPollNanos();
                    if (until - busyPollDeadline > 0) {
                        busyPollDeadline = until;
                    }
                }
                if (sendFailuresPending) {
                    sendFailuresPending = false;
                    takeDownFailedSenders();
                }
                long now = System.nanoTime();
                if (now - nextTick >= 0) {
                    tick(now);
                    nextTick = now + TICK_MILLIS * 1_000_000;
                }
            }
        } catch (IOException | RuntimeException | Error e) {
            LOG.error("rank {}: transport receive thread failed, closing: {}", rank, e.toString());
            closed = true;
        } finally {
            releaseAll();
        }
    }

    /** Whether to poll without sleeping now; receive thread only. */
    private boolean busyPoll() {
        if (busyPollDeadline - System.nanoTime() > 0) {
            busyPolling = true;
            return true;
        }
        busyPolling = false;
        // Dekker pair with busyPollUntil(): 'busyPolling' is cleared before the deadline is read again.
        if (busyPollDeadline - System.nanoTime() > 0) {
            busyPolling = true;
            return true;
        }
        return false;
    }

    private void tick(long now) {
        for (int i = handshaking.size() - 1; i >= 0; i--) {
            Connection connection = handshaking.get(i);
            if (now - connection.deadline >= 0) {
                drop(connection, Reason.TIMEOUT, "handshake not completed within "
                        + config.handshakeTimeout().toMillis() + " ms");
            }
        }
        for (int r = 0; r < rank; r++) {
            Peer peer = peers[r];
            if (peer.state == PEER_NEW && peer.connecting == null && now - peer.nextConnectAttempt >= 0) {
                connect(peer, now);
            }
        }
        try {
            requests.expire(now);
        } catch (RuntimeException e) {
            LOG.error("rank {}: reply handler failed on a timeout: {}", rank, e.toString());
        }
    }

    private void takeDownFailedSenders() {
        for (Peer peer : peers) {
            if (peer != null && peer.sendFailure != null && peer.state == PEER_UP) {
                peerDown(peer, new TransportException(Reason.PEER_DIED, peer.rank,
                        "sending to rank " + peer.rank + " failed: " + peer.sendFailure.getMessage()));
            }
        }
    }

    private void onReady(SelectionKey key) {
        Object attachment = key.attachment();
        if (attachment == null) {
            accept();
            return;
        }
        Connection connection = (Connection) attachment;
        try {
            if (!key.isValid()) {
                return;
            }
            int ready = key.readyOps();
            if ((ready & SelectionKey.OP_CONNECT) != 0) {
                finishConnect(connection);
            }
            if ((ready & SelectionKey.OP_WRITE) != 0 && connection.phase != CLOSED) {
                flush(connection);
            }
            if ((ready & SelectionKey.OP_READ) != 0 && connection.phase != CLOSED) {
                read(connection);
            }
        } catch (IOException e) {
            lost(connection, e.getMessage() == null ? e.toString() : e.getMessage());
        } catch (RuntimeException e) {
            LOG.error("rank {}: failure while serving {}: {}", rank, connection.describe(), e.toString());
            lost(connection, e.toString());
        }
    }

    /** The connection failed at the socket level (reset, refused, EOF at a frame boundary). */
    private void lost(Connection connection, String why) {
        if (connection.phase == CLOSED) {
            return;
        }
        if (connection.phase == ESTABLISHED) {
            // peerDown marks the peer down under its send lock before it closes the socket.
            peerDown(connection.peer, new TransportException(Reason.PEER_DIED, connection.peer.rank,
                    "connection to rank " + connection.peer.rank + " lost: " + why));
        } else if (connection.outbound) {
            retryLater(connection, why);
        } else {
            drop(connection, Reason.PEER_DIED, why);
        }
    }

    private void accept() {
        for (;;) {
            SocketChannel channel;
            try {
                channel = server.accept();
            } catch (IOException e) {
                LOG.warn("rank {}: accept failed: {}", rank, e.getMessage());
                return;
            }
            if (channel == null) {
                return;
            }
            if (handshaking.size() >= config.maxPendingHandshakes()) {
                rejectedConnections.incrementAndGet();
                LOG.warn("rank {}: refused a connection: {} handshakes already pending", rank, handshaking.size());
                closeQuietly(channel);
                continue;
            }
            Connection connection = new Connection(channel, false);
            try {
                configure(channel);
                connection.remote = String.valueOf(channel.getRemoteAddress());
                connection.key = channel.register(selector, SelectionKey.OP_READ, connection);
            } catch (IOException e) {
                LOG.warn("rank {}: could not set up an accepted connection: {}", rank, e.getMessage());
                closeQuietly(channel);
                continue;
            }
            connection.phase = AWAIT_PROOF;
            connection.deadline = System.nanoTime() + config.handshakeTimeout().toNanos();
            connection.acceptorNonce = authenticator.nonce();
            handshaking.add(connection);
            writeHandshake(connection, STEP_CHALLENGE, rank, size, 0, connection.acceptorNonce, null);
        }
    }

    private void connect(Peer peer, long now) {
        SocketChannel channel = null;
        try {
            channel = SocketChannel.open();
            configure(channel);
            Connection connection = new Connection(channel, true);
            connection.remote = peer.endpoint.toString();
            connection.deadline = now + config.handshakeTimeout().toNanos();
            connection.peer = peer;
            peer.connecting = connection;
            handshaking.add(connection);
            if (channel.connect(peer.address)) {
                connection.key = channel.register(selector, SelectionKey.OP_READ, connection);
                connection.phase = AWAIT_CHALLENGE;
            } else {
                connection.key = channel.register(selector, SelectionKey.OP_CONNECT, connection);
                connection.phase = CONNECTING;
            }
        } catch (IOException e) {
            if (peer.connecting != null) {
                retryLater(peer.connecting, e.getMessage());
            } else {
                closeQuietly(channel);
                peer.lastError = e.getMessage();
                peer.nextConnectAttempt = now + config.connectRetryInterval().toNanos();
            }
        }
    }

    private void configure(SocketChannel channel) throws IOException {
        channel.configureBlocking(false);
        channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
        channel.setOption(StandardSocketOptions.SO_SNDBUF, config.socketBufferBytes());
        channel.setOption(StandardSocketOptions.SO_RCVBUF, config.socketBufferBytes());
    }

    private void finishConnect(Connection connection) throws IOException {
        if (connection.channel.finishConnect()) {
            connection.phase = AWAIT_CHALLENGE;
            connection.key.interestOps(SelectionKey.OP_READ);
        }
    }

    /** An outbound attempt failed before authentication: close it and try again after the retry interval. */
    private void retryLater(Connection connection, String why) {
        Peer peer = connection.peer;
        closeConnection(connection);
        handshaking.remove(connection);
        peer.connecting = null;
        peer.lastError = why;
        peer.nextConnectAttempt = System.nanoTime() + config.connectRetryInterval().toNanos();
    }

    private void flush(Connection connection) throws IOException {
        if (connection.phase != ESTABLISHED) {
            ByteBuffer out = connection.handshakeOut;
            connection.channel.write(out);
            if (!out.hasRemaining()) {
                connection.key.interestOpsAnd(~SelectionKey.OP_WRITE);
            }
            return;
        }
        Peer peer = connection.peer;
        synchronized (peer) {
            if (peer.state == PEER_UP) {
                drainBacklog(peer);
            }
        }
    }

    /** Writes as much of the backlog as the socket takes now. The caller holds the peer's lock. */
    private static void drainBacklog(Peer peer) throws IOException {
        ByteBuffer backlog = peer.backlog;
        if (backlog != null && peer.backlogRead < peer.backlogWrite) {
            backlog.limit(peer.backlogWrite).position(peer.backlogRead);
            while (backlog.hasRemaining() && peer.channel.write(backlog) > 0) {
                // Drain as much as the socket takes now.
            }
            peer.backlogRead = backlog.position();
            backlog.clear();
        }
        if (peer.backlogRead == peer.backlogWrite) {
            peer.backlogRead = 0;
            peer.backlogWrite = 0;
            peer.key.interestOpsAnd(~SelectionKey.OP_WRITE);
        }
        // Wake senders waiting for backlog space.
        peer.notifyAll();
    }

    private void read(Connection connection) throws IOException {
        // Bounded so that one flooding peer cannot starve the others of this thread.
        for (int reads = 0; reads < MAX_READS_PER_WAKEUP; reads++) {
            ByteBuffer rx = connection.rx;
            int space = rx.remaining();
            int count = connection.channel.read(rx);
            if (count < 0) {
                endOfStream(connection);
                return;
            }
            if (!parse(connection) || count < space) {
                // Closed while parsing, or the socket is drained: wait for the next readiness.
                return;
            }
        }
    }

    private void endOfStream(Connection connection) {
        int partial = connection.rx.position() - connection.parsePos;
        if (partial > 0) {
            drop(connection, Reason.MALFORMED_FRAME, "connection closed inside a frame (" + partial
                    + " bytes of an incomplete frame)");
        } else {
            lost(connection, "connection closed by the peer");
        }
    }

    /** Delivers every complete frame in the receive buffer; false if the connection was closed. */
    private boolean parse(Connection connection) {
        for (;;) {
            ByteBuffer rx = connection.rx;
            MemorySegment buffer = connection.rxSegment;
            int start = connection.parsePos;
            int available = rx.position() - start;
            if (available == 0) {
                rx.clear();
                connection.parsePos = 0;
                return true;
            }
            if (available < HEADER) {
                makeRoom(connection, HEADER);
                return true;
            }
            int limit = connection.phase == ESTABLISHED ? maxPayload : HANDSHAKE_MAX_PAYLOAD;
            int check = FrameDescriptor.check(buffer, start, limit);
            if (check != FrameDescriptor.OK) {
                drop(connection, Reason.MALFORMED_FRAME, FrameDescriptor.describe(check, buffer, start, limit));
                return false;
            }
            int frameLength = HEADER + FrameDescriptor.payloadLength(buffer, start);
            if (available < frameLength) {
                makeRoom(connection, frameLength);
                return true;
            }
            connection.parsePos = start + frameLength;
            if (!dispatch(connection, buffer, start) || closed) {
                return false;
            }
        }
    }

    /** Moves a partial frame to the front if the rest of it would not fit behind it. */
    private static void makeRoom(Connection connection, int frameLength) {
        ByteBuffer rx = connection.rx;
        int start = connection.parsePos;
        if (start + frameLength > rx.capacity()) {
            int available = rx.position() - start;
            MemorySegment.copy(connection.rxSegment, start, connection.rxSegment, 0, available);
            rx.position(available);
            connection.parsePos = 0;
        }
    }

    private boolean dispatch(Connection connection, MemorySegment buffer, int start) {
        byte kind = FrameDescriptor.kind(buffer, start);
        if (connection.phase != ESTABLISHED) {
            if (kind != FrameDescriptor.KIND_HANDSHAKE) {
                drop(connection, Reason.AUTHENTICATION_FAILED, "frame kind " + kind + " before authentication");
                return false;
            }
            return handshake(connection, buffer, start);
        }
        if (kind == FrameDescriptor.KIND_HANDSHAKE) {
            drop(connection, Reason.MALFORMED_FRAME, "handshake frame on an established connection");
            return false;
        }
        int length = FrameDescriptor.payloadLength(buffer, start);
        inbound.wrap(connection.peer.rank, buffer, start, buffer, start + HEADER, length);
        try {
            if (kind == FrameDescriptor.KIND_REPLY) {
                if (!requests.complete(inbound)) {
                    droppedReplies.incrementAndGet();
                }
            } else {
                handler.onMessage(inbound);
            }
        } catch (RuntimeException e) {
            LOG.error("rank {}: handler failed on a message of type {} from rank {}: {}",
                    rank, FrameDescriptor.type(buffer, start), connection.peer.rank, e.toString());
        }
        return connection.phase == ESTABLISHED;
    }

    // ---------------------------------------------------------------- handshake

    private boolean handshake(Connection connection, MemorySegment buffer, int start) {
        short step = FrameDescriptor.type(buffer, start);
        int length = FrameDescriptor.payloadLength(buffer, start);
        long arg0 = FrameDescriptor.arg(buffer, start, 0);
        long arg1 = FrameDescriptor.arg(buffer, start, 1);
        long arg2 = FrameDescriptor.arg(buffer, start, 2);
        byte[] payload = new byte[length];
        MemorySegment.copy(buffer, start + HEADER, MemorySegment.ofArray(payload), 0, length);
        int nonce = PeerAuthenticator.NONCE_LENGTH;
        int mac = PeerAuthenticator.MAC_LENGTH;
        switch (connection.phase) {
            case AWAIT_PROOF -> {
                if (step != STEP_PROOF || length != nonce + mac) {
                    return refuse(connection, Reason.AUTHENTICATION_FAILED,
                            "expected a handshake proof, got step " + step + " with " + length + " bytes");
                }
                if (arg1 != size || arg2 != rank) {
                    return refuse(connection, Reason.AUTHENTICATION_FAILED, "peer expects rank " + arg2
                            + " of a " + arg1 + "-node cluster, this is rank " + rank + " of " + size);
                }
                if (arg0 <= rank || arg0 >= size) {
                    return refuse(connection, Reason.AUTHENTICATION_FAILED, "rank " + arg0
                            + " may not connect to rank " + rank + " (higher ranks connect to lower)");
                }
                int peerRank = (int) arg0;
                byte[] connectorNonce = Arrays.copyOfRange(payload, 0, nonce);
                byte[] proof = Arrays.copyOfRange(payload, nonce, nonce + mac);
                byte[] expected = authenticator.proof(connection.acceptorNonce, connectorNonce, peerRank, rank, size);
                if (!PeerAuthenticator.matches(expected, proof)) {
                    return refuse(connection, Reason.AUTHENTICATION_FAILED,
                            "handshake proof from claimed rank " + peerRank + " does not match the cluster secret");
                }
                Peer peer = peers[peerRank];
                if (peer.state != PEER_NEW) {
                    return refuse(connection, Reason.AUTHENTICATION_FAILED, "rank " + peerRank
                            + (peer.state == PEER_UP ? " is already connected" : " went down earlier and may not rejoin"));
                }
                byte[] welcome = authenticator.welcome(connection.acceptorNonce, connectorNonce, peerRank, rank, size);
                encodeHandshake(connection, STEP_WELCOME, rank, size, peerRank, welcome, null);
                establish(connection, peer);
                return true;
            }
            case AWAIT_CHALLENGE -> {
                Peer peer = connection.peer;
                if (step != STEP_CHALLENGE || length != nonce) {
                    return refuse(connection, Reason.AUTHENTICATION_FAILED,
                            "expected a handshake challenge, got step " + step + " with " + length + " bytes");
                }
                if (arg0 != peer.rank || arg1 != size) {
                    return refuse(connection, Reason.AUTHENTICATION_FAILED, peer.endpoint + " answers as rank "
                            + arg0 + " of a " + arg1 + "-node cluster, expected rank " + peer.rank + " of " + size);
                }
                connection.acceptorNonce = payload;
                connection.connectorNonce = authenticator.nonce();
                byte[] proof = authenticator.proof(payload, connection.connectorNonce, rank, peer.rank, size);
                connection.phase = AWAIT_WELCOME;
                writeHandshake(connection, STEP_PROOF, rank, size, peer.rank, connection.connectorNonce, proof);
                return connection.phase != CLOSED;
            }
            case AWAIT_WELCOME -> {
                Peer peer = connection.peer;
                byte[] expected = authenticator.welcome(connection.acceptorNonce, connection.connectorNonce,
                        rank, peer.rank, size);
                if (step != STEP_WELCOME || length != mac || !PeerAuthenticator.matches(expected, payload)) {
                    return refuse(connection, Reason.AUTHENTICATION_FAILED,
                            "rank " + peer.rank + " did not prove it knows the cluster secret");
                }
                establish(connection, peer);
                return true;
            }
            default -> {
                return refuse(connection, Reason.MALFORMED_FRAME, "handshake frame in connection phase "
                        + connection.phase);
            }
        }
    }

    private boolean refuse(Connection connection, Reason reason, String why) {
        drop(connection, reason, why);
        return false;
    }

    private void encodeHandshake(Connection connection, short step, long arg0, long arg1, long arg2,
                                 byte[] first, byte[] second) {
        int length = first.length + (second == null ? 0 : second.length);
        ByteBuffer out = connection.handshakeOut;
        out.clear();
        FrameDescriptor.encode(MemorySegment.ofBuffer(out), 0, FrameDescriptor.KIND_HANDSHAKE, step, (short) 0,
                length, 0, arg0, arg1, arg2, 0);
        out.position(HEADER);
        out.put(first);
        if (second != null) {
            out.put(second);
        }
        out.flip();
    }

    private void writeHandshake(Connection connection, short step, long arg0, long arg1, long arg2,
                                byte[] first, byte[] second) {
        encodeHandshake(connection, step, arg0, arg1, arg2, first, second);
        try {
            connection.channel.write(connection.handshakeOut);
            if (connection.handshakeOut.hasRemaining()) {
                connection.key.interestOpsOr(SelectionKey.OP_WRITE);
            }
        } catch (IOException e) {
            lost(connection, e.getMessage());
        }
    }

    /** The handshake succeeded: hand the connection to its peer and let messages flow. */
    private void establish(Connection connection, Peer peer) {
        handshaking.remove(connection);
        if (peer.rx == null) {
            peer.rx = ByteBuffer.allocateDirect(HEADER + maxPayload).order(ByteOrder.LITTLE_ENDIAN);
            peer.rxSegment = MemorySegment.ofBuffer(peer.rx);
        }
        // Frames that arrived behind the last handshake frame move to the peer's big buffer.
        int leftover = connection.rx.position() - connection.parsePos;
        peer.rx.clear();
        MemorySegment.copy(connection.rxSegment, connection.parsePos, peer.rxSegment, 0, leftover);
        peer.rx.position(leftover);
        connection.rx = peer.rx;
        connection.rxSegment = peer.rxSegment;
        connection.parsePos = 0;
        connection.phase = ESTABLISHED;
        connection.peer = peer;
        peer.connection = connection;
        peer.connecting = null;
        peer.lastError = null;
        synchronized (peer) {
            peer.channel = connection.channel;
            peer.key = connection.key;
            ByteBuffer welcome = connection.handshakeOut;
            if (!connection.outbound && welcome.hasRemaining()) {
                // The WELCOME goes first on the stream, ahead of anything a sender writes once UP.
                try {
                    while (welcome.hasRemaining() && connection.channel.write(welcome) > 0) {
                        // Keep writing while the socket accepts bytes.
                    }
                } catch (IOException e) {
                    lost(connection, e.getMessage());
                    return;
                }
                if (welcome.hasRemaining()) {
                    try {
                        enqueue(peer, welcome, null);
                    } catch (TransportException e) {
                        // An empty backlog always has room for 120 bytes.
                        throw new IllegalStateException(e);
                    }
                }
            }
            peer.state = PEER_UP;
        }
        connection.acceptorNonce = null;
        connection.connectorNonce = null;
        LOG.info("rank {}: connected to rank {} ({})", rank, peer.rank, connection.describe());
        synchronized (lifecycle) {
            lifecycle.notifyAll();
        }
        try {
            peerListener.onPeerUp(peer.rank);
        } catch (RuntimeException e) {
            LOG.error("rank {}: peer listener failed on rank {} up: {}", rank, peer.rank, e.toString());
        }
    }

    /** Closes a connection for a protocol violation; logs one line. */
    private void drop(Connection connection, Reason reason, String why) {
        if (connection.phase == CLOSED) {
            return;
        }
        LOG.warn("rank {}: dropped connection {}: {}", rank, connection.describe(), why);
        if (connection.phase == ESTABLISHED) {
            rejectedConnections.incrementAndGet();
            peerDown(connection.peer, new TransportException(reason, connection.peer.rank,
                    "rank " + connection.peer.rank + " sent a bad frame: " + why));
        } else if (connection.outbound) {
            retryLater(connection, why);
        } else {
            rejectedConnections.incrementAndGet();
            closeConnection(connection);
            handshaking.remove(connection);
        }
    }

    private void closeConnection(Connection connection) {
        connection.phase = CLOSED;
        if (connection.key != null) {
            connection.key.cancel();
        }
        closeQuietly(connection.channel);
    }

    private void peerDown(Peer peer, TransportException cause) {
        synchronized (peer) {
            if (peer.state == PEER_DOWN) {
                return;
            }
            peer.downCause = cause;
            peer.state = PEER_DOWN;
            peer.notifyAll();
        }
        Connection connection = peer.connection;
        if (connection != null) {
            closeConnection(connection);
            peer.connection = null;
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

    // ---------------------------------------------------------------- close

    @Override
    public void close() {
        Thread thread;
        synchronized (lifecycle) {
            if (closed && (receiveThread == null || !receiveThread.isAlive())) {
                return;
            }
            closed = true;
            thread = receiveThread;
            lifecycle.notifyAll();
        }
        if (thread == null) {
            releaseAll();
            return;
        }
        selector.wakeup();
        if (thread == Thread.currentThread()) {
            // Called from a handler: the loop sees 'closed' when the handler returns and cleans up.
            return;
        }
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

    /** Closes every socket and fails what is outstanding; runs once, on the thread that ends the transport. */
    private void releaseAll() {
        synchronized (lifecycle) {
            if (released) {
                return;
            }
            released = true;
            closed = true;
        }
        TransportException closedCause = closedException();
        for (Peer peer : peers) {
            if (peer == null) {
                continue;
            }
            synchronized (peer) {
                if (peer.state != PEER_DOWN) {
                    peer.downCause = closedCause;
                    peer.state = PEER_DOWN;
                }
                peer.notifyAll();
            }
            if (peer.connection != null) {
                closeConnection(peer.connection);
            }
            if (peer.connecting != null) {
                closeConnection(peer.connecting);
            }
        }
        for (Connection connection : handshaking) {
            closeConnection(connection);
        }
        handshaking.clear();
        closeQuietly(server);
        closeQuietly(selector);
        try {
            requests.failAll(closedCause);
        } catch (RuntimeException e) {
            LOG.error("rank {}: reply handler failed on close: {}", rank, e.toString());
        }
        synchronized (lifecycle) {
            lifecycle.notifyAll();
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

    /** Everything about one remote rank. The monitor of a Peer is its send lock. */
    private static final class Peer extends PeerLink {
        volatile IOException sendFailure;

        // Set in start(); read by the receive thread.
        Endpoint endpoint;
        InetSocketAddress address;

        // Receive thread only.
        Connection connection;
        Connection connecting;
        long nextConnectAttempt;
        ByteBuffer rx;
        MemorySegment rxSegment;

        // Guarded by this.
        SocketChannel channel;
        SelectionKey key;
        /** Header plus inline payload; its first 56 bytes are also {@link #header}. */
        final ByteBuffer frame;
        final MemorySegment frameSegment;
        final ByteBuffer header;
        final ByteBuffer[] gather;
        MemorySegment viewSource;
        long viewBase;
        ByteBuffer view;
        ByteBuffer backlog;
        MemorySegment backlogSegment;
        int backlogRead;
        int backlogWrite;

        Peer(int rank, int inlinePayload) {
            super(rank);
            this.frame = ByteBuffer.allocateDirect(HEADER + inlinePayload).order(ByteOrder.LITTLE_ENDIAN);
            this.frameSegment = MemorySegment.ofBuffer(frame);
            this.header = frame.slice(0, HEADER).order(ByteOrder.LITTLE_ENDIAN);
            this.gather = new ByteBuffer[] {header, null};
        }

        /**
         * A ByteBuffer over {@code [offset, offset + length)} of the caller's segment, reusing the
         * last view when the segment is the same, so steady-state sends create no objects.
         */
        ByteBuffer payloadView(MemorySegment source, long offset, int length) {
            if (source != viewSource || offset < viewBase || offset + length > viewBase + view.capacity()) {
                long total = source.byteSize();
                if (total <= VIEW_WINDOW) {
                    viewBase = 0;
                    view = source.asByteBuffer();
                } else {
                    // Windows start on half-window boundaries, so any payload up to half a window fits one.
                    viewBase = offset & -(VIEW_WINDOW / 2);
                    view = source.asSlice(viewBase, Math.min(VIEW_WINDOW, total - viewBase)).asByteBuffer();
                }
                viewSource = source;
            }
            int position = (int) (offset - viewBase);
            view.limit(position + length);
            view.position(position);
            return view;
        }
    }

    /** One socket, from accept/connect through handshake to established. Receive thread only. */
    private static final class Connection {
        final SocketChannel channel;
        final boolean outbound;
        SelectionKey key;
        int phase;
        long deadline;
        String remote;
        Peer peer;
        ByteBuffer rx = ByteBuffer.allocateDirect(HANDSHAKE_BUFFER).order(ByteOrder.LITTLE_ENDIAN);
        MemorySegment rxSegment = MemorySegment.ofBuffer(rx);
        int parsePos;
        final ByteBuffer handshakeOut = ByteBuffer.allocateDirect(HEADER + HANDSHAKE_MAX_PAYLOAD)
                .order(ByteOrder.LITTLE_ENDIAN).limit(0);
        byte[] acceptorNonce;
        byte[] connectorNonce;

        Connection(SocketChannel channel, boolean outbound) {
            this.channel = channel;
            this.outbound = outbound;
        }

        String describe() {
            String direction = outbound ? "to " : "from ";
            return peer != null ? direction + "rank " + peer.rank + " at " + remote : direction + remote;
        }
    }
}
