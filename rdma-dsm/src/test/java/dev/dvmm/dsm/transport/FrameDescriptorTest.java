package dev.dvmm.dsm.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

class FrameDescriptorTest {

    private static MemorySegment frame(Arena arena, byte kind, long correlationId, int length) {
        MemorySegment frame = arena.allocate(FrameDescriptor.HEADER_LENGTH + 8L);
        FrameDescriptor.encode(frame, 8, kind, (short) 0x1234, (short) -2, length, correlationId, 1, -1,
                Long.MAX_VALUE, Long.MIN_VALUE);
        return frame;
    }

    @Test
    void encodedHeaderHasTheDocumentedLittleEndianLayout() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment frame = frame(arena, FrameDescriptor.KIND_REQUEST, 0x0102030405060708L, 4096);
            ByteBuffer bytes = ByteBuffer.wrap(frame.asSlice(8).toArray(ValueLayout.JAVA_BYTE))
                    .order(ByteOrder.LITTLE_ENDIAN);
            assertEquals('D', bytes.get(0));
            assertEquals('V', bytes.get(1));
            assertEquals('M', bytes.get(2));
            assertEquals('F', bytes.get(3));
            assertEquals(1, bytes.get(4));
            assertEquals(FrameDescriptor.KIND_REQUEST, bytes.get(5));
            assertEquals(0x1234, bytes.getShort(6));
            assertEquals(-2, bytes.getShort(8));
            assertEquals(0, bytes.getShort(10));
            assertEquals(4096, bytes.getInt(12));
            assertEquals(0x08, bytes.get(16), "correlation id is little-endian");
            assertEquals(0x0102030405060708L, bytes.getLong(16));
            assertEquals(1, bytes.getLong(24));
            assertEquals(-1, bytes.getLong(32));
            assertEquals(Long.MAX_VALUE, bytes.getLong(40));
            assertEquals(Long.MIN_VALUE, bytes.getLong(48));
            assertEquals(FrameDescriptor.OK, FrameDescriptor.check(frame, 8, 4096));
        }
    }

    @Test
    void everyBrokenFieldHasItsOwnVerdict() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment frame = frame(arena, FrameDescriptor.KIND_MESSAGE, 0, 100);
            assertEquals(FrameDescriptor.OK, FrameDescriptor.check(frame, 8, 100));
            assertEquals(FrameDescriptor.BAD_LENGTH, FrameDescriptor.check(frame, 8, 99));

            frame.set(ValueLayout.JAVA_BYTE, 8, (byte) 'X');
            assertEquals(FrameDescriptor.BAD_MAGIC, FrameDescriptor.check(frame, 8, 100));
            assertTrue(FrameDescriptor.describe(FrameDescriptor.BAD_MAGIC, frame, 8, 100).contains("magic"));

            frame = frame(arena, FrameDescriptor.KIND_MESSAGE, 0, 100);
            frame.set(ValueLayout.JAVA_BYTE, 8 + FrameDescriptor.VERSION_OFFSET, (byte) 2);
            assertEquals(FrameDescriptor.BAD_VERSION, FrameDescriptor.check(frame, 8, 100));

            for (byte kind : new byte[] {0, 5, -1}) {
                frame = frame(arena, kind, 0, 100);
                assertEquals(FrameDescriptor.BAD_KIND, FrameDescriptor.check(frame, 8, 100), "kind " + kind);
            }

            frame = frame(arena, FrameDescriptor.KIND_MESSAGE, 0, 100);
            frame.set(ValueLayout.JAVA_BYTE, 8 + FrameDescriptor.RESERVED_OFFSET, (byte) 1);
            assertEquals(FrameDescriptor.BAD_RESERVED, FrameDescriptor.check(frame, 8, 100));

            frame = frame(arena, FrameDescriptor.KIND_MESSAGE, 0, -5);
            assertEquals(FrameDescriptor.BAD_LENGTH, FrameDescriptor.check(frame, 8, 100));
            assertTrue(FrameDescriptor.describe(FrameDescriptor.BAD_LENGTH, frame, 8, 100).contains("4294967291"));

            assertEquals(FrameDescriptor.BAD_CORRELATION,
                    FrameDescriptor.check(frame(arena, FrameDescriptor.KIND_MESSAGE, 7, 0), 8, 100));
            assertEquals(FrameDescriptor.BAD_CORRELATION,
                    FrameDescriptor.check(frame(arena, FrameDescriptor.KIND_REQUEST, 0, 0), 8, 100));
            assertEquals(FrameDescriptor.BAD_CORRELATION,
                    FrameDescriptor.check(frame(arena, FrameDescriptor.KIND_REPLY, 0, 0), 8, 100));
            assertEquals(FrameDescriptor.OK,
                    FrameDescriptor.check(frame(arena, FrameDescriptor.KIND_REPLY, -9, 0), 8, 100));
        }
    }
}
