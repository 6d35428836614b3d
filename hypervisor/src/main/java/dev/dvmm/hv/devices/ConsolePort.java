package dev.dvmm.hv.devices;

import dev.dvmm.hv.bus.BusDevice;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/**
 * Write-only console port (8250 transmit-register compatible for byte writes): bytes the guest writes
 * are kept for inspection and, when an output is given, streamed to it.
 */
public final class ConsolePort implements BusDevice {
    private final ByteArrayOutputStream captured = new ByteArrayOutputStream();
    private final OutputStream out;

    public ConsolePort(OutputStream out) {
        this.out = out;
    }

    @Override
    public long read(int vcpu, long offset, int size) {
        // Line status register (offset 5): transmitter always empty, so polling guests never wait.
        return offset == 5 ? 0x60 : 0;
    }

    @Override
    public synchronized void write(int vcpu, long offset, int size, long value) {
        if (offset != 0) {
            return;
        }
        captured.write((int) value);
        if (out != null) {
            try {
                out.write((int) value);
                if (value == '\n') {
                    out.flush();
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    /** Everything written so far. */
    public synchronized String text() {
        return captured.toString(StandardCharsets.ISO_8859_1);
    }
}
