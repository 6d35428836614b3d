package dev.dvmm.hv.lab;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BzImageTest {
    /** A minimal bzImage: setup header with payload fields, then a gzip payload and trailing bytes. */
    private static byte[] bzImage(byte[] vmlinux, int setupSects) throws IOException {
        var gz = new ByteArrayOutputStream();
        try (var out = new GZIPOutputStream(gz)) {
            out.write(vmlinux);
        }
        byte[] payload = gz.toByteArray();
        int pmStart = ((setupSects == 0 ? 4 : setupSects) + 1) * 512; // boot protocol: 0 means 4
        int payloadOffset = 0x100;
        ByteBuffer b = ByteBuffer.allocate(pmStart + payloadOffset + payload.length + 64).order(ByteOrder.LITTLE_ENDIAN);
        b.put(0x1f1, (byte) setupSects);
        b.putInt(0x202, 0x53726448);
        b.putShort(0x206, (short) 0x020f);
        b.putInt(0x248, payloadOffset);
        b.putInt(0x24c, payload.length);
        b.put(pmStart + payloadOffset, payload);
        return b.array();
    }

    @Test
    void gzipPayloadUnpacksToTheElf(@TempDir Path dir) throws IOException {
        byte[] elf = new byte[5000];
        elf[0] = 0x7f;
        elf[1] = 'E';
        elf[2] = 'L';
        elf[3] = 'F';
        for (int i = 4; i < elf.length; i++) {
            elf[i] = (byte) (i * 31);
        }
        Path in = dir.resolve("vmlinuz");
        Files.write(in, bzImage(elf, 30));
        Path out = dir.resolve("vmlinux");
        BzImage.extractVmlinux(in, out);
        assertArrayEquals(elf, Files.readAllBytes(out));
    }

    @Test
    void payloadFieldsAreReadFromTheSetupHeader() throws IOException {
        byte[] image = bzImage(new byte[] {0x7f, 'E', 'L', 'F'}, 0); // 0 setup sectors means 4
        BzImage.Payload p = BzImage.payload(image);
        assertEquals(5 * 512 + 0x100, p.offset());
        assertEquals((byte) 0x1f, image[p.offset()]);
    }

    @Test
    void nonElfPayloadIsRefused(@TempDir Path dir) throws IOException {
        Path in = dir.resolve("vmlinuz");
        Files.write(in, bzImage("not an elf".getBytes(java.nio.charset.StandardCharsets.US_ASCII), 30));
        assertThrows(LabException.class, () -> BzImage.extractVmlinux(in, dir.resolve("vmlinux")));
    }

    @Test
    void notABzImage() {
        assertThrows(LabException.class, () -> BzImage.payload(new byte[4096]));
    }
}
