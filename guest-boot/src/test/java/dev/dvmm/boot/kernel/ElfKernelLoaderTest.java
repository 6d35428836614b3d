package dev.dvmm.boot.kernel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dvmm.boot.BootException;
import dev.dvmm.boot.BootException.Kind;
import dev.dvmm.boot.TestMemory;
import dev.dvmm.boot.memory.SegmentGuestMemory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

class ElfKernelLoaderTest {
    private static final String NAME = "test-vmlinux";

    private static LoadedKernel load(SegmentGuestMemory memory, byte[] image) {
        return KernelLoader.load(memory, KernelFile.of(NAME, image));
    }

    private static BootException failure(byte[] image) {
        BootException e = assertThrows(BootException.class, () -> load(TestMemory.sparse(32 * TestMemory.MIB), image));
        assertTrue(e.getMessage().startsWith(NAME + ":"), "message names the file: " + e.getMessage());
        return e;
    }

    @Test
    void segmentsGoToTheirPhysicalAddressesWithBssZeroed() {
        TestImages.Elf elf = new TestImages.Elf();
        SegmentGuestMemory memory = TestMemory.sparse(32 * TestMemory.MIB);
        // Dirty the bss range first: the loader must clear it.
        memory.fill(0x120_0800, 0x1000, (byte) 0x5a);
        LoadedKernel k = load(memory, elf.build());

        assertEquals(LoadedKernel.Format.ELF, k.format());
        assertEquals(0x100_0000, k.loadAddress());
        assertEquals(0x120_1800, k.footprintEnd());
        assertArrayEquals(TestImages.Elf.data(0x2000, 0), memory.read(0x100_0000, 0x2000));
        assertArrayEquals(TestImages.Elf.data(0x800, 0x2000), memory.read(0x120_0000, 0x800));
        assertArrayEquals(new byte[0x1000], memory.read(0x120_0800, 0x1000));
        assertEquals(0, k.setupHeaderBytes().length);
        assertTrue(k.setupHeader().isEmpty());
    }

    @Test
    void virtualEntryIsTranslatedToPhysical() {
        TestImages.Elf elf = new TestImages.Elf();
        elf.entry = 0xffff_ffff_8100_0040L;
        assertEquals(0x100_0040, load(TestMemory.sparse(32 * TestMemory.MIB), elf.build()).entry64());
    }

    @Test
    void physicalEntryIsKept() {
        TestImages.Elf elf = new TestImages.Elf(); // vmlinux links ENTRY(phys_startup_64)
        elf.entry = 0x120_0010;
        assertEquals(0x120_0010, load(TestMemory.sparse(32 * TestMemory.MIB), elf.build()).entry64());
    }

    @Test
    void entryOutsideEverySegmentIsCorrupt() {
        TestImages.Elf elf = new TestImages.Elf();
        elf.entry = 0x5000_0000L;
        assertEquals(Kind.CORRUPT, failure(elf.build()).kind());
    }

    @Test
    void pvhNoteIsReportedInBothDescriptorWidths() {
        TestImages.Elf elf = new TestImages.Elf();
        assertFalse(load(TestMemory.sparse(32 * TestMemory.MIB), elf.build()).pvhEntry().isPresent());
        elf.pvhEntry = 0x100_0123;
        assertEquals(0x100_0123, load(TestMemory.sparse(32 * TestMemory.MIB), elf.build()).pvhEntry().orElseThrow());
        elf.pvhDescSize = 4;
        elf.otherNoteFirst = false;
        assertEquals(0x100_0123, load(TestMemory.sparse(32 * TestMemory.MIB), elf.build()).pvhEntry().orElseThrow());
    }

    @Test
    void noteRunningPastItsSegmentIsCorrupt() {
        TestImages.Elf elf = new TestImages.Elf();
        elf.pvhEntry = 0x100_0123;
        byte[] image = elf.build();
        // The note segment is last in the file; grow its first note's descsz beyond the segment.
        int noteAt = image.length - 48; // GNU note (20 bytes) + Xen note (28 bytes)
        ByteBuffer.wrap(image).order(ByteOrder.LITTLE_ENDIAN).putInt(noteAt + 4, 0x1000);
        assertEquals(Kind.CORRUPT, failure(image).kind());
    }

    @Test
    void wrongClassMachineOrTypeIsUnsupported() {
        TestImages.Elf elf = new TestImages.Elf();
        elf.elfClass = 1;
        assertEquals(Kind.UNSUPPORTED, failure(elf.build()).kind());
        elf = new TestImages.Elf();
        elf.machine = 183; // aarch64
        BootException e = failure(elf.build());
        assertEquals(Kind.UNSUPPORTED, e.kind());
        assertTrue(e.getMessage().contains("183"), e.getMessage());
        elf = new TestImages.Elf();
        elf.type = 3;
        assertEquals(Kind.UNSUPPORTED, failure(elf.build()).kind());
    }

    @Test
    void badProgramHeaderSizeIsCorrupt() {
        TestImages.Elf elf = new TestImages.Elf();
        elf.phentsize = 32;
        assertEquals(Kind.CORRUPT, failure(elf.build()).kind());
    }

    @Test
    void segmentBelowOneMiBOrBeyondRamDoesNotFit() {
        TestImages.Elf elf = new TestImages.Elf();
        elf.segments.set(1, new TestImages.ElfSegment(0, 0x7000, new byte[16], 16));
        assertEquals(Kind.DOES_NOT_FIT, failure(elf.build()).kind());
        elf.segments.set(1, new TestImages.ElfSegment(0, 0x1ff_f000, new byte[16], 0x2000));
        assertEquals(Kind.DOES_NOT_FIT, failure(elf.build()).kind());
        elf.segments.set(1, new TestImages.ElfSegment(0, -4096, new byte[16], 16));
        assertEquals(Kind.DOES_NOT_FIT, failure(elf.build()).kind());
    }

    @Test
    void moreFileBytesThanMemoryBytesIsCorrupt() {
        TestImages.Elf elf = new TestImages.Elf();
        elf.segments.set(1, new TestImages.ElfSegment(0, 0x120_0000, new byte[64], 32));
        assertEquals(Kind.CORRUPT, failure(elf.build()).kind());
    }

    @Test
    void everyTruncationFailsWithABootException() {
        TestImages.Elf elf = new TestImages.Elf();
        elf.pvhEntry = 0x100_0000;
        byte[] image = elf.build();
        SegmentGuestMemory memory = TestMemory.sparse(32 * TestMemory.MIB);
        for (int length = 0; length < image.length; length += length < 0x200 ? 1 : 97) {
            byte[] cut = Arrays.copyOf(image, length);
            BootException e = assertThrows(BootException.class, () -> load(memory, cut), "length " + length);
            assertTrue(e.kind() == Kind.TRUNCATED || e.kind() == Kind.NOT_A_KERNEL || e.kind() == Kind.CORRUPT,
                    "length " + length + ": " + e.kind() + " " + e.getMessage());
        }
    }

    @Test
    void randomCorruptionOfTheHeadersNeverEscapesAsAnotherException() {
        TestImages.Elf elf = new TestImages.Elf();
        elf.pvhEntry = 0x100_0000;
        byte[] image = elf.build();
        int headers = 64 + 3 * 56;
        SegmentGuestMemory memory = TestMemory.sparse(32 * TestMemory.MIB);
        Random random = new Random(7);
        int failures = 0;
        for (int round = 0; round < 3000; round++) {
            byte[] bad = image.clone();
            for (int i = 0; i < 3; i++) {
                bad[4 + random.nextInt(headers - 4)] = (byte) random.nextInt(256);
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
}
