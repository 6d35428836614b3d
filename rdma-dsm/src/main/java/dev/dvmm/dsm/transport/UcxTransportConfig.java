package dev.dvmm.dsm.transport;

import dev.dvmm.bindings.Ucp;
import java.time.Duration;
import java.util.Arrays;

/**
 * Settings of a {@link UcxTransport}. Start from {@link #of} and change what you need with the
 * {@code with} methods. UCX's own settings (UCX_TLS, UCX_NET_DEVICES, UCX_RNDV_THRESH, ...) are not
 * here: UCX reads them from the environment, untouched by dvmm (see docs/DEPLOYMENT.md).
 *
 * @param rank                 this node's rank, 0..clusterSize-1
 * @param clusterSize          number of nodes
 * @param listen               bootstrap endpoint to bind (TCP; port 0: any free port); it carries the
 *                             authenticated address exchange and then stays open as the liveness link
 * @param clusterSecret        shared secret for the HMAC handshake, at least 16 bytes
 * @param maxPayload           largest payload per message; a larger incoming message is malformed
 * @param handshakeTimeout     a bootstrap handshake step not answered within this fails (and is retried)
 * @param connectRetryInterval pause between attempts to reach a lower rank that is not listening yet
 * @param requestSlots         outstanding requests at most (power of two)
 * @param inlinePayloadBytes   payloads up to this size are copied into a transport-owned send buffer,
 *                             so the send returns at once; larger ones go zero-copy from the caller's
 *                             memory (UCX picks rendezvous for them) and the sender waits for completion
 * @param sendBuffers          transport-owned send buffers (each header + inline payload); a sender
 *                             finding none free waits, the progress thread allocates an extra one
 * @param busyPollNanos        how long the progress thread keeps polling the worker after its last
 *                             event before it arms the worker and sleeps on its event fd (a wake-up
 *                             from the fd costs tens of microseconds at the tail); it yields its core
 *                             between polls, so polling costs latency little even with no core to spare.
 *                             0: sleep at once
 * @param requestSpinNanos     how long a thread blocked in {@code request} polls the UCX worker itself for
 *                             its reply (yielding its core between polls) before it parks and leaves the reply
 *                             to the progress thread; a reply that comes meanwhile needs no thread wake-up.
 *                             0: park at once
 * @param remoteReads          whether one-sided reads ({@link Transport#exposeMemory}, {@link Transport#readRemote})
 *                             are offered: {@link RemoteReads#AUTO} (the default) turns them on only where UCX sees
 *                             an RDMA transport; {@code requestSlots} also bounds the reads in flight
 * @param ucpLibrary           the libucp to load (a name or a path, as dlopen takes it)
 * @param ucsLibrary           the libucs to load
 */
