package dev.dvmm.hv.vcpu;

import dev.dvmm.bindings.Posix;
import dev.dvmm.bindings.abi.KvmRegs;
import dev.dvmm.bindings.abi.KvmSegment;
import dev.dvmm.bindings.abi.KvmSregs;
import dev.dvmm.hv.vstate.GuestMemory;
import dev.dvmm.hv.vstate.Vcpu;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** A readable snapshot of a stopped vCPU: general registers, control registers, segments, code bytes. */
public final class VcpuDump {
    private VcpuDump() {}

    public static String of(Vcpu vcpu, GuestMemory memory) {
        StringBuilder b = new StringBuilder();
        try {
            MemorySegment r = vcpu.getRegs();
            MemorySegment s = vcpu.getSregs();
            b.append(String.format("  rip=%016x rflags=%016x%n", KvmRegs.rip(r), KvmRegs.rflags(r)));
            b.append(String.format("  rax=%016x rbx=%016x rcx=%016x rdx=%016x%n",
                    KvmRegs.rax(r), KvmRegs.rbx(r), KvmRegs.rcx(r), KvmRegs.rdx(r)));
            b.append(String.format("  rsi=%016x rdi=%016x rsp=%016x rbp=%016x%n",
                    KvmRegs.rsi(r), KvmRegs.rdi(r), KvmRegs.rsp(r), KvmRegs.rbp(r)));
            b.append(String.format("  r8 =%016x r9 =%016x r10=%016x r11=%016x%n",
                    KvmRegs.r8(r), KvmRegs.r9(r), KvmRegs.r10(r), KvmRegs.r11(r)));
            b.append(String.format("  r12=%016x r13=%016x r14=%016x r15=%016x%n",
                    KvmRegs.r12(r), KvmRegs.r13(r), KvmRegs.r14(r), KvmRegs.r15(r)));
            b.append(String.format("  cr0=%016x cr2=%016x cr3=%016x cr4=%016x efer=%016x%n",
                    KvmSregs.cr0(s), KvmSregs.cr2(s), KvmSregs.cr3(s), KvmSregs.cr4(s), KvmSregs.efer(s)));
            MemorySegment cs = s.asSlice(KvmSregs.CS_OFFSET, KvmSegment.SIZE);
            MemorySegment ss = s.asSlice(KvmSregs.SS_OFFSET, KvmSegment.SIZE);
            b.append(String.format("  cs=%04x base=%x l=%d db=%d dpl=%d  ss=%04x dpl=%d%n", KvmSegment.selector(cs),
                    KvmSegment.base(cs), KvmSegment.l(cs), KvmSegment.db(cs), KvmSegment.dpl(cs),
                    KvmSegment.selector(ss), KvmSegment.dpl(ss)));
            long rip = KvmSegment.base(cs) + KvmRegs.rip(r);
            b.append("  code at rip: ").append(codeBytes(vcpu, memory, rip));
        } catch (RuntimeException e) {
            b.append("  (registers unavailable: ").append(e.getMessage()).append(')');
        }
        return b.toString();
    }

    /** Up to 16 instruction bytes at a guest-virtual address, hex. */
    public static String codeBytes(Vcpu vcpu, GuestMemory memory, long gva) {
        byte[] code = new byte[16];
        int n = readCode(vcpu, memory, gva, code);
        if (n < 0) {
            return "(0x" + Long.toHexString(gva) + " is not mapped)";
        }
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < n; i++) {
            b.append(String.format("%02x ", code[i]));
        }
        return b.toString().strip();
    }

    /**
     * Reads up to {@code into.length} bytes at guest-virtual {@code gva} through the vCPU's page tables;
     * returns how many were in RAM, or -1 when {@code gva} is not mapped. Native copies: on DSM-backed
     * memory the read may fault, and a fault inside Java code can stall a HotSpot safepoint.
     */
    static int readCode(Vcpu vcpu, GuestMemory memory, long gva, byte[] into) {
        long gpa = vcpu.translate(gva);
        if (gpa < 0) {
            return -1;
        }
        int n = 0;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment one = a.allocate(1);
            for (; n < into.length; n++) {
                long off = memory.offsetOf(gpa + n);
                if (off < 0) {
                    break;
                }
                Posix.copyNative(memory.guestMapping(), off, one, 0, 1);
                into[n] = one.get(ValueLayout.JAVA_BYTE, 0);
            }
        }
        return n;
    }
}
