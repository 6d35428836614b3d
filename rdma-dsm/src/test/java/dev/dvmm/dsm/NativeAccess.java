package dev.dvmm.dsm;

import dev.dvmm.bindings.Posix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Test access to userfaultfd-registered memory through native copies, so a thread blocked on a fault is
 * "in native" and cannot stall HotSpot's safepoints (see Posix.copyNative).
 */
public final class NativeAccess {
    private static final ThreadLocal<MemorySegment> WORD = ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(8, 8));

    private NativeAccess() {}

    public static long get(MemorySegment segment, long offset) {
        MemorySegment w = WORD.get();
        Posix.copyNative(segment, offset, w, 0, 8);
        return w.get(ValueLayout.JAVA_LONG, 0);
    }

    public static void set(MemorySegment segment, long offset, long value) {
        MemorySegment w = WORD.get();
        w.set(ValueLayout.JAVA_LONG, 0, value);
        Posix.copyNative(w, 0, segment, offset, 8);
    }
}