public record UcxTransportConfig(int rank, int clusterSize, Endpoint listen, byte[] clusterSecret, int maxPayload,
                                 Duration handshakeTimeout, Duration connectRetryInterval, int requestSlots,
                                 int inlinePayloadBytes, int sendBuffers, long busyPollNanos, long requestSpinNanos,
                                 RemoteReads remoteReads, String ucpLibrary, String ucsLibrary) {

    /** Whether the transport does one-sided reads. */
    public enum RemoteReads {
        /** Never: {@code exposeMemory} says UNSUPPORTED. */
        OFF,
        /**
         * Always, even where UCX has no RDMA transport and emulates RMA in software over TCP (slow, about as costly as
         * a request; useful for tests).
         */
        ON,
        /** Only where UCX sees an InfiniBand/RoCE transport (rc, dc, ud; verbs or mlx5). */
        AUTO;

        /** Parses "off", "on" or "auto" (any case); throws IllegalArgumentException naming the choices. */
        public static RemoteReads parse(String text) {
            for (RemoteReads value : values()) {
                if (value.name().equalsIgnoreCase(text == null ? "" : text.strip())) {
                    return value;
                }
            }
            throw new IllegalArgumentException("remote reads '" + text + "': use off, on or auto");
        }
    }

    public static final int DEFAULT_MAX_PAYLOAD = 1 << 20;
    /** Covers a 4 KiB page with room to spare, like the TCP transport's inline copy. */
    public static final int DEFAULT_INLINE_PAYLOAD = 16 << 10;
    public static final int MAX_MAX_PAYLOAD = 256 << 20;
    /**
     * 100 us: a few round trips' worth, so request/reply and fault traffic never waits for a wake-up;
     * a node idle for longer sleeps in poll() and costs no CPU (measurements: bench transport).
     */
    public static final long DEFAULT_BUSY_POLL_NANOS = 100_000;
    /**
     * 100 us: a requesting thread polls the worker itself for several round trips' worth before it parks, so a
     * prompt reply needs no wake-up (bench transport on the 2-core build host: 4 KiB p50 from 1.6x to 1.2x of
     * ucx_perftest's, p99 halved).
     */
    public static final long DEFAULT_REQUEST_SPIN_NANOS = 100_000;

    public UcxTransportConfig {
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
        requirePositive(handshakeTimeout, "handshake timeout");
        requirePositive(connectRetryInterval, "connect retry interval");
        if (requestSlots < 1 || requestSlots > (1 << 20) || Integer.bitCount(requestSlots) != 1) {
            throw new IllegalArgumentException("request slots " + requestSlots + " is not a power of two in 1..2^20");
        }
        if (inlinePayloadBytes < 0 || inlinePayloadBytes > 1 << 20) {
            throw new IllegalArgumentException("inline payload " + inlinePayloadBytes + " is outside 0..1 MiB");
        }
        if (sendBuffers < 1 || sendBuffers > 1 << 16) {
            throw new IllegalArgumentException("send buffers " + sendBuffers + " is outside 1..65536");
        }
        if (busyPollNanos < 0 || requestSpinNanos < 0) {
            throw new IllegalArgumentException("busy-poll and spin times must not be negative");
        }
        if (remoteReads == null) {
            throw new IllegalArgumentException("remote reads setting is missing (off, on or auto)");
        }
        if (ucpLibrary == null || ucpLibrary.isBlank() || ucsLibrary == null || ucsLibrary.isBlank()) {
            throw new IllegalArgumentException("UCX library names are missing");
        }
    }

    private static void requirePositive(Duration duration, String what) {
        if (duration == null || duration.isNegative() || duration.isZero()) {
            throw new IllegalArgumentException(what + " must be positive");
        }
    }

    /**
     * Defaults: 1 MiB max payload, 5 s handshake steps, 4096 request slots, 128 send buffers, 100 us busy poll, remote
     * reads where there is RDMA.
     */
    public static UcxTransportConfig of(int rank, int clusterSize, Endpoint listen, byte[] clusterSecret) {
        return new UcxTransportConfig(rank, clusterSize, listen, clusterSecret, DEFAULT_MAX_PAYLOAD,
                Duration.ofSeconds(5), Duration.ofMillis(50), 4096, DEFAULT_INLINE_PAYLOAD, 128, DEFAULT_BUSY_POLL_NANOS, DEFAULT_REQUEST_SPIN_NANOS,
                RemoteReads.AUTO, Ucp.UCP_LIBRARY, Ucp.UCS_LIBRARY);
    }

    /** Defaults, bootstrap on 127.0.0.1 at a free port. */
    public static UcxTransportConfig loopback(int rank, int clusterSize, byte[] clusterSecret) {
        return of(rank, clusterSize, new Endpoint("127.0.0.1", 0), clusterSecret);
    }

    @Override
    public byte[] clusterSecret() {
        return clusterSecret.clone();
    }

    public UcxTransportConfig withMaxPayload(int bytes) {
        return new UcxTransportConfig(rank, clusterSize, listen, clusterSecret, bytes, handshakeTimeout,
                connectRetryInterval, requestSlots, inlinePayloadBytes, sendBuffers, busyPollNanos, requestSpinNanos,
                remoteReads, ucpLibrary, ucsLibrary);
    }

    public UcxTransportConfig withInlinePayloadBytes(int bytes) {
        return new UcxTransportConfig(rank, clusterSize, listen, clusterSecret, maxPayload, handshakeTimeout,
                connectRetryInterval, requestSlots, bytes, sendBuffers, busyPollNanos, requestSpinNanos, remoteReads,
                ucpLibrary, ucsLibrary);
    }

    public UcxTransportConfig withBusyPollNanos(long nanos) {
        return new UcxTransportConfig(rank, clusterSize, listen, clusterSecret, maxPayload, handshakeTimeout,
                connectRetryInterval, requestSlots, inlinePayloadBytes, sendBuffers, nanos, requestSpinNanos,
                remoteReads, ucpLibrary, ucsLibrary);
    }

    public UcxTransportConfig withRequestSpinNanos(long nanos) {
        return new UcxTransportConfig(rank, clusterSize, listen, clusterSecret, maxPayload, handshakeTimeout,
                connectRetryInterval, requestSlots, inlinePayloadBytes, sendBuffers, busyPollNanos, nanos, remoteReads,
                ucpLibrary, ucsLibrary);
    }

    public UcxTransportConfig withHandshakeTimeout(Duration timeout) {
        return new UcxTransportConfig(rank, clusterSize, listen, clusterSecret, maxPayload, timeout,
                connectRetryInterval, requestSlots, inlinePayloadBytes, sendBuffers, busyPollNanos, requestSpinNanos,
                remoteReads, ucpLibrary, ucsLibrary);
    }

    public UcxTransportConfig withRemoteReads(RemoteReads setting) {
        return new UcxTransportConfig(rank, clusterSize, listen, clusterSecret, maxPayload, handshakeTimeout,
                connectRetryInterval, requestSlots, inlinePayloadBytes, sendBuffers, busyPollNanos, requestSpinNanos,
                setting, ucpLibrary, ucsLibrary);
    }

    public UcxTransportConfig withLibraries(String ucp, String ucs) {
        return new UcxTransportConfig(rank, clusterSize, listen, clusterSecret, maxPayload, handshakeTimeout,
                connectRetryInterval, requestSlots, inlinePayloadBytes, sendBuffers, busyPollNanos, requestSpinNanos,
                remoteReads, ucp, ucs);
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof UcxTransportConfig o && rank == o.rank && clusterSize == o.clusterSize
                && listen.equals(o.listen) && Arrays.equals(clusterSecret, o.clusterSecret)
                && maxPayload == o.maxPayload && handshakeTimeout.equals(o.handshakeTimeout)
                && connectRetryInterval.equals(o.connectRetryInterval) && requestSlots == o.requestSlots
                && inlinePayloadBytes == o.inlinePayloadBytes && sendBuffers == o.sendBuffers
                && busyPollNanos == o.busyPollNanos && requestSpinNanos == o.requestSpinNanos
                && remoteReads == o.remoteReads && ucpLibrary.equals(o.ucpLibrary) && ucsLibrary.equals(o.ucsLibrary);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * rank + clusterSize) + Arrays.hashCode(clusterSecret);
    }

    /** Never prints the secret. */
    @Override
    public String toString() {
        return "UcxTransportConfig[rank=" + rank + ", clusterSize=" + clusterSize + ", listen=" + listen
                + ", maxPayload=" + maxPayload + ", requestSlots=" + requestSlots + ", inlinePayloadBytes="
                + inlinePayloadBytes + ", sendBuffers=" + sendBuffers + ", busyPollNanos=" + busyPollNanos
                + ", requestSpinNanos=" + requestSpinNanos + ", remoteReads=" + remoteReads + ", ucpLibrary=" + ucpLibrary
                + "]";
    }
}
