package dev.dvmm.dsm.transport;

import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.Arrays;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * A hand-driven client of the TCP wire protocol, written from the format documented in
 * {@link FrameDescriptor} and {@link Transport} without using the transport's own codec, so tests
 * can both check the format and send exactly the bytes a broken or hostile peer would.
 */
final class RawPeer implements AutoCloseable {
    static final int MAGIC = 0x464D5644;
    static final int HEADER = 56;
    static final byte KIND_MESSAGE = 1;
    static final byte KIND_REQUEST = 2;
    static final byte KIND_REPLY = 3;
    static final byte KIND_HANDSHAKE = 4;
    static final short CHALLENGE = 1;
    static final short PROOF = 2;
    static final short WELCOME = 3;

    /** A decoded frame as this test client sees it. */
    record Frame(int magic, byte version, byte kind, short type, short flags, short reserved, int length,
                 long correlationId, long arg0, long arg1, long arg2, long arg3, byte[] payload) {
    }

    private final Socket socket;
    private final DataInputStream in;
    private final OutputStream out;
    private byte[] acceptorNonce;
    private byte[] connectorNonce;

    RawPeer(Endpoint endpoint) throws IOException {
        socket = new Socket();
        socket.connect(new InetSocketAddress(endpoint.host(), endpoint.port()), 5000);
        socket.setSoTimeout(5000);
        in = new DataInputStream(socket.getInputStream());
        out = socket.getOutputStream();
    }

    static byte[] frame(byte kind, short type, int lengthField, long correlationId, long arg0, long arg1, long arg2,
                        long arg3, byte[] payload) {
        ByteBuffer buffer = ByteBuffer.allocate(HEADER + payload.length).order(ByteOrder.LITTLE_ENDIAN);
        buffer.putInt(MAGIC).put((byte) 1).put(kind).putShort(type).putShort((short) 0).putShort((short) 0)
                .putInt(lengthField).putLong(correlationId).putLong(arg0).putLong(arg1).putLong(arg2).putLong(arg3)
                .put(payload);
        return buffer.array();
    }

    void write(byte[] bytes) throws IOException {
        out.write(bytes);
        out.flush();
    }

    void shutdownOutput() throws IOException {
        socket.shutdownOutput();
    }

    Frame readFrame() throws IOException {
        byte[] header = new byte[HEADER];
        in.readFully(header);
        ByteBuffer b = ByteBuffer.wrap(header).order(ByteOrder.LITTLE_ENDIAN);
        int magic = b.getInt();
        byte version = b.get();
        byte kind = b.get();
        short type = b.getShort();
        short flags = b.getShort();
        short reserved = b.getShort();
        int length = b.getInt();
        if (length < 0 || length > (64 << 20)) {
            throw new IOException("absurd frame length " + length);
        }
        long correlationId = b.getLong();
        long arg0 = b.getLong();
        long arg1 = b.getLong();
        long arg2 = b.getLong();
        long arg3 = b.getLong();
        byte[] payload = new byte[length];
        in.readFully(payload);
        return new Frame(magic, version, kind, type, flags, reserved, length, correlationId, arg0, arg1, arg2, arg3,
                payload);
    }

    /** True if the other side closes this connection within the socket timeout (EOF or reset). */
    boolean closedByPeer() throws IOException {
        try {
            for (;;) {
                if (in.read() < 0) {
                    return true;
                }
            }
        } catch (SocketTimeoutException e) {
            return false;
        } catch (EOFException | SocketException e) {
            return true;
        }
    }

    /** Reads the acceptor's CHALLENGE and keeps its nonce. */
    Frame readChallenge() throws IOException {
        Frame challenge = readFrame();
        acceptorNonce = challenge.payload();
        return challenge;
    }

    /** Sends a PROOF for the last challenge, computed with {@code secret}. */
    void sendProof(int myRank, int acceptorRank, int clusterSize, byte[] secret) throws IOException {
        connectorNonce = new byte[32];
        new SecureRandom().nextBytes(connectorNonce);
        byte[] mac = hmac(secret, "dvmm proof v1", acceptorNonce, connectorNonce, myRank, acceptorRank, clusterSize);
        byte[] payload = new byte[64];
        System.arraycopy(connectorNonce, 0, payload, 0, 32);
        System.arraycopy(mac, 0, payload, 32, 32);
        write(frame(KIND_HANDSHAKE, PROOF, 64, 0, myRank, clusterSize, acceptorRank, 0, payload));
    }

    /** The whole connector side of the handshake; returns true if the acceptor's WELCOME proves the secret. */
    boolean authenticate(int myRank, int acceptorRank, int clusterSize, byte[] secret) throws IOException {
        readChallenge();
        sendProof(myRank, acceptorRank, clusterSize, secret);
        Frame welcome = readFrame();
        byte[] expected = hmac(secret, "dvmm welcome v1", connectorNonce, acceptorNonce, acceptorRank, myRank,
                clusterSize);
        return welcome.kind() == KIND_HANDSHAKE && welcome.type() == WELCOME
                && Arrays.equals(expected, welcome.payload());
    }

    static byte[] hmac(byte[] secret, String label, byte[] firstNonce, byte[] secondNonce, int firstRank,
                       int secondRank, int clusterSize) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(secret, "HmacSHA256"));
            mac.update(label.getBytes(StandardCharsets.US_ASCII));
            mac.update(firstNonce);
            mac.update(secondNonce);
            mac.update(ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN)
                    .putInt(firstRank).putInt(secondRank).putInt(clusterSize).array());
            return mac.doFinal();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
