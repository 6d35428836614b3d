package dev.dvmm.boot.linux;

import dev.dvmm.boot.Layout;
import dev.dvmm.boot.kernel.InitrdLoader.LoadedInitrd;
import dev.dvmm.boot.kernel.LoadedKernel;
import dev.dvmm.boot.memory.GuestPhysicalMemory;
import java.util.OptionalLong;

/**
 * The configure half of booting (the load half is in {@code dev.dvmm.boot.kernel}): writes the
 * command line, the zero page, identity page tables and the GDT, and returns the register state
 * that makes the boot vCPU enter the kernel's 64-bit entry point.
 */
public final class BootConfigurator {
    private BootConfigurator() {}

    /**
     * @param initrd  the placed initramfs, or null without one
     * @param rsdp    the RSDP address when ACPI tables were written
     */
    public static X86BootState configure(GuestPhysicalMemory memory, LoadedKernel kernel, KernelCommandLine cmdline,
                                         LoadedInitrd initrd, OptionalLong rsdp, PageTables.PageSize pageSize) {
        byte[] line = cmdline.toBytes(Math.min(kernel.cmdlineMax(), Layout.CMDLINE_MAX - 1), kernel.name());
        memory.zero(Layout.CMDLINE, Layout.CMDLINE_MAX);
        memory.write(Layout.CMDLINE, line);
        ZeroPage.write(memory, kernel, initrd, E820Map.forRam(memory.size()), rsdp);
        long cr3 = PageTables.writeIdentityMap(memory, pageSize);
        Gdt.write(memory);
        Segment data = Gdt.dataSegment();
        return new X86BootState(kernel.entry64(), Layout.ZERO_PAGE, Layout.BOOT_STACK_TOP, X86BootState.RFLAGS_BOOT,
                X86BootState.CR0_BOOT, cr3, X86BootState.CR4_BOOT, X86BootState.EFER_BOOT,
                Layout.GDT, Gdt.LIMIT, 0, 0,
                Gdt.codeSegment(), data, data, data, data, data, Gdt.taskSegment(), Segment.unusableSegment());
    }
}
