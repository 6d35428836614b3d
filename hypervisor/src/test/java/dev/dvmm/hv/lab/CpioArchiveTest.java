package dev.dvmm.hv.lab;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CpioArchiveTest {
    record Entry(String name, int mode, int rdevMajor, int rdevMinor, byte[] data) {}

    /** An independent newc reader: fixed 110-byte ASCII headers, name and data padded to 4 bytes. */
    static List<Entry> read(byte[] a) {
        List<Entry> entries = new ArrayList<>();
        int pos = 0;
        while (true) {
            assertEquals("070701", new String(a, pos, 6, StandardCharsets.US_ASCII), "magic at " + pos);
            int mode = field(a, pos, 1);
            int size = field(a, pos, 6);
            int rdevMajor = field(a, pos, 9);
            int rdevMinor = field(a, pos, 10);
            int nameSize = field(a, pos, 11);
            String name = new String(a, pos + 110, nameSize - 1, StandardCharsets.UTF_8);
            assertEquals(0, a[pos + 110 + nameSize - 1], "name NUL-terminated");
            int data = (pos + 110 + nameSize + 3) & ~3;
            if (name.equals("TRAILER!!!")) {
                assertEquals(0, (data) % 4);
                return entries;
            }
            byte[] content = java.util.Arrays.copyOfRange(a, data, data + size);
            entries.add(new Entry(name, mode, rdevMajor, rdevMinor, content));
            pos = (data + size + 3) & ~3;
        }
    }

    private static int field(byte[] a, int header, int index) {
        return Integer.parseInt(new String(a, header + 6 + index * 8, 8, StandardCharsets.US_ASCII), 16);
    }

    private static byte[] sample() throws IOException {
        var out = new ByteArrayOutputStream();
        try (CpioArchive cpio = new CpioArchive(out)) {
            cpio.directory("bin", 0755);
            cpio.file("bin/tool", 0755, "abc".getBytes(StandardCharsets.UTF_8));
            cpio.symlink("bin/sh", "/bin/tool");
            cpio.characterDevice("console", 0600, 5, 1);
            cpio.file("empty", 0644, new byte[0]);
        }
        return out.toByteArray();
    }

    @Test
    void entriesReadBackWithTypesModesAndContent() throws IOException {
        byte[] archive = sample();
        assertEquals(0, archive.length % 4);
        List<Entry> e = read(archive);
        assertEquals(List.of("bin", "bin/tool", "bin/sh", "console", "empty"), e.stream().map(Entry::name).toList());
        assertEquals(0040755, e.get(0).mode());
        assertEquals(0100755, e.get(1).mode());
        assertArrayEquals("abc".getBytes(StandardCharsets.UTF_8), e.get(1).data());
        assertEquals(0120777, e.get(2).mode());
        assertArrayEquals("/bin/tool".getBytes(StandardCharsets.UTF_8), e.get(2).data());
        assertEquals(0020600, e.get(3).mode());
        assertEquals(5, e.get(3).rdevMajor());
        assertEquals(1, e.get(3).rdevMinor());
        assertEquals(0, e.get(4).data().length);
    }

    @Test
    void sameInputsGiveTheSameBytes() throws IOException {
        assertArrayEquals(sample(), sample());
    }

    @Test
    void absolutePathsAreRefused() {
        var cpio = new CpioArchive(new ByteArrayOutputStream());
        assertThrows(IllegalArgumentException.class, () -> cpio.file("/etc/passwd", 0644, new byte[1]));
    }

    @Test
    void gnuCpioUnpacksIt(@TempDir Path dir) throws Exception {
        Assumptions.assumeTrue(QemuBinary.onPath("cpio") != null, "cpio tool not installed");
        var out = new ByteArrayOutputStream();
        try (CpioArchive cpio = new CpioArchive(out)) {
            cpio.directory("d", 0755);
            cpio.file("d/f", 0644, "hello\n".getBytes(StandardCharsets.UTF_8));
            cpio.symlink("d/l", "f");
        }
        Path archive = dir.resolve("a.cpio");
        Files.write(archive, out.toByteArray());
        Path x = Files.createDirectory(dir.resolve("x"));
        Process p = new ProcessBuilder("cpio", "-idm", "--quiet").directory(x.toFile())
                .redirectInput(archive.toFile()).redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), log);
        assertEquals("hello\n", Files.readString(x.resolve("d/f")));
        assertEquals(Path.of("f"), Files.readSymbolicLink(x.resolve("d/l")));
    }
}
