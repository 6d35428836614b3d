package dev.dvmm.dsm.node;

import dev.dvmm.dsm.transport.Endpoint;
import dev.dvmm.dsm.transport.MessageHandler;
import dev.dvmm.dsm.transport.OutboundMessage;
import dev.dvmm.dsm.transport.PeerListener;
import dev.dvmm.dsm.transport.ReplyBuffer;
import dev.dvmm.dsm.transport.ReplyHandler;
import dev.dvmm.dsm.transport.Transport;
import dev.dvmm.dsm.transport.TransportException;
import java.time.Duration;
import java.util.List;

/**
 * A transport whose {@code send} of one message type returns only some time after the message left: what a
 * thread descheduled inside the send looks like to everything else (the peer already acts on the message).
 */
final class SlowSendTransport implements Transport {
    private final Transport inner;
    private final int slowType;
    private final long delayMillis;

    SlowSendTransport(Transport inner, int slowType, long delayMillis) {
        this.inner = inner;
        this.slowType = slowType;
        this.delayMillis = delayMillis;
    }

    @Override
    public void send(int peer, OutboundMessage message) throws TransportException {
        inner.send(peer, message);
        if (message.type() == slowType) {
            try {
                Thread.sleep(delayMillis);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    @Override public int rank() { return inner.rank(); }
    @Override public int clusterSize() { return inner.clusterSize(); }
    @Override public Endpoint localEndpoint() { return inner.localEndpoint(); }
    @Override public int maxPayload() { return inner.maxPayload(); }
    @Override public boolean isPeerUp(int peer) { return inner.isPeerUp(peer); }
    @Override public void close() { inner.close(); }

    @Override
    public void start(List<Endpoint> cluster, MessageHandler handler, PeerListener peerListener)
            throws TransportException {
        inner.start(cluster, handler, peerListener);
    }

    @Override
    public void awaitConnected(Duration timeout) throws TransportException {
        inner.awaitConnected(timeout);
    }

    @Override
    public void request(int peer, OutboundMessage message, ReplyBuffer reply, long timeoutNanos)
            throws TransportException {
        inner.request(peer, message, reply, timeoutNanos);
    }

    @Override
    public long requestAsync(int peer, OutboundMessage message, ReplyHandler handler, long token, long timeoutNanos)
            throws TransportException {
        return inner.requestAsync(peer, message, handler, token, timeoutNanos);
    }

    @Override
    public void reply(int peer, long correlationId, OutboundMessage message) throws TransportException {
        inner.reply(peer, correlationId, message);
    }
}
