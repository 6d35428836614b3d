package dev.dvmm.dsm.transport;

import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.List;

/**
 * Node-to-node messaging for a cluster of {@code N} nodes with ranks {@code 0..N-1}, in the
 * active-message style: small typed messages with a fixed header, optional payloads taken straight
 * from off-heap memory, and request/reply correlation. Implemented over TCP ({@link TcpTransport},
 * JDK NIO) and meant to be implemented over UCX (RDMA) with the same semantics; both run the same
 * conformance suite.
 *
 * <h2>Messages</h2>
 * A message is a 56-byte header ({@link FrameDescriptor}: type, flags, correlation id, four 64-bit
 * argument words) plus an optional payload of at most {@link #maxPayload()} bytes. Senders describe
 * it in a reusable {@link OutboundMessage}; receivers read it through an {@link InboundMessage}
 * flyweight that points into the receive buffer. Three kinds: one-way ({@link #send}), request
 * ({@link #request} blocking, {@link #requestAsync} with a callback) and reply ({@link #reply}).
 * Messages from one peer are delivered in the order that peer sent them; there is no order
 * between different peers.
 *
 * <h2>Wire format (TCP)</h2>
 * A connection carries frames back to back: the header, then {@code payloadLength} payload bytes.
 * The receiver checks magic, version, kind, reserved bits, correlation id and bounds the length
 * (during the handshake to 64 bytes, afterwards to the configured maximum payload) before it
 * waits for the payload; any violation, or a connection that ends inside a frame, is logged in
 * one line and closes that connection only.
 *
 * <h2>Connection setup</h2>
 * One TCP connection per pair of nodes: the higher rank connects to the lower rank's endpoint
 * (retrying until the peer listens), the lower rank accepts. Each connection authenticates with
 * a challenge-response over the cluster secret, both ways, before any message flows:
 * <ol>
 *   <li>acceptor to connector: CHALLENGE (acceptor rank, cluster size, 32-byte nonce A);</li>
 *   <li>connector to acceptor: PROOF (connector rank, cluster size, acceptor rank, nonce C,
 *       HMAC-SHA256(secret, "dvmm proof" | A | C | ranks | size));</li>
 *   <li>acceptor to connector: WELCOME (HMAC-SHA256(secret, "dvmm welcome" | C | A | ranks | size)).</li>
 * </ol>
 * A wrong MAC, an impossible or duplicate rank, a different cluster size, a non-handshake frame
 * before WELCOME, or a handshake that takes longer than its timeout closes the connection. A peer
 * whose established connection ends is down for good ({@link PeerListener#onPeerDown}): requests
 * waiting on it fail at once with {@code PEER_DIED}; it is not reconnected. Death is seen when
 * the connection ends (a process that exits or crashes has its sockets closed by the kernel); a
 * silent partition is noticed only when TCP gives up, so heartbeats belong to the membership layer.
 *
 * <h2>Threading</h2>
 * Each transport owns one receive thread (a selector loop for TCP) that accepts, connects,
 * authenticates, reads frames and calls the {@link MessageHandler}, {@link ReplyHandler} and
 * {@link PeerListener} callbacks in place. Any thread may send: a send writes the frame directly
 * to the socket under a per-peer lock, with no thread hand-off. Over TCP a payload up to
 * {@link TcpTransportConfig#inlinePayloadBytes()} (16 KiB by default, so a page) is copied once
 * behind the header into a per-peer direct buffer and written with one {@code write()}: JDK NIO
 * allocates a small object per segment-backed buffer in a gathering write, and the copy is
 * cheaper than the garbage. Larger payloads are gathered straight from the caller's memory. If the
 * socket is full, the rest goes to a per-peer backlog and later sends queue behind it to keep order;
 * the receive thread drains it when the socket has room, and threads waiting for backlog space
 * drain it too. Threads other than the receive thread wait when a backlog is full (back-pressure);
 * the receive thread never waits (its backlog grows up to a bound), so two nodes answering each
 * other cannot deadlock. When a send method returns, the payload memory may be reused. Handlers
 * must not block: a blocked receive thread reads nothing and leaves this node's backlogs to be
 * drained only by senders that are waiting. On request ({@link #busyPollUntil}) the receive thread
 * polls without sleeping for a while and runs the caller's poll work between polls.
 *
 * <h2>Lifecycle</h2>
 * Construct (binds the local endpoint, see {@link #localEndpoint()}), {@link #start} with every
 * node's endpoint, {@link #awaitConnected}, exchange messages, {@link #close}.
 */
