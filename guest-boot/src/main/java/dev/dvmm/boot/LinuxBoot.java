package dev.dvmm.boot;

import dev.dvmm.boot.kernel.InitrdLoader;
import dev.dvmm.boot.kernel.InitrdLoader.LoadedInitrd;
import dev.dvmm.boot.kernel.KernelFile;
import dev.dvmm.boot.kernel.KernelLoader;
import dev.dvmm.boot.kernel.LoadedKernel;
import dev.dvmm.boot.linux.BootConfigurator;
import dev.dvmm.boot.linux.KernelCommandLine;
import dev.dvmm.boot.linux.PageTables;
import dev.dvmm.boot.linux.X86BootState;
import dev.dvmm.boot.memory.GuestPhysicalMemory;
import dev.dvmm.boot.smp.FirmwareTables;
import dev.dvmm.boot.smp.MachineTopology;
import dev.dvmm.boot.smp.SmpEnumeration;
import java.util.Optional;

/**
 * Prepares guest memory to boot Linux in one call: load the kernel and initramfs, write the SMP
 * tables, configure the zero page, page tables and GDT. The hypervisor then loads
 * {@link Prepared#state()} into the boot vCPU; the other vCPUs wait for INIT/SIPI.
 *
 * <pre>{@code
 * Prepared p = new LinuxBoot(memory)
 *         .kernel(KernelFile.open(kernelPath))
 *         .initramfs(KernelFile.of("initramfs", archive.toByteArray()))
 *         .cmdline(new KernelCommandLine().add("console", "ttyS0"))
 *         .vcpus(4).smp(SmpEnumeration.BOTH)
 *         .prepare();
 * }</pre>
 */
public final class LinuxBoot {
    private final GuestPhysicalMemory memory;
    private KernelFile kernel;
    private KernelFile initramfs;
    private KernelCommandLine cmdline = new KernelCommandLine();
    private int vcpus = 1;
    private SmpEnumeration smp = SmpEnumeration.BOTH;
    private PageTables.PageSize pageSize = PageTables.PageSize.TWO_MIB;

    /** Everything the boot wrote, and the boot vCPU's starting state. */
    public record Prepared(LoadedKernel kernel, Optional<LoadedInitrd> initrd, FirmwareTables.Written firmware,
                           X86BootState state) {}

    public LinuxBoot(GuestPhysicalMemory memory) {
        this.memory = memory;
    }

    public LinuxBoot kernel(KernelFile file) {
        this.kernel = file;
        return this;
    }

    public LinuxBoot initramfs(KernelFile file) {
        this.initramfs = file;
        return this;
    }

    public LinuxBoot cmdline(KernelCommandLine line) {
        this.cmdline = line;
        return this;
    }

    public LinuxBoot vcpus(int count) {
        this.vcpus = count;
        return this;
    }

    public LinuxBoot smp(SmpEnumeration enumeration) {
        this.smp = enumeration;
        return this;
    }

    public LinuxBoot pageSize(PageTables.PageSize size) {
        this.pageSize = size;
        return this;
    }

    public Prepared prepare() {
        if (kernel == null) {
            throw new BootException(BootException.Kind.INVALID_ARGUMENT, "no kernel was given.");
        }
        MachineTopology topology = new MachineTopology(vcpus);
        LoadedKernel loaded = KernelLoader.load(memory, kernel);
        LoadedInitrd initrd = initramfs == null ? null : InitrdLoader.load(memory, loaded, initramfs);
        FirmwareTables.Written firmware = FirmwareTables.write(memory, topology, smp);
        X86BootState state = BootConfigurator.configure(memory, loaded, cmdline, initrd, firmware.rsdp(), pageSize);
        return new Prepared(loaded, Optional.ofNullable(initrd), firmware, state);
    }
}
