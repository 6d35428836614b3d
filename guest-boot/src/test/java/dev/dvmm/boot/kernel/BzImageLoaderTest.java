package dev.dvmm.boot.kernel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dvmm.boot.BootException;
import dev.dvmm.boot.BootException.Kind;
import dev.dvmm.boot.TestMemory;
import dev.dvmm.boot.memory.SegmentGuestMemory;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

class BzImageLoaderTest {
    private static final String NAME = "test-bzImage";

    private static LoadedKernel load(SegmentGuestMemory memory, byte[] image) {
        return KernelLoader.load(memory, KernelFile.of(NAME, image));
    }

    private static BootException failure(byte[] image) {
        return failure(TestMemory.sparse(64 * TestMemory.MIB), image);
    }

    private static BootException failure(SegmentGuestMemory memory, byte[] image) {
        BootException e = assertThrows(BootException.class, () -> load(memory, image));
        assertTrue(e.getMessage().startsWith(NAME + ":"), "message names the file: " + e.getMessage());
        return e;
    }

    @Test
    void relocatableKernelGoesToItsPreferredAddressWithEntryAt0x200() {
        TestImages.BzImage spec = new TestImages.BzImage();
        SegmentGuestMemory memory = TestMemory.sparse(64 * TestMemory.MIB);
        LoadedKernel k = load(memory, spec.build());

        assertEquals(LoadedKernel.Format.BZIMAGE, k.format());
        assertEquals(spec.prefAddress, k.loadAddress());
        assertEquals(spec.prefAddress + 0x200, k.entry64());
        assertEquals(spec.prefAddress + spec.initSize, k.footprintEnd());
        assertEquals(spec.cmdlineSize, k.cmdlineMax());
        assertEquals(spec.initrdAddrMax, k.initrdAddrMax());
        byte[] placed = memory.read(k.loadAddress(), spec.kernelBytes);
        for (int i = 0; i < spec.kernelBytes; i++) {
            assertEquals(TestImages.pattern(i), placed[i], "kernel byte " + i);
        }
        assertEquals(0, memory.getByte(k.loadAddress() - 1), "nothing written below the kernel");
        assertEquals(0, memory.getByte(k.loadAddress() + spec.kernelBytes), "nothing written above the kernel");
    }

    @Test
    void headerFieldsAreParsed() {
        TestImages.BzImage spec = new TestImages.BzImage();
        SetupHeader h = load(TestMemory.sparse(64 * TestMemory.MIB), spec.build()).setupHeader().orElseThrow();
        assertEquals(spec.setupSects(), h.setupSects());
        assertEquals(0x020f, h.version());
        assertEquals("2.15", h.versionText());
        assertEquals(spec.kernelAlignment, h.kernelAlignment());
        assertTrue(h.relocatable());
        assertEquals(spec.prefAddress, h.prefAddress());
        assertEquals(spec.initSize, h.initSize());
        assertEquals(spec.headerEnd, h.headerEnd());
        assertEquals(spec.kernelVersion, h.kernelVersion());
        assertEquals((spec.kernelBytes + 15) / 16, h.syssize());
    }

    @Test
    void setupHeaderBytesAreCopiedFrom0x1f1ToTheHeaderEnd() {
        TestImages.BzImage spec = new TestImages.BzImage();
        byte[] image = spec.build();
        LoadedKernel k = load(TestMemory.sparse(64 * TestMemory.MIB), image);
        assertArrayEquals(Arrays.copyOfRange(image, 0x1f1, spec.headerEnd), k.setupHeaderBytes());
    }

    @Test
    void setupSectsZeroMeansFour() {
        TestImages.BzImage spec = new TestImages.BzImage();
        spec.setupSectsField = 0;
        SegmentGuestMemory memory = TestMemory.sparse(64 * TestMemory.MIB);
        LoadedKernel k = load(memory, spec.build());
        assertEquals(4, k.setupHeader().orElseThrow().setupSects());
        assertEquals(TestImages.pattern(0), memory.getByte(k.loadAddress()), "kernel starts after 5 sectors");
    }

