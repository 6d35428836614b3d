package dev.dvmm.hv.arch;

import dev.dvmm.bindings.abi.KvmCpuid2;
import dev.dvmm.bindings.abi.KvmCpuidEntry2;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Per-vCPU CPUID policy on top of what KVM supports: APIC ids, and no x2APIC or TSC-deadline (the
 * LAPIC lives in userspace and is xAPIC only: ARCHITECTURE.md section 3).
 *
 * <p>The guest is told it runs on KVM (hypervisor bit, KVM signature leaf) so that Linux takes the TSC
 * frequency from kvmclock instead of calibrating against the PIT, and skips port 0x80 delays. Only the
 * paravirtual features that work with a userspace LAPIC are offered: PV EOI, PV IPIs, PV unhalt (the
 * kick hypercall wakes an in-kernel halt that this VMM does not use), async page faults and the
 * others that need KVM's in-kernel LAPIC are hidden.
 */
public final class Cpuid {
    private static final int LEAF1_ECX_X2APIC = 1 << 21;
    private static final int LEAF1_ECX_TSC_DEADLINE = 1 << 24;
    private static final int LEAF1_ECX_HYPERVISOR = 1 << 31;
    /** KVM_CPUID_FEATURES (0x40000001) EAX bits kept: CLOCKSOURCE, NOP_IO_DELAY, CLOCKSOURCE2, CLOCKSOURCE_STABLE_BIT. */
    static final int KVM_FEATURES_KEPT = (1 << 0) | (1 << 1) | (1 << 3) | (1 << 24);
    static final int KVM_CPUID_SIGNATURE = 0x4000_0000;
    static final int KVM_CPUID_FEATURES = 0x4000_0001;

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
                KvmCpuidEntry2.ecx(e, (KvmCpuidEntry2.ecx(e) & ~(LEAF1_ECX_X2APIC | LEAF1_ECX_TSC_DEADLINE))
                        | LEAF1_ECX_HYPERVISOR);
                KvmCpuidEntry2.ebx(e, (KvmCpuidEntry2.ebx(e) & 0x00FF_FFFF) | (apicId << 24));
            } else if (fn == 0xB || fn == 0x1F) {
                KvmCpuidEntry2.edx(e, apicId);
            } else if (fn == KVM_CPUID_FEATURES) {
                KvmCpuidEntry2.eax(e, KvmCpuidEntry2.eax(e) & KVM_FEATURES_KEPT);
                KvmCpuidEntry2.edx(e, 0); // KVM_HINTS_REALTIME etc.: no hints
            }
        }
        return c;
    }
}
