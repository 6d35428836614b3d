package dev.dvmm.dsm.transport;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.dvmm.bindings.Ucp;
import java.security.SecureRandom;
import org.junit.jupiter.api.BeforeAll;

/**
 * The whole conformance suite over {@link UcxTransport} on 127.0.0.1, with whatever transports UCX
 * picks on this machine (shared memory and TCP here; UCX_TLS may narrow it). Every case applies.
 */
class UcxTransportConformanceTest extends TransportConformanceTest {
    private final byte[] secret = new byte[32];

    UcxTransportConformanceTest() {
        new SecureRandom().nextBytes(secret);
    }

    @BeforeAll
    static void requireUcx() {
        assumeTrue(Ucp.isInstalled(), "UCX is not installed (apt-get install libucx0): skipping the UCX transport");
    }

    @Override
    protected Transport newTransport(int rank, int clusterSize) throws TransportException {
        return new UcxTransport(UcxTransportConfig.loopback(rank, clusterSize, secret));
    }

    /** With the default configuration (auto): only where UCX sees an RDMA transport. */
    @Override
    protected boolean doesOneSidedReads(Transport transport) {
        return ((UcxTransport) transport).remoteReadsEnabled();
    }
}
