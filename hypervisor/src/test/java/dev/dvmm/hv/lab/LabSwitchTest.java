package dev.dvmm.hv.lab;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The switch speaks QEMU's stream netdev framing; these clients play three VMs. */
class LabSwitchTest {
    private static final byte[] BROADCAST = {-1, -1, -1, -1, -1, -1};

    private static byte[] mac(int n) {
        return new byte[] {0x52, 0x54, 0, 0x77, 0, (byte) n};
    }

    private static byte[] frame(byte[] dst, byte[] src, String payload) {
        byte[] p = payload.getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        byte[] f = new byte[14 + p.length];
        System.arraycopy(dst, 0, f, 0, 6);
        System.arraycopy(src, 0, f, 6, 6);
        f[12] = 0x08;
        System.arraycopy(p, 0, f, 14, p.length);
        return f;
    }

    private static void send(SocketChannel ch, byte[] frame) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(4 + frame.length).putInt(frame.length).put(frame).flip();
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    private static byte[] receive(SocketChannel ch) throws IOException {
        ByteBuffer len = ByteBuffer.allocate(4);
        while (len.hasRemaining()) {
            if (ch.read(len) < 0) {
                throw new IOException("switch closed the port");
            }
        }
        ByteBuffer f = ByteBuffer.allocate(len.getInt(0));
        while (f.hasRemaining()) {
            if (ch.read(f) < 0) {
                throw new IOException("switch closed the port");
            }
        }
        return f.array();
    }

    private static SocketChannel connect(Path socket) throws IOException {
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        ch.connect(UnixDomainSocketAddress.of(socket));
        return ch;
    }

    /** A connect returns before the switch has registered the port; frames sent earlier would miss it. */
    private static void awaitPorts(LabSwitch sw, int n) {
        while (sw.ports() < n) {
            Thread.onSpinWait();
        }
    }

    @Test
    @Timeout(60)
    void broadcastFloodsAndUnicastGoesOnlyToItsOwner(@TempDir Path dir) throws IOException {
        try (LabSwitch sw = new LabSwitch(dir.resolve("s.sock"));
             SocketChannel a = connect(sw.socket()); SocketChannel b = connect(sw.socket());
             SocketChannel c = connect(sw.socket())) {
            awaitPorts(sw, 3);
            // Each announces itself by broadcast; the others see it, the switch learns the sender.
            byte[] fromA = frame(BROADCAST, mac(1), "who-has from a");
            send(a, fromA);
            assertArrayEquals(fromA, receive(b));
            assertArrayEquals(fromA, receive(c));
            byte[] fromB = frame(BROADCAST, mac(2), "hello from b");
            send(b, fromB);
            assertArrayEquals(fromB, receive(a));
            assertArrayEquals(fromB, receive(c));
            byte[] fromC = frame(BROADCAST, mac(3), "hello from c");
            send(c, fromC);
            assertArrayEquals(fromC, receive(a));
            assertArrayEquals(fromC, receive(b));

            byte[] unicast = frame(mac(2), mac(1), "a to b only");
            send(a, unicast);
            assertArrayEquals(unicast, receive(b));
            // Frames from one port keep their order, so if the unicast had leaked to c it would come first.
            byte[] marker = frame(BROADCAST, mac(1), "marker");
            send(a, marker);
            byte[] atC = receive(c);
            assertEquals("marker", new String(Arrays.copyOfRange(atC, 14, atC.length),
                    java.nio.charset.StandardCharsets.US_ASCII));
            assertArrayEquals(marker, receive(b));
        }
    }

    @Test
    @Timeout(60)
    void largeFramesPassWhole(@TempDir Path dir) throws IOException {
        try (LabSwitch sw = new LabSwitch(dir.resolve("s.sock"));
             SocketChannel a = connect(sw.socket()); SocketChannel b = connect(sw.socket())) {
            awaitPorts(sw, 2);
            byte[] big = frame(BROADCAST, mac(1), "x".repeat(65000));
            send(a, big);
            assertArrayEquals(big, receive(b));
        }
    }
}
