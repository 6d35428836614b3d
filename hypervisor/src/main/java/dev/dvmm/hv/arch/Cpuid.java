package dev.dvmm.hv.arch;

import dev.dvmm.bindings.abi.KvmCpuid2;
import dev.dvmm.bindings.abi.KvmCpuidEntry2;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Per-vCPU CPUID policy on top of what KVM supports: APIC ids, and no x2APIC or TSC-deadline (the
 * LAPIC lives in userspace and is xAPIC only: ARCHITECTURE.md section 3).
 */
public final class Cpuid {
    private static final int LEAF1_ECX_X2APIC = 1 << 21;
    private static final int LEAF1_ECX_TSC_DEADLINE = 1 << 24;

    private Cpuid() {}

    /** A copy of {@code supported} adjusted for vCPU {@code apicId}. */
    public static MemorySegment forVcpu(MemorySegment supported, int apicId, Arena arena) {
        MemorySegment c = arena.allocate(supported.byteSize(), 8);
        c.copyFrom(supported);
        int n = KvmCpuid2.nent(c);
        for (int i = 0; i < n; i++) {
            MemorySegment e = c.asSlice(KvmCpuid2.ENTRIES_OFFSET + i * KvmCpuidEntry2.SIZE, KvmCpuidEntry2.SIZE);
            int fn = KvmCpuidEntry2.function(e);
            if (fn == 1) {
                KvmCpuidEntry2.ecx(e, KvmCpuidEntry2.ecx(e) & ~(LEAF1_ECX_X2APIC | LEAF1_ECX_TSC_DEADLINE));
                KvmCpuidEntry2.ebx(e, (KvmCpuidEntry2.ebx(e) & 0x00FF_FFFF) | (apicId << 24));
            } else if (fn == 0xB || fn == 0x1F) {
                KvmCpuidEntry2.edx(e, apicId);
            }
        }
        return c;
    }
}