    @Test
    void nonRelocatableKernelGoesToOneMiB() {
        TestImages.BzImage spec = new TestImages.BzImage();
        spec.relocatable = false;
        SegmentGuestMemory memory = TestMemory.sparse(64 * TestMemory.MIB);
        LoadedKernel k = load(memory, spec.build());
        assertEquals(0x10_0000, k.loadAddress());
        assertEquals(0x10_0200, k.entry64());
        assertEquals(TestImages.pattern(5), memory.getByte(0x10_0005));
        // It decompresses at pref_address, so its footprint reaches pref_address + init_size.
        assertEquals(spec.prefAddress + spec.initSize, k.footprintEnd());
    }

    @Test
    void misalignedPreferredAddressFallsBackToOneMiB() {
        TestImages.BzImage spec = new TestImages.BzImage();
        spec.prefAddress = 0x100_1000;
        assertEquals(0x10_0000, load(TestMemory.sparse(64 * TestMemory.MIB), spec.build()).loadAddress());
    }

    @Test
    void wrongMagicIsNotAKernel() {
        TestImages.BzImage spec = new TestImages.BzImage();
        spec.magic = "HdrX";
        assertEquals(Kind.NOT_A_KERNEL, failure(spec.build()).kind());
        BootException direct = assertThrows(BootException.class, () -> BzImageLoader.load(
                TestMemory.sparse(64 * TestMemory.MIB), KernelFile.of(NAME, spec.build())));
        assertEquals(Kind.NOT_A_KERNEL, direct.kind());
        assertTrue(direct.getMessage().contains("HdrS"), direct.getMessage());
    }

    @Test
    void badBootFlagIsCorrupt() {
        TestImages.BzImage spec = new TestImages.BzImage();
        spec.bootFlag = 0x55aa;
        assertEquals(Kind.CORRUPT, failure(spec.build()).kind());
    }

    @Test
    void protocolOlderThan212IsUnsupported() {
        TestImages.BzImage spec = new TestImages.BzImage();
        spec.version = 0x020b;
        BootException e = failure(spec.build());
        assertEquals(Kind.UNSUPPORTED, e.kind());
        assertTrue(e.getMessage().contains("2.11"), e.getMessage());
    }

    @Test
    void kernelWithout64BitEntryIsUnsupported() {
        TestImages.BzImage spec = new TestImages.BzImage();
        spec.xloadflags = SetupHeader.XLF_CAN_BE_LOADED_ABOVE_4G;
        BootException e = failure(spec.build());
        assertEquals(Kind.UNSUPPORTED, e.kind());
        assertTrue(e.getMessage().contains("XLF_KERNEL_64"), e.getMessage());
    }

    @Test
    void zImageIsUnsupported() {
        TestImages.BzImage spec = new TestImages.BzImage();
        spec.loadflags = 0;
        assertEquals(Kind.UNSUPPORTED, failure(spec.build()).kind());
    }

    @Test
    void headerEndOutsideBootParamsIsCorrupt() {
        TestImages.BzImage spec = new TestImages.BzImage();
        spec.headerEnd = 0x2a0;
        assertEquals(Kind.CORRUPT, failure(spec.build()).kind());
        spec.headerEnd = 0x240;
        assertEquals(Kind.CORRUPT, failure(spec.build()).kind());
    }

    @Test
    void nonPowerOfTwoAlignmentIsCorrupt() {
        TestImages.BzImage spec = new TestImages.BzImage();
        spec.kernelAlignment = 0x30_0000;
        assertEquals(Kind.CORRUPT, failure(spec.build()).kind());
    }

    @Test
    void fileCutInsideTheKernelIsTruncated() {
        byte[] image = new TestImages.BzImage().build();
        BootException e = failure(Arrays.copyOf(image, image.length - 64));
        assertEquals(Kind.TRUNCATED, e.kind());
        assertTrue(e.getMessage().contains("truncated"), e.getMessage());
    }

