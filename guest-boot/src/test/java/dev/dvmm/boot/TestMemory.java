package dev.dvmm.boot;

import dev.dvmm.boot.memory.SegmentGuestMemory;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** Guest memory for tests: heap-backed for small guests, a sparse mapped file for big ones. */
public final class TestMemory {
    private TestMemory() {}

    public static final long MIB = 1 << 20;

    /** Zeroed memory of {@code size} bytes, freed when unreachable. */
    public static SegmentGuestMemory allocate(long size) {
        return new SegmentGuestMemory(Arena.ofAuto().allocate(size, 4096));
    }

    /**
     * Memory backed by a sparse temporary file: only touched pages cost anything, so a test can
     * have a guest larger than the MMIO gap.
     */
    public static SegmentGuestMemory sparse(long size) {
        try {
            Path file = Files.createTempFile("dvmm-guest-ram", ".bin");
            file.toFile().deleteOnExit();
            try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                channel.truncate(0);
                channel.position(size - 1);
                channel.write(java.nio.ByteBuffer.wrap(new byte[1]));
                return new SegmentGuestMemory(channel.map(FileChannel.MapMode.READ_WRITE, 0, size, Arena.ofAuto()));
            } finally {
                Files.deleteIfExists(file);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
