package dev.dvmm.hv.lab;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The lab's virtual Ethernet: a learning switch that QEMU's {@code -netdev stream} back ends
 * connect to over one UNIX socket. Frames never touch the host's IP stack, so the VMs may use any
 * addresses among themselves. Stream framing: a 4-byte big-endian length, then the frame.
 */
final class LabSwitch implements AutoCloseable {
    /** Larger than any frame QEMU sends (64 KiB with offloads). */
    private static final int MAX_FRAME = 65536 + 64;
    private static final int MAX_PORTS = 64;

    private final Path socket;
    private final ServerSocketChannel server;
    private final List<Port> ports = new ArrayList<>();
    private final Thread acceptor;
    // MAC table: written and read under the lock of `this`; small, so a linear scan.
    private final long[] macs = new long[MAX_PORTS * 4];
    private final Port[] macPorts = new Port[MAX_PORTS * 4];
    private int macCount;
    private volatile boolean closed;

    LabSwitch(Path socket) {
        this.socket = socket;
        try {
            Files.deleteIfExists(socket);
            server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            server.bind(UnixDomainSocketAddress.of(socket));
        } catch (IOException e) {
            throw new LabException("cannot listen on " + socket + " for the lab network: " + e.getMessage(), e);
        }
        acceptor = Thread.ofPlatform().daemon().name("lab-switch-accept").start(this::acceptLoop);
    }

    Path socket() {
        return socket;
    }

    /** How many VMs are connected. */
    synchronized int ports() {
        return ports.size();
    }

    private void acceptLoop() {
        while (!closed) {
            try {
                SocketChannel ch = server.accept();
                Port port;
                synchronized (this) {
                    if (ports.size() >= MAX_PORTS) {
                        ch.close();
                        continue;
                    }
                    port = new Port(ch, ports.size());
                    ports.add(port);
                }
                Thread.ofPlatform().daemon().name("lab-switch-port-" + port.index).start(() -> forward(port));
            } catch (ClosedChannelException e) {
                return;
            } catch (IOException e) {
                if (closed) {
                    return;
                }
            }
        }
    }

    /** Reads frames from one VM and sends each to the port that owns its destination MAC, or floods. */
    private void forward(Port in) {
        ByteBuffer header = in.rxHeader;
        ByteBuffer frame = in.rxFrame;
        try {
            while (true) {
                header.clear();
                if (!readFully(in.channel, header)) {
                    return;
                }
                int length = header.getInt(0);
                if (length < 14 || length > MAX_FRAME) {
                    return; // not a stream netdev, or a broken one: drop the port
                }
                frame.clear().limit(length);
                if (!readFully(in.channel, frame)) {
                    return;
                }
                long dst = mac(frame, 0);
                long src = mac(frame, 6);
                Port target;
                synchronized (this) {
                    learn(src, in);
                    target = (frame.get(0) & 1) != 0 ? null : lookup(dst);
                }
                if (target != null) {
                    if (target != in) {
                        send(in, target, length);
                    }
                } else {
                    for (int i = 0; ; i++) {
                        Port p;
                        synchronized (this) {
                            if (i >= ports.size()) {
                                break;
                            }
                            p = ports.get(i);
                        }
                        if (p != in) {
                            send(in, p, length);
                        }
                    }
                }
            }
        } catch (IOException e) {
            // The VM went away; its port simply stops forwarding.
        } finally {
            try {
                in.channel.close();
            } catch (IOException ignored) {
                // Closing a dead channel.
            }
        }
    }

    /** Writes the frame held in {@code from}'s receive buffers to {@code to}; one writer per port at a time. */
    private static void send(Port from, Port to, int length) {
        synchronized (to) {
            from.rxHeader.rewind();
            from.rxFrame.position(0).limit(length);
            try {
                while (from.rxFrame.hasRemaining()) {
                    to.channel.write(from.txPair);
                }
            } catch (IOException e) {
                // A VM that stopped reading loses the frame, like a real link going down.
            }
        }
    }

    private void learn(long mac, Port port) {
        for (int i = 0; i < macCount; i++) {
            if (macs[i] == mac) {
                macPorts[i] = port;
                return;
            }
        }
        if (macCount < macs.length) {
            macs[macCount] = mac;
            macPorts[macCount++] = port;
        }
    }

    private Port lookup(long mac) {
        for (int i = 0; i < macCount; i++) {
            if (macs[i] == mac) {
                return macPorts[i];
            }
        }
        return null;
    }

    private static long mac(ByteBuffer frame, int offset) {
        return ((frame.getShort(offset) & 0xffffL) << 32) | (frame.getInt(offset + 2) & 0xffffffffL);
    }

    private static boolean readFully(SocketChannel ch, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) {
            if (ch.read(buf) < 0) {
                return false;
            }
        }
        return true;
    }

    @Override
    public void close() {
        closed = true;
        try {
            server.close();
        } catch (IOException ignored) {
            // Already closed.
        }
        synchronized (this) {
            for (Port p : ports) {
                try {
                    p.channel.close();
                } catch (IOException ignored) {
                    // Already closed.
                }
            }
        }
        try {
            acceptor.join(1000);
            Files.deleteIfExists(socket);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (IOException ignored) {
            // A stale socket file in the run directory is removed with it.
        }
    }

    private static final class Port {
        final SocketChannel channel;
        final int index;
        final ByteBuffer rxHeader = ByteBuffer.allocate(4);
        final ByteBuffer rxFrame = ByteBuffer.allocate(MAX_FRAME);
        /** The header and frame as one gathering write, so a frame goes out without copying. */
        final ByteBuffer[] txPair = {rxHeader, rxFrame};

        Port(SocketChannel channel, int index) {
            this.channel = channel;
            this.index = index;
        }
    }
}
