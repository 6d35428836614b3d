package dev.dvmm.dsm.transport;

import java.time.Duration;
import java.util.Arrays;

/**
 * Settings of a {@link TcpTransport}. Start from {@link #of} and change what you need with the
 * {@code with} methods.
 *
 * @param rank                 this node's rank, 0..clusterSize-1
 * @param clusterSize          number of nodes
 * @param listen               local endpoint to bind (port 0: any free port)
 * @param clusterSecret        shared secret for the HMAC handshake, at least 16 bytes
 * @param maxPayload           largest payload per message; longer frames are refused as malformed
 * @param socketBufferBytes    SO_SNDBUF / SO_RCVBUF per connection (the kernel may cap it)
 * @param handshakeTimeout     a connection not authenticated within this is closed
 * @param connectRetryInterval pause between attempts to reach a lower rank that is not listening yet
 * @param requestSlots         outstanding requests at most (power of two)
 * @param maxBacklogBytes      per-peer send backlog the receive thread may grow to before failing
 * @param sendTimeout          how long other threads wait for backlog space before {@code TIMEOUT}
 * @param maxPendingHandshakes unauthenticated connections held at once; more are closed at accept
 * @param inlinePayloadBytes   payloads up to this size are copied behind the header and sent with one
 *                             write(); larger ones are gathered from the caller's memory without a copy
 * @param requestSpinNanos     how long a thread blocked in {@code request} watches for its reply before it parks:
 *                             a reply within that time costs no thread wake-up (on hosts where waking a thread
 *                             on an idle CPU is slow, the round trip otherwise carries one; 0: park at once)
 * @param busyPollNanos        how long the receive thread polls its sockets without sleeping after it handled
 *                             input, yielding its core between polls: a message within that time costs no wake-up
 *                             of the receive thread (0: sleep in epoll at once)
 */