public interface Transport extends AutoCloseable {

    /** This node's rank. */
    int rank();

    /** Number of nodes in the cluster. */
    int clusterSize();

    /** The address this node listens on (the actual port if it was configured as 0). */
    Endpoint localEndpoint();

    /** Largest payload one message may carry, in bytes. */
    int maxPayload();

    /**
     * Starts the receive thread and connection setup. {@code cluster.get(r)} is rank {@code r}'s
     * endpoint (this node's own entry is not used). Returns at once; see {@link #awaitConnected}.
     */
    void start(List<Endpoint> cluster, MessageHandler handler, PeerListener peerListener) throws TransportException;

    /**
     * Waits until every peer is connected and authenticated. Throws {@code PEER_UNREACHABLE} with
     * the missing ranks on timeout, {@code PEER_DIED} if a peer went down, {@code CLOSED} if closed.
     */
    void awaitConnected(Duration timeout) throws TransportException;

    /** True while the authenticated connection to {@code peer} is established. */
    boolean isPeerUp(int peer);

    /** Sends a one-way message to {@code peer}. */
    void send(int peer, OutboundMessage message) throws TransportException;

    /**
     * Sends a request and waits on the calling thread for its reply, which is copied into
     * {@code reply} (header fields and payload). Fails with {@code TIMEOUT} after
     * {@code timeoutNanos}, {@code PEER_DIED} as soon as the peer goes down, {@code CLOSED},
     * {@code PAYLOAD_TOO_LARGE} if the reply does not fit. Must not be called on the receive thread.
     * Allocates nothing when it succeeds.
     */
    void request(int peer, OutboundMessage message, ReplyBuffer reply, long timeoutNanos) throws TransportException;

    /**
     * Sends a request; {@code handler} is called once with the reply or the failure, and gets
     * {@code token} back. Returns the correlation id. Throws (and the handler is not called) if the
     * request could not be sent. Allocates nothing when it succeeds.
     */
    long requestAsync(int peer, OutboundMessage message, ReplyHandler handler, long token, long timeoutNanos)
            throws TransportException;

    /** Answers the request {@code correlationId} that {@code peer} sent; may be called later, from any thread. */
    void reply(int peer, long correlationId, OutboundMessage message) throws TransportException;

    /**
     * Work the receive thread does between polls while it busy-polls (see {@link #busyPollUntil}), e.g. a
     * non-blocking read of another event source, so that one spinning thread serves both. Runs on the receive
     * thread, must not block, and returns how many events it handled (0 when there was nothing to do).
     */
    @FunctionalInterface
    interface PollWork {
        int poll();
    }

    /**
     * Asks the receive thread to poll without sleeping until {@code deadlineNanos} (a {@link System#nanoTime()}
     * value), running {@code work} (may be null) between polls: a node that waits for a reply trades CPU time for
     * the wake-up latency of a sleeping thread. A later call replaces both; a deadline in the past ends the
     * busy-poll at the next check. Allocates nothing. Transports that cannot busy-poll ignore it (the default).
     */
    default void busyPollUntil(long deadlineNanos, PollWork work) {
    }

