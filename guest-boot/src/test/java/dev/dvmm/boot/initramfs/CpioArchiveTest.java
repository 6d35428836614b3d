package dev.dvmm.boot.initramfs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.dvmm.boot.BootException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CpioArchiveTest {
    private static final byte[] INIT = "#!/bin/sh\necho hello from dvmm\nexec /bin/sh\n".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] DATA = new byte[] {1, 2, 3, 4, 5}; // length not a multiple of 4

    static CpioArchive sample() {
        return new CpioArchive()
                .directory("/dev", 0755)
                .characterDevice("/dev/console", 0600, 5, 1)
                .file("/init", 0755, INIT)
                .file("/etc/data.bin", 0640, DATA)
                .file("/empty", 0644, new byte[0])
                .symlink("/bin/sh", "busybox");
    }

    /** One parsed newc entry. */
    record Entry(String name, int mode, int links, long mtime, int rdevMajor, int rdevMinor, byte[] data) {}

    /** A newc reader written from the format description, independent of the writer. */
    static List<Entry> parse(byte[] archive) {
        List<Entry> entries = new ArrayList<>();
        int at = 0;
        while (true) {
            String header = new String(archive, at, 110, StandardCharsets.US_ASCII);
            assertEquals("070701", header.substring(0, 6), "magic at " + at);
            long[] f = new long[13];
            for (int i = 0; i < 13; i++) {
                f[i] = Long.parseLong(header.substring(6 + i * 8, 14 + i * 8), 16);
            }
            int nameSize = (int) f[11];
            String name = new String(archive, at + 110, nameSize - 1, StandardCharsets.US_ASCII);
            assertEquals(0, archive[at + 110 + nameSize - 1], "name is NUL-terminated");
            int dataAt = (at + 110 + nameSize + 3) & ~3;
            int size = (int) f[6];
            byte[] data = java.util.Arrays.copyOfRange(archive, dataAt, dataAt + size);
            at = (dataAt + size + 3) & ~3;
            if (name.equals("TRAILER!!!")) {
                assertEquals(archive.length, at, "nothing after the trailer");
                return entries;
            }
            entries.add(new Entry(name, (int) f[1], (int) f[4], f[5], (int) f[9], (int) f[10], data));
        }
    }

    @Test
    void archiveParsesBackWithParentsFirstAndFixedMetadata() {
        byte[] archive = sample().toByteArray();
        assertEquals(0, archive.length % 4);
        List<Entry> e = parse(archive);
        assertEquals(List.of("dev", "dev/console", "init", "etc", "etc/data.bin", "empty", "bin", "bin/sh"),
                e.stream().map(Entry::name).toList());
        assertEquals(CpioArchive.S_IFCHR | 0600, e.get(1).mode());
        assertEquals(5, e.get(1).rdevMajor());
        assertEquals(1, e.get(1).rdevMinor());
        assertEquals(CpioArchive.S_IFREG | 0755, e.get(2).mode());
        assertArrayEquals(INIT, e.get(2).data());
        assertEquals(CpioArchive.S_IFDIR | 0755, e.get(3).mode(), "parent directory added");
        assertEquals(2, e.get(3).links());
        assertArrayEquals(DATA, e.get(4).data());
        assertEquals(0, e.get(5).data().length);
        assertEquals(CpioArchive.S_IFLNK | 0777, e.get(7).mode());
        assertArrayEquals("busybox".getBytes(StandardCharsets.US_ASCII), e.get(7).data());
        for (Entry entry : e) {
            assertEquals(0, entry.mtime(), entry.name() + " mtime");
        }
    }

    @Test
    void sameEntriesGiveTheSameBytes() throws NoSuchAlgorithmException {
        byte[] a = sample().toByteArray();
        byte[] b = sample().toByteArray();
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        assertEquals(HexFormat.of().formatHex(sha.digest(a)), HexFormat.of().formatHex(sha.digest(b)));
        byte[] c = sample().file("/extra", 0644, new byte[] {9}).toByteArray();
        assertTrue(!java.util.Arrays.equals(a, c), "a different archive differs");
    }

    @Test
    void badEntriesAreRefused() {
        assertThrows(BootException.class, () -> new CpioArchive().file("/a/../b", 0644, new byte[0]));
        assertThrows(BootException.class, () -> new CpioArchive().file("/", 0644, new byte[0]));
        assertThrows(BootException.class, () -> new CpioArchive().file("a//b", 0644, new byte[0]));
        assertThrows(BootException.class, () -> new CpioArchive().file("/x", 010000, new byte[0]));
        assertThrows(BootException.class, () -> new CpioArchive().file("/x", 0644, new byte[0]).file("x", 0644, new byte[0]));
        assertThrows(BootException.class, () -> new CpioArchive().symlink("/x", ""));
        assertThrows(BootException.class, () -> new CpioArchive().characterDevice("/c", 0600, -1, 0));
        BootException e = assertThrows(BootException.class, () -> new CpioArchive().file("/caf\u00e9", 0644, new byte[0]));
        assertEquals(BootException.Kind.INVALID_ARGUMENT, e.kind());
    }

    private static Path cpio() {
        for (String dir : List.of("/usr/bin", "/bin", "/usr/local/bin")) {
            Path p = Path.of(dir, "cpio");
            if (Files.isExecutable(p)) {
                return p;
            }
        }
        return null;
    }

    private static String run(Path dir, byte[] stdin, String... command) throws IOException, InterruptedException {
        Process process = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
        try (var in = process.getOutputStream()) {
            in.write(stdin);
        }
        String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(process.waitFor(60, TimeUnit.SECONDS), "cpio finished");
        assertEquals(0, process.exitValue(), String.join(" ", command) + ": " + out);
        return out;
    }

    @Test
    void systemCpioListsAndExtractsTheArchive(@TempDir Path dir) throws IOException, InterruptedException {
        Path cpio = cpio();
        assumeTrue(cpio != null, "no cpio tool on this machine (apt-get install cpio)");
        byte[] archive = sample().toByteArray();

        String listing = run(dir, archive, cpio.toString(), "-t", "--quiet");
        assertEquals(List.of("dev", "dev/console", "init", "etc", "etc/data.bin", "empty", "bin", "bin/sh"),
                listing.lines().toList());

        String verbose = run(dir, archive, cpio.toString(), "-tv", "--quiet");
        List<String> lines = verbose.lines().toList();
        assertTrue(lines.get(0).startsWith("drwxr-xr-x"), lines.get(0));
        assertTrue(lines.get(1).startsWith("crw-------") && lines.get(1).contains("5,"), lines.get(1));
        assertTrue(lines.get(2).startsWith("-rwxr-xr-x"), lines.get(2));
        assertTrue(lines.get(4).startsWith("-rw-r-----"), lines.get(4));
        assertTrue(lines.get(7).startsWith("lrwxrwxrwx") && lines.get(7).endsWith("bin/sh -> busybox"), lines.get(7));

        // Extract everything but the device node (mknod may be refused in a container).
        Path out = Files.createDirectory(dir.resolve("root"));
        run(out, archive, cpio.toString(), "-i", "--quiet", "--make-directories", "--no-absolute-filenames",
                "--nonmatching", "dev/console");
        assertArrayEquals(INIT, Files.readAllBytes(out.resolve("init")));
        assertArrayEquals(DATA, Files.readAllBytes(out.resolve("etc/data.bin")));
        assertEquals(0, Files.size(out.resolve("empty")));
        assertEquals("rwxr-xr-x", PosixFilePermissions.toString(Files.getPosixFilePermissions(out.resolve("init"))));
        assertEquals("rw-r-----", PosixFilePermissions.toString(Files.getPosixFilePermissions(out.resolve("etc/data.bin"))));
        assertEquals(Path.of("busybox"), Files.readSymbolicLink(out.resolve("bin/sh")));
        assertTrue(Files.isDirectory(out.resolve("dev")));
    }
}