public record TcpTransportConfig(int rank, int clusterSize, Endpoint listen, byte[] clusterSecret, int maxPayload,
                                 int socketBufferBytes, Duration handshakeTimeout, Duration connectRetryInterval,
                                 int requestSlots, long maxBacklogBytes, Duration sendTimeout,
                                 int maxPendingHandshakes, int inlinePayloadBytes, long requestSpinNanos,
                                 long busyPollNanos) {

    public static final int DEFAULT_MAX_PAYLOAD = 1 << 20;
    /** Covers a 4 KiB page with room to spare; see the benchmark for the copy-versus-gather numbers. */
    public static final int DEFAULT_INLINE_PAYLOAD = 16 << 10;
    /** Payloads above this would not fit the buffer windows the transport uses; also a sanity bound. */
    public static final int MAX_MAX_PAYLOAD = 256 << 20;
    /** Covers a loopback or LAN round trip; measured with {@code dvmm bench transport} (see DEPLOYMENT.md). */
    public static final long DEFAULT_REQUEST_SPIN_NANOS = 100_000;
    /**
     * Covers the gap between a reply and the next request of a busy peer; the UCX transport's progress thread polls
     * alike (see DEPLOYMENT.md for what it costs and gains).
     */
    public static final long DEFAULT_BUSY_POLL_NANOS = 50_000;

    public TcpTransportConfig {
        if (clusterSize < 1 || clusterSize > 4096) {
            throw new IllegalArgumentException("cluster size " + clusterSize + " is outside 1..4096");
        }
        if (rank < 0 || rank >= clusterSize) {
            throw new IllegalArgumentException("rank " + rank + " is outside 0.." + (clusterSize - 1));
        }
        if (listen == null) {
            throw new IllegalArgumentException("listen endpoint is missing");
        }
        if (clusterSecret == null || clusterSecret.length < PeerAuthenticator.MIN_SECRET_LENGTH) {
            throw new IllegalArgumentException("cluster secret must have at least "
                    + PeerAuthenticator.MIN_SECRET_LENGTH + " bytes");
        }
        clusterSecret = clusterSecret.clone();
        if (maxPayload < 0 || maxPayload > MAX_MAX_PAYLOAD) {
            throw new IllegalArgumentException("max payload " + maxPayload + " is outside 0.." + MAX_MAX_PAYLOAD);
        }
        if (socketBufferBytes < 4096) {
            throw new IllegalArgumentException("socket buffer " + socketBufferBytes + " bytes is below 4096");
        }
        requirePositive(handshakeTimeout, "handshake timeout");
        requirePositive(connectRetryInterval, "connect retry interval");
        requirePositive(sendTimeout, "send timeout");
        if (requestSlots < 1 || requestSlots > (1 << 20) || Integer.bitCount(requestSlots) != 1) {
            throw new IllegalArgumentException("request slots " + requestSlots + " is not a power of two in 1..2^20");
        }
        if (maxBacklogBytes < 2L * (FrameDescriptor.HEADER_LENGTH + maxPayload)) {
            throw new IllegalArgumentException("max backlog " + maxBacklogBytes + " bytes is below two maximal frames");
        }
        if (maxPendingHandshakes < 1) {
            throw new IllegalArgumentException("max pending handshakes must be at least 1");
        }
        if (inlinePayloadBytes < 0 || inlinePayloadBytes > 1 << 20) {
            throw new IllegalArgumentException("inline payload " + inlinePayloadBytes + " is outside 0..1 MiB");
        }
        if (requestSpinNanos < 0 || requestSpinNanos > 1_000_000_000L) {
            throw new IllegalArgumentException("request spin " + requestSpinNanos + " ns is outside 0..1 s");
        }
        if (busyPollNanos < 0 || busyPollNanos > 1_000_000_000L) {
            throw new IllegalArgumentException("busy poll " + busyPollNanos + " ns is outside 0..1 s");
        }
    }

    private static void requirePositive(Duration duration, String what) {
        if (duration == null || duration.isNegative() || duration.isZero()) {
            throw new IllegalArgumentException(what + " must be positive");
        }
    }

    /** Defaults: 1 MiB max payload, 4 MiB socket buffers, 5 s handshake, 4096 request slots. */
    public static TcpTransportConfig of(int rank, int clusterSize, Endpoint listen, byte[] clusterSecret) {
        return new TcpTransportConfig(rank, clusterSize, listen, clusterSecret, DEFAULT_MAX_PAYLOAD, 4 << 20,
                Duration.ofSeconds(5), Duration.ofMillis(50), 4096, 64L << 20, Duration.ofSeconds(10), 64,
                DEFAULT_INLINE_PAYLOAD, DEFAULT_REQUEST_SPIN_NANOS, DEFAULT_BUSY_POLL_NANOS);
    }

    /** Defaults, listening on 127.0.0.1 at a free port. */
    public static TcpTransportConfig loopback(int rank, int clusterSize, byte[] clusterSecret) {
        return of(rank, clusterSize, new Endpoint("127.0.0.1", 0), clusterSecret);
    }

    @Override
    public byte[] clusterSecret() {
        return clusterSecret.clone();
    }

    public TcpTransportConfig withMaxPayload(int bytes) {
        long backlog = Math.max(maxBacklogBytes, 2L * (FrameDescriptor.HEADER_LENGTH + bytes));
        return new TcpTransportConfig(rank, clusterSize, listen, clusterSecret, bytes, socketBufferBytes,
                handshakeTimeout, connectRetryInterval, requestSlots, backlog, sendTimeout, maxPendingHandshakes,
                inlinePayloadBytes, requestSpinNanos, busyPollNanos);
    }

    public TcpTransportConfig withHandshakeTimeout(Duration timeout) {
        return new TcpTransportConfig(rank, clusterSize, listen, clusterSecret, maxPayload, socketBufferBytes,
                timeout, connectRetryInterval, requestSlots, maxBacklogBytes, sendTimeout, maxPendingHandshakes,
                inlinePayloadBytes, requestSpinNanos, busyPollNanos);
    }

    public TcpTransportConfig withSocketBufferBytes(int bytes) {
        return new TcpTransportConfig(rank, clusterSize, listen, clusterSecret, maxPayload, bytes,
                handshakeTimeout, connectRetryInterval, requestSlots, maxBacklogBytes, sendTimeout, maxPendingHandshakes,
                inlinePayloadBytes, requestSpinNanos, busyPollNanos);
    }

    public TcpTransportConfig withRequestSlots(int slots) {
        return new TcpTransportConfig(rank, clusterSize, listen, clusterSecret, maxPayload, socketBufferBytes,
                handshakeTimeout, connectRetryInterval, slots, maxBacklogBytes, sendTimeout, maxPendingHandshakes,
                inlinePayloadBytes, requestSpinNanos, busyPollNanos);
    }

    public TcpTransportConfig withInlinePayloadBytes(int bytes) {
        return new TcpTransportConfig(rank, clusterSize, listen, clusterSecret, maxPayload, socketBufferBytes,
                handshakeTimeout, connectRetryInterval, requestSlots, maxBacklogBytes, sendTimeout, maxPendingHandshakes,
                bytes, requestSpinNanos, busyPollNanos);
    }

    public TcpTransportConfig withRequestSpinNanos(long nanos) {
        return new TcpTransportConfig(rank, clusterSize, listen, clusterSecret, maxPayload, socketBufferBytes,
                handshakeTimeout, connectRetryInterval, requestSlots, maxBacklogBytes, sendTimeout, maxPendingHandshakes,
                inlinePayloadBytes, nanos, busyPollNanos);
    }

    public TcpTransportConfig withBusyPollNanos(long nanos) {
        return new TcpTransportConfig(rank, clusterSize, listen, clusterSecret, maxPayload, socketBufferBytes,
                handshakeTimeout, connectRetryInterval, requestSlots, maxBacklogBytes, sendTimeout, maxPendingHandshakes,
                inlinePayloadBytes, requestSpinNanos, nanos);
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof TcpTransportConfig o && rank == o.rank && clusterSize == o.clusterSize
                && listen.equals(o.listen) && Arrays.equals(clusterSecret, o.clusterSecret)
                && maxPayload == o.maxPayload && socketBufferBytes == o.socketBufferBytes
                && handshakeTimeout.equals(o.handshakeTimeout) && connectRetryInterval.equals(o.connectRetryInterval)
                && requestSlots == o.requestSlots && maxBacklogBytes == o.maxBacklogBytes
                && sendTimeout.equals(o.sendTimeout) && maxPendingHandshakes == o.maxPendingHandshakes
                && inlinePayloadBytes == o.inlinePayloadBytes && requestSpinNanos == o.requestSpinNanos
                && busyPollNanos == o.busyPollNanos;
    }

    @Override
    public int hashCode() {
        return 31 * (31 * rank + clusterSize) + Arrays.hashCode(clusterSecret);
    }

    /** Never prints the secret. */
    @Override
    public String toString() {
        return "TcpTransportConfig[rank=" + rank + ", clusterSize=" + clusterSize + ", listen=" + listen
                + ", maxPayload=" + maxPayload + ", socketBufferBytes=" + socketBufferBytes
                + ", handshakeTimeout=" + handshakeTimeout + ", requestSlots=" + requestSlots
                + ", inlinePayloadBytes=" + inlinePayloadBytes + ", requestSpinNanos=" + requestSpinNanos
                + ", busyPollNanos=" + busyPollNanos + "]";
    }
}