    /**
     * Offers {@code region} to peers for one-sided reads ({@link #readRemote}): registered with the fabric here, its
     * key and base address travel to each peer during connection setup, so call it before {@link #start}, at most
     * once. The region must stay mapped until {@link #close}. Peers read whatever the region holds at the moment the
     * read executes, without this node's code running; over RDMA a registration must therefore follow the mapping
     * (on-demand paging), never pin pages that the owner may later punch out. Transports without one-sided reads
     * (the default) throw {@code UNSUPPORTED}.
     */
    default void exposeMemory(MemorySegment region) throws TransportException {
        throw new TransportException(TransportException.Reason.UNSUPPORTED, -1,
                getClass().getSimpleName() + " has no one-sided reads");
    }

    /**
     * Whether this transport offers one-sided reads at all (supported, and enabled by its configuration); known from
     * construction, before any peer is connected. A node that uses them must then find {@link #canReadRemote} true
     * for every peer.
     */
    default boolean remoteReadsEnabled() {
        return false;
    }

    /**
     * Whether {@link #readRemote} from {@code peer} can be used: this transport does one-sided reads, is configured
     * to, and {@code peer} exposed memory. Known once the peer is connected; false for a peer that is not.
     */
    default boolean canReadRemote(int peer) {
        return false;
    }

    /**
     * Starts a one-sided read of {@code dst.byteSize()} bytes at {@code offset} in the memory {@code peer} exposed,
     * into {@code dst} (native memory that must stay valid until completion). {@code handler} is called exactly once
     * with {@code token}, on the receive thread and never inside the fabric library's own callbacks (it may take
     * locks that a sender holds). Throws, without calling the handler, if the read cannot be started ({@code
     * UNSUPPORTED}, out-of-range {@code offset}, peer down, closed). Allocates nothing when it succeeds.
     */
    default void readRemote(int peer, long offset, MemorySegment dst, RemoteReadHandler handler, long token)
            throws TransportException {
        throw new TransportException(TransportException.Reason.UNSUPPORTED, peer,
                getClass().getSimpleName() + " has no one-sided reads");
    }

    /** Answers {@code request} (convenience for {@code reply(request.peer(), request.correlationId(), message)}). */
    default void reply(InboundMessage request, OutboundMessage message) throws TransportException {
        reply(request.peer(), request.correlationId(), message);
    }

    /**
     * Stops the receive thread and waits for it, closes every connection, fails outstanding
     * requests with {@code CLOSED}. Idempotent. No thread of this transport survives it (when called
     * from a handler, the receive thread ends as soon as the handler returns).
     */
    @Override
    void close();

    /**
     * A transport of an in-process cluster on 127.0.0.1 (tests, benchmarks): {@code kind} "tcp" or "ucx".
     *
     * @throws IllegalArgumentException for another kind
     */
    static Transport loopback(String kind, int rank, int size, byte[] secret) throws TransportException {
        return loopback(kind, rank, size, secret, false);
    }

    /**
     * As above; with {@code remoteReads} the transport offers one-sided reads even where the fabric has no RDMA (UCX
     * then emulates them in software over TCP): only "ucx" can.
     *
     * @throws IllegalArgumentException for another kind, or for remote reads over tcp
     */
    static Transport loopback(String kind, int rank, int size, byte[] secret, boolean remoteReads)
            throws TransportException {
        return switch (kind) {
            case "tcp" -> {
                if (remoteReads) {
                    throw new IllegalArgumentException("the tcp transport has no one-sided reads: use ucx");
                }
                yield new TcpTransport(TcpTransportConfig.loopback(rank, size, secret));
            }
            case "ucx" -> new UcxTransport(UcxTransportConfig.loopback(rank, size, secret)
                    .withRemoteReads(remoteReads ? UcxTransportConfig.RemoteReads.ON : UcxTransportConfig.RemoteReads.OFF));
            default -> throw new IllegalArgumentException("unknown transport '" + kind + "': use tcp or ucx");
        };
    }
}
