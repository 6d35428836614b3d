package dev.dvmm.dsm.transport;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The two MACs of the connection handshake (see {@link Transport}): HMAC-SHA256 keyed with the
 * cluster secret over a label, both nonces, both ranks and the cluster size. The labels differ
 * per direction so a proof can never be replayed as a welcome. Used only on one thread.
 */
final class PeerAuthenticator {
    static final int NONCE_LENGTH = 32;
    static final int MAC_LENGTH = 32;
    static final int MIN_SECRET_LENGTH = 16;
    private static final byte[] PROOF_LABEL = "dvmm proof v1".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] WELCOME_LABEL = "dvmm welcome v1".getBytes(StandardCharsets.US_ASCII);

    private final Mac mac;
    private final SecureRandom random = new SecureRandom();

    PeerAuthenticator(byte[] clusterSecret) {
        if (clusterSecret == null || clusterSecret.length < MIN_SECRET_LENGTH) {
            throw new IllegalArgumentException("cluster secret must have at least " + MIN_SECRET_LENGTH + " bytes");
        }
        try {
            mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(clusterSecret, "HmacSHA256"));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is not available in this JDK: " + e.getMessage(), e);
        }
    }

    byte[] nonce() {
        byte[] nonce = new byte[NONCE_LENGTH];
        random.nextBytes(nonce);
        return nonce;
    }

    /** What the connecting (higher) rank sends to prove it knows the secret. */
    byte[] proof(byte[] acceptorNonce, byte[] connectorNonce, int connectorRank, int acceptorRank, int clusterSize) {
        return compute(PROOF_LABEL, acceptorNonce, connectorNonce, connectorRank, acceptorRank, clusterSize);
    }

    /** What the accepting (lower) rank answers to prove it knows the secret too. */
    byte[] welcome(byte[] acceptorNonce, byte[] connectorNonce, int connectorRank, int acceptorRank, int clusterSize) {
        return compute(WELCOME_LABEL, connectorNonce, acceptorNonce, acceptorRank, connectorRank, clusterSize);
    }

    private byte[] compute(byte[] label, byte[] firstNonce, byte[] secondNonce, int firstRank, int secondRank,
                           int clusterSize) {
        mac.update(label);
        mac.update(firstNonce);
        mac.update(secondNonce);
        mac.update(ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN)
                .putInt(firstRank).putInt(secondRank).putInt(clusterSize).array());
        return mac.doFinal();
    }

    /** Constant-time comparison, so a forger learns nothing from how fast a MAC is refused. */
    static boolean matches(byte[] expected, byte[] actual) {
        return MessageDigest.isEqual(expected, actual);
    }
}
