package dev.dvmm.hv.arch;

import dev.dvmm.bindings.abi.KvmDtable;
import dev.dvmm.bindings.abi.KvmRegs;
import dev.dvmm.bindings.abi.KvmSegment;
import dev.dvmm.bindings.abi.KvmSregs;
import dev.dvmm.boot.linux.Segment;
import dev.dvmm.boot.linux.X86BootState;
import dev.dvmm.hv.vstate.Vcpu;
import java.lang.foreign.MemorySegment;

/** Copies the boot vCPU's starting state from the loader into KVM's registers. */
public final class BootStateLoader {
    private BootStateLoader() {}

    public static void apply(Vcpu vcpu, X86BootState b) {
        MemorySegment s = vcpu.getSregs();
        segment(s, KvmSregs.CS_OFFSET, b.cs());
        segment(s, KvmSregs.DS_OFFSET, b.ds());
        segment(s, KvmSregs.ES_OFFSET, b.es());
        segment(s, KvmSregs.FS_OFFSET, b.fs());
        segment(s, KvmSregs.GS_OFFSET, b.gs());
        segment(s, KvmSregs.SS_OFFSET, b.ss());
        segment(s, KvmSregs.TR_OFFSET, b.tr());
        segment(s, KvmSregs.LDT_OFFSET, b.ldt());
        MemorySegment gdt = s.asSlice(KvmSregs.GDT_OFFSET, KvmDtable.SIZE);
        KvmDtable.base(gdt, b.gdtBase());
        KvmDtable.limit(gdt, b.gdtLimit());
        MemorySegment idt = s.asSlice(KvmSregs.IDT_OFFSET, KvmDtable.SIZE);
        KvmDtable.base(idt, b.idtBase());
        KvmDtable.limit(idt, b.idtLimit());
        KvmSregs.cr0(s, b.cr0());
        KvmSregs.cr3(s, b.cr3());
        KvmSregs.cr4(s, b.cr4());
        KvmSregs.efer(s, b.efer());
        vcpu.putSregs();
        MemorySegment r = vcpu.regsBuffer();
        r.fill((byte) 0);
        KvmRegs.rip(r, b.rip());
        KvmRegs.rsi(r, b.rsi());
        KvmRegs.rsp(r, b.rsp());
        KvmRegs.rflags(r, b.rflags());
        vcpu.putRegs();
    }

    private static void segment(MemorySegment sregs, long offset, Segment g) {
        MemorySegment k = sregs.asSlice(offset, KvmSegment.SIZE);
        KvmSegment.base(k, g.base());
        KvmSegment.limit(k, (int) g.limit());
        KvmSegment.selector(k, g.selector());
        KvmSegment.type(k, g.type());
        KvmSegment.present(k, g.present() ? 1 : 0);
        KvmSegment.dpl(k, g.dpl());
        KvmSegment.db(k, g.db() ? 1 : 0);
        KvmSegment.s(k, g.s() ? 1 : 0);
        KvmSegment.l(k, g.l() ? 1 : 0);
        KvmSegment.g(k, g.g() ? 1 : 0);
        KvmSegment.avl(k, g.avl() ? 1 : 0);
        KvmSegment.unusable(k, g.unusable() ? 1 : 0);
    }
}
