package dev.dvmm.hv.lab;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Output of one of several lab hosts: each complete line goes to the shared target, prefixed
 * with the host's rank, in one write under the target's lock so lines of hosts never mix.
 */
final class PrefixedLines extends OutputStream {
    private final OutputStream target;
    private final byte[] prefix;
    private final ByteArrayOutputStream line = new ByteArrayOutputStream(256);

    PrefixedLines(OutputStream target, String prefix) {
        this.target = target;
        this.prefix = prefix.getBytes(StandardCharsets.UTF_8);
    }

    @Override
    public void write(int b) throws IOException {
        line.write(b);
        if (b == '\n') {
            emit();
        }
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
        int start = off;
        for (int i = off; i < off + len; i++) {
            if (b[i] == '\n') {
                line.write(b, start, i + 1 - start);
                emit();
                start = i + 1;
            }
        }
        line.write(b, start, off + len - start);
    }

    /** Writes a last unterminated line, if any. */
    @Override
    public void close() throws IOException {
        if (line.size() > 0) {
            line.write('\n');
            emit();
        }
    }

    private void emit() throws IOException {
        synchronized (target) {
            target.write(prefix);
            line.writeTo(target);
            target.flush();
        }
        line.reset();
    }
}
