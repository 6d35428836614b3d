package dev.dvmm.dsm;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.dvmm.bindings.Ucp;
import dev.dvmm.dsm.transport.TcpTransport;
import dev.dvmm.dsm.transport.TcpTransportConfig;
import dev.dvmm.dsm.transport.Transport;
import dev.dvmm.dsm.transport.TransportException;
import dev.dvmm.dsm.transport.UcxTransport;
import dev.dvmm.dsm.transport.UcxTransportConfig;

/** Loopback transports by name ("tcp" or "ucx") for DSM tests that run over both. */
public final class TestTransports {
    private TestTransports() {}

    /** Skips the test, with the reason printed, when {@code kind} cannot run on this machine. */
    public static void assumeAvailable(String kind) {
        if ("ucx".equals(kind) && !Ucp.isInstalled()) {
            String why = "UCX is not installed (apt-get install libucx0): skipping the UCX case";
            System.out.println("SKIPPED: " + why);
            assumeTrue(false, why);
        }
    }

    public static Transport loopback(String kind, int rank, int size, byte[] secret) throws TransportException {
        return switch (kind) {
            case "tcp" -> new TcpTransport(TcpTransportConfig.loopback(rank, size, secret));
            case "ucx" -> new UcxTransport(UcxTransportConfig.loopback(rank, size, secret));
            default -> throw new IllegalArgumentException("unknown transport " + kind);
        };
    }
}
