package dev.dvmm.hv.arch;

import dev.dvmm.bindings.abi.KvmDtable;
import dev.dvmm.bindings.abi.KvmRegs;
import dev.dvmm.bindings.abi.KvmSegment;
import dev.dvmm.bindings.abi.KvmSregs;
import dev.dvmm.hv.vstate.GuestMemory;
import dev.dvmm.hv.vstate.Vcpu;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Initial CPU state for the hand-written test guests: flat real mode, or 64-bit long mode with an
 * identity map of the first 4 GiB (2 MiB pages, user-accessible so ring-3 test loops can run).
 */
public final class X86Setup {
    public static final long GDT_BASE = 0x500;
    public static final long PML4 = 0x10000;
    public static final long PDPT = 0x11000;
    /** Four page directories, one per GiB, at PD, PD + 0x1000, ... */
    public static final long PD = 0x12000;

    public static final int SEL_KCODE = 0x08;
    public static final int SEL_KDATA = 0x10;
    public static final int SEL_TSS = 0x28;

    private static final long CR0_PE = 1;
    private static final long CR0_MP = 1 << 1;
    private static final long CR0_ET = 1 << 4;
    private static final long CR0_NE = 1 << 5;
    private static final long CR0_WP = 1 << 16;
    private static final long CR0_PG = 1L << 31;
    private static final long CR4_PAE = 1 << 5;
    private static final long CR4_OSFXSR = 1 << 9;
    private static final long CR4_OSXMMEXCPT = 1 << 10;
    private static final long EFER_LME = 1 << 8;
    private static final long EFER_LMA = 1 << 10;

    private static final long PTE_PRESENT = 1;
    private static final long PTE_WRITE = 1 << 1;
    private static final long PTE_USER = 1 << 2;
    private static final long PTE_LARGE = 1 << 7;

    private X86Setup() {}

    /** Writes the GDT and identity page tables once per VM into guest memory. */
    public static void writeLongModeTables(GuestMemory mem) {
        // Built in a scratch buffer laid out like guest memory from 0, then copied natively: guest memory
        // may be userfaultfd-backed (see Posix.copyNative).
        try (java.lang.foreign.Arena a = java.lang.foreign.Arena.ofConfined()) {
            MemorySegment m = a.allocate(PD + 4 * 0x1000L);
            fillTables(m);
            dev.dvmm.bindings.Posix.copyNative(m, GDT_BASE, mem.guestMapping(), GDT_BASE, 7 * 8);
            dev.dvmm.bindings.Posix.copyNative(m, PML4, mem.guestMapping(), PML4, PD + 4 * 0x1000L - PML4);
        }
    }

    private static void fillTables(MemorySegment m) {
        long[] gdt = {
            0,
            0x00af9a000000ffffL, // 0x08 kernel code, 64-bit
            0x00cf92000000ffffL, // 0x10 kernel data
            0x00cff2000000ffffL, // 0x18 user data (DPL 3)
            0x00affa000000ffffL, // 0x20 user code, 64-bit (DPL 3)
            0x0000890000000067L, // 0x28 TSS (base 0, limit 0x67), 16-byte descriptor
            0,
        };
        for (int i = 0; i < gdt.length; i++) {
            m.set(ValueLayout.JAVA_LONG_UNALIGNED, GDT_BASE + i * 8L, gdt[i]);
        }
        m.set(ValueLayout.JAVA_LONG_UNALIGNED, PML4, PDPT | PTE_PRESENT | PTE_WRITE | PTE_USER);
        for (int g = 0; g < 4; g++) {
            m.set(ValueLayout.JAVA_LONG_UNALIGNED, PDPT + g * 8L, (PD + g * 0x1000L) | PTE_PRESENT | PTE_WRITE | PTE_USER);
        }
        for (int i = 0; i < 4 * 512; i++) {
            long entry = ((long) i << 21) | PTE_PRESENT | PTE_WRITE | PTE_USER | PTE_LARGE;
            m.set(ValueLayout.JAVA_LONG_UNALIGNED, PD + i * 8L, entry);
        }
    }

