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

    // libatomic's out-of-line 8-byte fetch-and-add (gcc's runtime; lock xadd on x86-64): an atomic increment
    // made by native code, so a thread that faults inside it is "in native" like in the copies above.
    private static final int SEQ_CST = 5;
    private static final java.lang.invoke.MethodHandle FETCH_ADD_8 = fetchAdd();

    private NativeAccess() {}

    private static java.lang.invoke.MethodHandle fetchAdd() {
        try {
            java.lang.foreign.Linker linker = java.lang.foreign.Linker.nativeLinker();
            java.lang.foreign.SymbolLookup atomic = java.lang.foreign.SymbolLookup.libraryLookup("libatomic.so.1",
                    Arena.global());
            return linker.downcallHandle(atomic.findOrThrow("__atomic_fetch_add_8"),
                    java.lang.foreign.FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.ADDRESS,
                            ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
        } catch (IllegalArgumentException | java.util.NoSuchElementException e) {
            return null; // libatomic1 missing: tests that need it skip (see atomicAvailable)
        }
    }

    /** Whether {@link #getAndAdd} can run here (gcc's libatomic1 is installed). */
    public static boolean atomicAvailable() {
        return FETCH_ADD_8 != null;
    }

    /** Atomic fetch-and-add of a 64-bit word, done in native code. */
    public static long getAndAdd(MemorySegment segment, long offset, long delta) {
        try {
            return (long) FETCH_ADD_8.invokeExact(segment.asSlice(offset, 8), delta, SEQ_CST);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

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
