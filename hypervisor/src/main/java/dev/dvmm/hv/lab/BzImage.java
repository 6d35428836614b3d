package dev.dvmm.hv.lab;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.zip.GZIPInputStream;

/**
 * The compressed kernel inside a bzImage. Under software emulation the kernel's own decompressor
 * takes seconds (about 3.5 s for Debian's xz-compressed 6.1), so the lab unpacks the ELF vmlinux
 * once when it builds the image and boots it through QEMU's PVH entry instead.
 */
final class BzImage {
    private BzImage() {}

    /** Offset and length of the compressed payload, from the setup header (boot protocol 2.08+). */
    record Payload(int offset, int length) {}

    static Payload payload(byte[] bzImage) {
        ByteBuffer b = ByteBuffer.wrap(bzImage).order(ByteOrder.LITTLE_ENDIAN);
        if (bzImage.length < 0x250 || b.getInt(0x202) != 0x53726448) { // "HdrS"
            throw new LabException("not a bzImage (no HdrS setup header)");
        }
        if ((b.getShort(0x206) & 0xffff) < 0x0208) {
            throw new LabException("bzImage boot protocol older than 2.08 has no payload fields");
        }
        int setupSects = bzImage[0x1f1] & 0xff;
        int protectedModeStart = ((setupSects == 0 ? 4 : setupSects) + 1) * 512;
        int offset = protectedModeStart + b.getInt(0x248);
        int length = b.getInt(0x24c);
        if (offset < 0 || length <= 0 || offset + (long) length > bzImage.length) {
            throw new LabException("bzImage payload fields point outside the file");
        }
        return new Payload(offset, length);
    }

    /**
     * Writes the uncompressed vmlinux ELF of {@code bzImage} to {@code out}. Gzip is unpacked here;
     * xz and zstd through the host's xz / zstd tools.
     */
    static void extractVmlinux(Path bzImage, Path out) throws IOException {
        byte[] image = Files.readAllBytes(bzImage);
        Payload p = payload(image);
        Path compressed = out.resolveSibling(out.getFileName() + ".payload");
        Files.write(compressed, Arrays.copyOfRange(image, p.offset(), p.offset() + p.length()));
        try {
            int m0 = image[p.offset()] & 0xff;
            int m1 = image[p.offset() + 1] & 0xff;
            if (m0 == 0x1f && m1 == 0x8b) {
                try (InputStream in = new GZIPInputStream(Files.newInputStream(compressed));
                     OutputStream o = Files.newOutputStream(out)) {
                    in.transferTo(o);
                }
            } else if (m0 == 0xfd && m1 == '7') {
                unpackWith(List.of("xz", "-dc", "--single-stream"), compressed, out);
            } else if (m0 == 0x28 && m1 == 0xb5) {
                unpackWith(List.of("zstd", "-dcq"), compressed, out);
            } else {
                throw new LabException(String.format("bzImage payload compression not supported (magic %02x %02x)", m0, m1));
            }
        } finally {
            Files.deleteIfExists(compressed);
        }
        byte[] head = new byte[4];
        try (InputStream in = Files.newInputStream(out)) {
            if (in.readNBytes(head, 0, 4) != 4 || head[0] != 0x7f || head[1] != 'E' || head[2] != 'L' || head[3] != 'F') {
                throw new LabException("the unpacked bzImage payload is not an ELF vmlinux");
            }
        }
    }

    private static void unpackWith(List<String> tool, Path in, Path out) throws IOException {
        Process p;
        try {
            p = new ProcessBuilder(tool).redirectInput(in.toFile()).redirectOutput(out.toFile())
                    .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        } catch (IOException e) {
            throw new LabException(tool.getFirst() + " is needed to unpack the kernel: " + e.getMessage(), e);
        }
        try {
            if (!p.waitFor(300, TimeUnit.SECONDS) || p.exitValue() != 0) {
                p.destroyForcibly();
                throw new LabException(String.join(" ", tool) + " failed to unpack the kernel");
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new LabException("interrupted while unpacking the kernel", e);
        }
    }
}
