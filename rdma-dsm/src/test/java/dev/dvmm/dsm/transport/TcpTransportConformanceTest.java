package dev.dvmm.dsm.transport;

import java.security.SecureRandom;

/** The conformance suite over {@link TcpTransport} on 127.0.0.1. */
class TcpTransportConformanceTest extends TransportConformanceTest {
    private final byte[] secret = new byte[32];

    TcpTransportConformanceTest() {
        new SecureRandom().nextBytes(secret);
    }

    @Override
    protected Transport newTransport(int rank, int clusterSize) throws TransportException {
        return new TcpTransport(TcpTransportConfig.loopback(rank, clusterSize, secret));
    }
}
