package dev.dvmm.hv.lab;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Writes a cpio archive in the "newc" format that the Linux kernel unpacks as an initramfs.
 * Entries are written in call order; parents must come before their children.
 */
public final class CpioArchive implements AutoCloseable {
    private static final int S_IFDIR = 0040000;
    private static final int S_IFREG = 0100000;
    private static final int S_IFLNK = 0120000;
    private static final int S_IFCHR = 0020000;

    private final OutputStream out;
    private long written;
    private int nextInode = 1;
    private boolean finished;

    public CpioArchive(OutputStream out) {
        this.out = out;
    }

    public void directory(String path, int mode) throws IOException {
        entry(path, S_IFDIR | mode, 0, 0, new byte[0]);
    }

    public void file(String path, int mode, byte[] content) throws IOException {
        entry(path, S_IFREG | mode, 0, 0, content);
    }

    public void symlink(String path, String target) throws IOException {
        entry(path, S_IFLNK | 0777, 0, 0, target.getBytes(StandardCharsets.UTF_8));
    }

    public void characterDevice(String path, int mode, int major, int minor) throws IOException {
        entry(path, S_IFCHR | mode, major, minor, new byte[0]);
    }

    /** Writes the trailer; the archive is complete after this. */
    public void finish() throws IOException {
        if (!finished) {
            header("TRAILER!!!", 0, 0, 0, 0, 0);
            pad();
            finished = true;
        }
    }

    @Override
    public void close() throws IOException {
        finish();
        out.close();
    }

    private void entry(String path, int mode, int rdevMajor, int rdevMinor, byte[] content)
            throws IOException {
        if (finished) {
            throw new IllegalStateException("cpio archive already finished");
        }
        if (path.isEmpty() || path.startsWith("/") || path.contains("//")) {
            throw new IllegalArgumentException("cpio path must be relative and normalized: " + path);
        }
        header(path, nextInode++, mode, content.length, rdevMajor, rdevMinor);
        write(content);
        pad();
    }

    private void header(String name, int inode, int mode, int size, int rdevMajor, int rdevMinor)
            throws IOException {
        byte[] nameBytes = name.getBytes(StandardCharsets.UTF_8);
        StringBuilder h = new StringBuilder(110);
        h.append("070701");
        hex(h, inode);
        hex(h, mode);
        hex(h, 0); // uid: root
        hex(h, 0); // gid: root
        hex(h, (mode & 0170000) == S_IFDIR ? 2 : 1); // nlink
        hex(h, 0); // mtime: fixed, so the same inputs give the same archive
        hex(h, size);
        hex(h, 0); // dev major
        hex(h, 0); // dev minor
        hex(h, rdevMajor);
        hex(h, rdevMinor);
        hex(h, nameBytes.length + 1);
        hex(h, 0); // check
        write(h.toString().getBytes(StandardCharsets.US_ASCII));
        write(nameBytes);
        write(new byte[] {0});
        pad();
    }

    private static void hex(StringBuilder h, long value) {
        String s = Long.toHexString(value);
        h.append("0".repeat(8 - s.length())).append(s);
    }

    private void write(byte[] bytes) throws IOException {
        out.write(bytes);
        written += bytes.length;
    }

    private void pad() throws IOException {
        int padding = (int) ((4 - (written & 3)) & 3);
        if (padding > 0) {
            write(new byte[padding]);
        }
    }
}
