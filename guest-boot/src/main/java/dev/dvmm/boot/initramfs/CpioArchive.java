package dev.dvmm.boot.initramfs;

import dev.dvmm.boot.BootException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * An initramfs in the cpio "newc" format the kernel unpacks (header magic 070701, 13 fields of 8
 * hex digits, name and data each padded to 4 bytes, closed by a TRAILER!!! entry). The output is
 * deterministic: entries keep the order they were added in, inode numbers count from 1, and every
 * mtime, uid and gid is zero, so the same entries always give the same bytes. Parent directories
 * are added (mode 0755) before their first child, because the kernel does not create them.
 */
public final class CpioArchive {
    public static final int S_IFDIR = 0040000;
    public static final int S_IFREG = 0100000;
    public static final int S_IFLNK = 0120000;
    public static final int S_IFCHR = 0020000;
    public static final int S_IFBLK = 0060000;
    static final String MAGIC = "070701";
    static final String TRAILER = "TRAILER!!!";
    static final int HEADER_SIZE = 110;

    private record Entry(String name, int mode, byte[] data, int rdevMajor, int rdevMinor) {}

    private final List<Entry> entries = new ArrayList<>();
    private final Set<String> names = new HashSet<>();

    /** A directory, e.g. {@code directory("/proc", 0755)}. */
    public CpioArchive directory(String path, int permissions) {
        return add(path, S_IFDIR, permissions, new byte[0], 0, 0);
    }

    /** A regular file with {@code content}. */
    public CpioArchive file(String path, int permissions, byte[] content) {
        return add(path, S_IFREG, permissions, content, 0, 0);
    }

    /** A symbolic link at {@code path} pointing to {@code target}. */
    public CpioArchive symlink(String path, String target) {
        if (target.isEmpty() || target.indexOf('\0') >= 0) {
            throw new BootException(BootException.Kind.INVALID_ARGUMENT, "initramfs: symlink " + path + " needs a target without NUL.");
        }
        return add(path, S_IFLNK, 0777, target.getBytes(StandardCharsets.UTF_8), 0, 0);
    }

    /** A character device node (the kernel opens /dev/console before init runs). */
    public CpioArchive characterDevice(String path, int permissions, int major, int minor) {
        return add(path, S_IFCHR, permissions, new byte[0], major, minor);
    }

    /** A block device node. */
    public CpioArchive blockDevice(String path, int permissions, int major, int minor) {
        return add(path, S_IFBLK, permissions, new byte[0], major, minor);
    }

    private CpioArchive add(String path, int type, int permissions, byte[] data, int major, int minor) {
        String name = normalize(path);
        if ((permissions & ~07777) != 0) {
            throw new BootException(BootException.Kind.INVALID_ARGUMENT, String.format("initramfs: %s: mode %o has bits beyond 07777.", path, permissions));
        }
        if (major < 0 || minor < 0) {
            throw new BootException(BootException.Kind.INVALID_ARGUMENT, "initramfs: " + path + ": device numbers must not be negative.");
        }
        if (names.contains(name)) {
            throw new BootException(BootException.Kind.INVALID_ARGUMENT, "initramfs: " + path + " is added twice.");
        }
        int slash = name.lastIndexOf('/');
        if (slash > 0 && !names.contains(name.substring(0, slash))) {
            directory(name.substring(0, slash), 0755);
        }
        names.add(name);
        entries.add(new Entry(name, type | permissions, data.clone(), major, minor));
        return this;
    }

    /** "/bin/sh" and "bin/sh" name the same entry; "..", "." and empty components are refused. */
    private static String normalize(String path) {
        String name = path.startsWith("/") ? path.substring(1) : path;
        if (name.isEmpty()) {
            throw new BootException(BootException.Kind.INVALID_ARGUMENT, "initramfs: an entry needs a name other than \"/\".");
        }
        for (String part : name.split("/", -1)) {
            if (part.isEmpty() || part.equals(".") || part.equals("..")) {
                throw new BootException(BootException.Kind.INVALID_ARGUMENT, "initramfs: \"" + path + "\" is not a clean path (empty, . or .. component).");
            }
        }
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            if (c < 0x20 || c > 0x7e) {
                throw new BootException(BootException.Kind.INVALID_ARGUMENT, "initramfs: \"" + path + "\" has a character that is not printable ASCII.");
            }
        }
        return name;
    }

    /** Number of entries, not counting the trailer. */
    public int size() {
        return entries.size();
    }

    public void writeTo(OutputStream out) throws IOException {
        int inode = 1;
        for (Entry e : entries) {
            int links = (e.mode & 0170000) == S_IFDIR ? 2 : 1;
            writeEntry(out, inode++, e.mode, links, e.rdevMajor, e.rdevMinor, e.name, e.data);
        }
        writeEntry(out, 0, 0, 1, 0, 0, TRAILER, new byte[0]);
    }

    public byte[] toByteArray() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            writeTo(out);
        } catch (IOException e) {
            throw new UncheckedIOException(e); // a ByteArrayOutputStream does not throw
        }
        return out.toByteArray();
    }

    private static void writeEntry(OutputStream out, int inode, int mode, int links, int rdevMajor, int rdevMinor,
                                   String name, byte[] data) throws IOException {
        byte[] nameBytes = name.getBytes(StandardCharsets.US_ASCII);
        StringBuilder h = new StringBuilder(HEADER_SIZE).append(MAGIC);
        hex(h, inode);
        hex(h, mode);
        hex(h, 0);              // uid
        hex(h, 0);              // gid
        hex(h, links);
        hex(h, 0);              // mtime: fixed, for reproducible images
        hex(h, data.length);
        hex(h, 0);              // devmajor of the archive's file system
        hex(h, 0);              // devminor
        hex(h, rdevMajor);
        hex(h, rdevMinor);
        hex(h, nameBytes.length + 1);
        hex(h, 0);              // check: unused in newc
        out.write(h.toString().getBytes(StandardCharsets.US_ASCII));
        out.write(nameBytes);
        out.write(0);
        pad(out, HEADER_SIZE + nameBytes.length + 1);
        out.write(data);
        pad(out, data.length);
    }

    private static void hex(StringBuilder h, long value) {
        String digits = Long.toHexString(value & 0xffff_ffffL).toUpperCase(java.util.Locale.ROOT);
        h.append("0".repeat(8 - digits.length())).append(digits);
    }

    private static void pad(OutputStream out, long written) throws IOException {
        for (long i = written; (i & 3) != 0; i++) {
            out.write(0);
        }
    }
}