    private static void segment(MemorySegment sregs, long offset, int selector, int type, int code64, int dpl,
                                boolean system) {
        MemorySegment s = sregs.asSlice(offset, KvmSegment.SIZE);
        KvmSegment.base(s, 0);
        KvmSegment.limit(s, system ? 0x67 : 0xffffffff);
        KvmSegment.selector(s, selector);
        KvmSegment.type(s, type);
        KvmSegment.present(s, 1);
        KvmSegment.dpl(s, dpl);
        KvmSegment.db(s, system || code64 == 1 ? 0 : 1);
        KvmSegment.s(s, system ? 0 : 1);
        KvmSegment.l(s, code64);
        KvmSegment.g(s, system ? 0 : 1);
        KvmSegment.avl(s, 0);
        KvmSegment.unusable(s, 0);
    }

    /** Long mode, ring 0, at {@code rip} with the given stack and the first three argument registers. */
    public static void enterLongMode(Vcpu vcpu, long rip, long rsp, long rdi, long rsi, long rdx) {
        enterLongMode(vcpu, rip, rsp, rdi, rsi, rdx, 0);
    }

    /** Long mode, ring 0, at {@code rip} with the given stack and the first four argument registers. */
    public static void enterLongMode(Vcpu vcpu, long rip, long rsp, long rdi, long rsi, long rdx, long rcx) {
        MemorySegment s = vcpu.getSregs();
        segment(s, KvmSregs.CS_OFFSET, SEL_KCODE, 0xb, 1, 0, false);
        for (long off : new long[] {KvmSregs.DS_OFFSET, KvmSregs.ES_OFFSET, KvmSregs.FS_OFFSET,
                KvmSregs.GS_OFFSET, KvmSregs.SS_OFFSET}) {
            segment(s, off, SEL_KDATA, 0x3, 0, 0, false);
        }
        segment(s, KvmSregs.TR_OFFSET, SEL_TSS, 0xb, 0, 0, true);
        MemorySegment gdt = s.asSlice(KvmSregs.GDT_OFFSET, KvmDtable.SIZE);
        KvmDtable.base(gdt, GDT_BASE);
        KvmDtable.limit(gdt, 7 * 8 - 1);
        KvmSregs.cr0(s, CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG);
        KvmSregs.cr3(s, PML4);
        KvmSregs.cr4(s, CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT);
        KvmSregs.efer(s, EFER_LME | EFER_LMA);
        vcpu.putSregs();
        MemorySegment r = vcpu.regsBuffer();
        r.fill((byte) 0);
        KvmRegs.rip(r, rip);
        KvmRegs.rsp(r, rsp);
        KvmRegs.rdi(r, rdi);
        KvmRegs.rsi(r, rsi);
        KvmRegs.rdx(r, rdx);
        KvmRegs.rcx(r, rcx);
        KvmRegs.rflags(r, 0x2);
        vcpu.putRegs();
    }

    /** Flat real mode (all segment bases 0) at {@code ip}. */
    public static void enterRealMode(Vcpu vcpu, long ip) {
        MemorySegment s = vcpu.getSregs();
        for (long off : new long[] {KvmSregs.CS_OFFSET, KvmSregs.DS_OFFSET, KvmSregs.ES_OFFSET,
                KvmSregs.FS_OFFSET, KvmSregs.GS_OFFSET, KvmSregs.SS_OFFSET}) {
            MemorySegment seg = s.asSlice(off, KvmSegment.SIZE);
            KvmSegment.base(seg, 0);
            KvmSegment.selector(seg, 0);
        }
        vcpu.putSregs();
        MemorySegment r = vcpu.regsBuffer();
        r.fill((byte) 0);
        KvmRegs.rip(r, ip);
        KvmRegs.rsp(r, 0x7000);
        KvmRegs.rflags(r, 0x2);
        vcpu.putRegs();
    }
}
