package dev.dvmm.boot.kernel;

import dev.dvmm.boot.BootException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * The bytes of a boot file (kernel or initramfs) with its name, read in place. Every read is
 * bounds-checked and a short file becomes a {@link BootException} that names the file and what was
 * being read, so no parser can leak an index exception for a truncated input.
 */
public final class KernelFile implements AutoCloseable {
    private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final String name;
    private final MemorySegment bytes;
    private final Arena arena;

    private KernelFile(String name, MemorySegment bytes, Arena arena) {
        this.name = name;
        this.bytes = bytes;
        this.arena = arena;
    }

    /** Maps {@code path} read-only; close the result to unmap it. */
    public static KernelFile open(Path path) {
        String name = path.toString();
        if (!Files.isRegularFile(path)) {
            throw new BootException(BootException.Kind.UNREADABLE, name + ": no such file (or not a regular file).");
        }
        Arena arena = Arena.ofShared();
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = channel.size();
            MemorySegment mapped = size == 0
                    ? MemorySegment.ofArray(new byte[0])
                    : channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            return new KernelFile(name, mapped, arena);
        } catch (IOException e) {
            arena.close();
            throw new BootException(BootException.Kind.UNREADABLE, name + ": cannot be read (" + e.getMessage() + ").", e);
        }
    }

    /** Wraps bytes already in memory (a generated initramfs, a test image) under a display name. */
    public static KernelFile of(String name, byte[] content) {
        return new KernelFile(name, MemorySegment.ofArray(content.clone()), null);
    }

    public String name() {
        return name;
    }

    public long size() {
        return bytes.byteSize();
    }

    /** The file's bytes; valid until {@link #close()}. */
    public MemorySegment segment() {
        return bytes;
    }

    /** Fails with "name: truncated ..." unless {@code [offset, offset + length)} is inside the file. */
    public void require(long offset, long length, String what) {
        if (offset < 0 || length < 0 || offset > bytes.byteSize() - length) {
            throw new BootException(BootException.Kind.TRUNCATED, String.format(
                    "%s: truncated or corrupt: %s needs bytes [0x%x, 0x%x) but the file has only 0x%x bytes.",
                    name, what, offset, offset + length, bytes.byteSize()));
        }
    }

    public int u8(long offset, String what) {
        require(offset, 1, what);
        return Byte.toUnsignedInt(bytes.get(ValueLayout.JAVA_BYTE, offset));
    }

    public int u16(long offset, String what) {
        require(offset, 2, what);
        return Short.toUnsignedInt(bytes.get(SHORT, offset));
    }

    public long u32(long offset, String what) {
        require(offset, 4, what);
        return Integer.toUnsignedLong(bytes.get(INT, offset));
    }

    /** A 64-bit field; values with the top bit set stay negative (callers range-check them). */
    public long u64(long offset, String what) {
        require(offset, 8, what);
        return bytes.get(LONG, offset);
    }

    /** Copies {@code length} bytes from {@code offset}. */
    public byte[] bytes(long offset, int length, String what) {
        require(offset, length, what);
        byte[] copy = new byte[length];
        MemorySegment.copy(bytes, ValueLayout.JAVA_BYTE, offset, copy, 0, length);
        return copy;
    }

    @Override
    public void close() {
        if (arena != null) {
            arena.close();
        }
    }
}
