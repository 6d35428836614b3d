package dev.dvmm.boot.linux;

/**
 * The CPU state the boot vCPU starts in for the 64-bit Linux boot protocol: long mode with paging
 * on the identity map, flat segments from the boot GDT, interrupts off, RSI pointing at the zero
 * page. The hypervisor copies these values into kvm_regs / kvm_sregs unchanged; the IDT is empty
 * (limit 0), so any exception before the kernel sets up its own ends in a triple fault.
 */
public record X86BootState(
        long rip,
        long rsi,
        long rsp,
        long rflags,
        long cr0,
        long cr3,
        long cr4,
        long efer,
        long gdtBase,
        int gdtLimit,
        long idtBase,
        int idtLimit,
        Segment cs,
        Segment ds,
        Segment es,
        Segment fs,
        Segment gs,
        Segment ss,
        Segment tr,
        Segment ldt) {

    /** CR0: PE (protection), ET (387 present), NE (native FPU errors), PG (paging). */
    public static final long CR0_BOOT = 1L | 1L << 4 | 1L << 5 | 1L << 31;
    /** CR4: PAE, required for long mode. */
    public static final long CR4_BOOT = 1L << 5;
    /** EFER: LME (long mode enable) and LMA (long mode active). */
    public static final long EFER_BOOT = 1L << 8 | 1L << 10;
    /** RFLAGS: only the always-one bit 1; IF clear. */
    public static final long RFLAGS_BOOT = 0x2;
}