    @Test
    void fileCutInsideTheHeaderIsTruncated() {
        byte[] image = new TestImages.BzImage().build();
        assertEquals(Kind.TRUNCATED, failure(Arrays.copyOf(image, 0x230)).kind());
    }

    @Test
    void everyTruncationFailsWithABootException() {
        byte[] image = new TestImages.BzImage().build();
        SegmentGuestMemory memory = TestMemory.sparse(64 * TestMemory.MIB);
        for (int length = 0; length < image.length - 15; length += length < 0x300 ? 1 : 61) {
            byte[] cut = Arrays.copyOf(image, length);
            BootException e = assertThrows(BootException.class, () -> load(memory, cut), "length " + length);
            assertTrue(e.kind() == Kind.TRUNCATED || e.kind() == Kind.NOT_A_KERNEL,
                    "length " + length + ": " + e.kind() + " " + e.getMessage());
        }
    }

    @Test
    void randomCorruptionOfTheHeaderNeverEscapesAsAnotherException() {
        byte[] image = new TestImages.BzImage().build();
        SegmentGuestMemory memory = TestMemory.sparse(64 * TestMemory.MIB);
        Random random = new Random(42);
        int failures = 0;
        for (int round = 0; round < 2000; round++) {
            byte[] bad = image.clone();
            for (int i = 0; i < 4; i++) {
                bad[0x1f1 + random.nextInt(0x7b)] = (byte) random.nextInt(256);
            }
            try {
                load(memory, bad);
            } catch (BootException e) {
                failures++;
                assertTrue(e.getMessage().startsWith(NAME + ": "), e.getMessage());
            }
        }
        assertTrue(failures > 0, "corruption was detected at least once");
    }

    @Test
    void kernelNeedingMoreMemoryThanTheGuestHasDoesNotFit() {
        TestImages.BzImage spec = new TestImages.BzImage();
        spec.initSize = 0x400_0000; // 64 MiB from 16 MiB: needs 80 MiB
        BootException e = failure(TestMemory.sparse(64 * TestMemory.MIB), spec.build());
        assertEquals(Kind.DOES_NOT_FIT, e.kind());
        assertTrue(e.getMessage().contains("more memory"), e.getMessage());
    }

    @Test
    void nonKernelFileIsRejectedByTheFormatDetection() {
        byte[] text = "#!/bin/sh\necho this is not a kernel\n".repeat(40).getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        assertEquals(Kind.NOT_A_KERNEL, failure(text).kind());
        assertEquals(Kind.NOT_A_KERNEL, failure(new byte[0]).kind());
    }

    @Test
    void kernelIsReadFromAFile(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws java.io.IOException {
        TestImages.BzImage spec = new TestImages.BzImage();
        java.nio.file.Path path = dir.resolve("bzImage");
        java.nio.file.Files.write(path, spec.build());
        SegmentGuestMemory memory = TestMemory.sparse(64 * TestMemory.MIB);
        LoadedKernel k = KernelLoader.load(memory, path);
        assertEquals(path.toString(), k.name());
        assertEquals(TestImages.pattern(spec.kernelBytes - 1), memory.getByte(k.loadAddress() + spec.kernelBytes - 1));
        java.nio.file.Files.write(path, new byte[0]);
        BootException e = assertThrows(BootException.class, () -> KernelLoader.load(memory, path));
        assertEquals(Kind.NOT_A_KERNEL, e.kind());
        assertTrue(e.getMessage().startsWith(path + ":"), e.getMessage());
    }

    @Test
    void missingFileIsUnreadable() {
        BootException e = assertThrows(BootException.class,
                () -> KernelLoader.load(TestMemory.sparse(4 * TestMemory.MIB), java.nio.file.Path.of("/nonexistent/vmlinuz")));
        assertEquals(Kind.UNREADABLE, e.kind());
        assertTrue(e.getMessage().startsWith("/nonexistent/vmlinuz:"), e.getMessage());
    }
}
