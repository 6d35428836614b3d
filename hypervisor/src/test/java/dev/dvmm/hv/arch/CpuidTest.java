package dev.dvmm.hv.arch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.dvmm.bindings.abi.KvmCpuid2;
import dev.dvmm.bindings.abi.KvmCpuidEntry2;
import dev.dvmm.hv.vstate.Kvm;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class CpuidTest {
    private static MemorySegment table(Arena a, int[][] leaves) {
        MemorySegment c = a.allocate(KvmCpuid2.ENTRIES_OFFSET + leaves.length * KvmCpuidEntry2.SIZE, 8);
        KvmCpuid2.nent(c, leaves.length);
        for (int i = 0; i < leaves.length; i++) {
            MemorySegment e = entry(c, i);
            KvmCpuidEntry2.function(e, leaves[i][0]);
            KvmCpuidEntry2.eax(e, leaves[i][1]);
            KvmCpuidEntry2.ebx(e, leaves[i][2]);
            KvmCpuidEntry2.ecx(e, leaves[i][3]);
            KvmCpuidEntry2.edx(e, leaves[i][4]);
        }
        return c;
    }

    private static MemorySegment entry(MemorySegment c, int i) {
        return c.asSlice(KvmCpuid2.ENTRIES_OFFSET + i * KvmCpuidEntry2.SIZE, KvmCpuidEntry2.SIZE);
    }

    @Test
    void apicIdHypervisorBitAndOnlyPvFeaturesThatWorkWithAUserspaceLapic() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment supported = table(a, new int[][] {
                    {1, 0x806f8, 0x0001_0800, (1 << 21) | (1 << 24) | 1, 0x178bfbff},
                    {0xB, 0, 1, 0x100, 0},
                    {Cpuid.KVM_CPUID_SIGNATURE, 0x4000_0001, 0x4b4d564b, 0x564b4d56, 0x4d},
                    {Cpuid.KVM_CPUID_FEATURES, 0x01ff_ffff, 0, 0, 1}});
            MemorySegment c = Cpuid.forVcpu(supported, 3, a);
            assertEquals(3, KvmCpuidEntry2.ebx(entry(c, 0)) >>> 24, "initial APIC id");
            assertEquals(0x0800, KvmCpuidEntry2.ebx(entry(c, 0)) & 0xFFFF, "other EBX bits kept");
            int ecx = KvmCpuidEntry2.ecx(entry(c, 0));
            assertEquals(0, ecx & ((1 << 21) | (1 << 24)), "x2APIC and TSC-deadline hidden");
            assertEquals(1, ecx & 1, "other features kept");
            assertEquals(1 << 31, ecx & (1 << 31), "hypervisor bit");
            assertEquals(3, KvmCpuidEntry2.edx(entry(c, 1)), "x2APIC id in leaf 0xB");
            assertEquals(0x4b4d564b, KvmCpuidEntry2.ebx(entry(c, 2)), "KVM signature untouched");
            // clocksource, nop-io-delay, clocksource2, stable bit; not PV EOI (6), PV unhalt (7), PV IPI (11)...
            assertEquals((1 << 0) | (1 << 1) | (1 << 3) | (1 << 24), KvmCpuidEntry2.eax(entry(c, 3)));
            assertEquals(0, KvmCpuidEntry2.edx(entry(c, 3)), "no KVM hints");
            assertEquals(0x01ff_ffff, KvmCpuidEntry2.eax(entry(supported, 3)), "the supported table is not changed");
        }
    }

    @Test
    void thisHostsKvmOffersTheKvmSignatureLeaf() {
        assumeTrue(Files.isReadable(Path.of("/dev/kvm")) && Files.isWritable(Path.of("/dev/kvm")),
                "/dev/kvm is not available on this machine");
        try (Kvm kvm = Kvm.open(); Arena a = Arena.ofConfined()) {
            MemorySegment s = kvm.supportedCpuid(a);
            boolean signature = false;
            for (int i = 0; i < KvmCpuid2.nent(s); i++) {
                MemorySegment e = entry(s, i);
                if (KvmCpuidEntry2.function(e) == Cpuid.KVM_CPUID_SIGNATURE) {
                    signature = KvmCpuidEntry2.ebx(e) == 0x4b4d564b; // "KVMK"
                }
            }
            assertEquals(true, signature, "KVM_GET_SUPPORTED_CPUID has leaf 0x40000000 with \"KVMKVMKVM\"");
        }
    }
}
