package dev.dvmm.hv.lab;

import java.io.IOException;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * One virtio-serial port of a lab VM, seen from the host: a UNIX socket the lab listens on before
 * QEMU starts (QEMU connects as the client), copied byte for byte into a sink until the VM ends.
 */
final class GuestChannel implements AutoCloseable {
    private final Path socket;
    private final ServerSocketChannel server;
    private final Thread pump;
    private volatile boolean connected;

    GuestChannel(Path socket, OutputStream sink, String name) {
        this.socket = socket;
        try {
            Files.deleteIfExists(socket);
            server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            server.bind(UnixDomainSocketAddress.of(socket));
        } catch (IOException e) {
            throw new LabException("cannot listen on " + socket + ": " + e.getMessage(), e);
        }
        pump = Thread.ofPlatform().daemon().name(name).start(() -> copy(sink));
    }

    Path socket() {
        return socket;
    }

    boolean connected() {
        return connected;
    }

    private void copy(OutputStream sink) {
        byte[] chunk = new byte[16384];
        ByteBuffer buf = ByteBuffer.wrap(chunk);
        try (SocketChannel ch = server.accept()) {
            connected = true;
            int n;
            while ((n = ch.read(buf.clear())) >= 0) {
                if (n > 0) {
                    sink.write(chunk, 0, n);
                    sink.flush();
                }
            }
        } catch (IOException e) {
            // The VM ended or the lab closed the socket: nothing more will come.
        } finally {
            try {
                sink.flush();
            } catch (IOException ignored) {
                // The sink is gone too.
            }
        }
    }

    /** Waits until the VM's side has closed and everything it sent is in the sink. */
    void drain(long millis) throws InterruptedException {
        pump.join(millis);
    }

    @Override
    public void close() {
        try {
            server.close();
            Files.deleteIfExists(socket);
        } catch (IOException ignored) {
            // Removed with the run directory.
        }
    }
}
