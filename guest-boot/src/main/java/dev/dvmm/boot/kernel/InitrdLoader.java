package dev.dvmm.boot.kernel;

import dev.dvmm.boot.BootException;
import dev.dvmm.boot.Layout;
import dev.dvmm.boot.memory.GuestPhysicalMemory;

/**
 * Places an initramfs as high in low RAM as the kernel allows (below initrd_addr_max and the MMIO
 * gap), page aligned, and above everything the kernel uses while it starts.
 */
public final class InitrdLoader {
    private InitrdLoader() {}

    /** Where an initramfs lies in guest memory. */
    public record LoadedInitrd(long address, long size) {}

    public static LoadedInitrd load(GuestPhysicalMemory memory, LoadedKernel kernel, KernelFile initrd) {
        long size = initrd.size();
        if (size == 0) {
            throw new BootException(BootException.Kind.INVALID_ARGUMENT, initrd.name() + ": the initramfs is empty.");
        }
        long top = Math.min(Layout.lowRamEnd(memory.size()), kernel.initrdAddrMax() + 1);
        long floor = (kernel.footprintEnd() + Layout.PAGE_SIZE - 1) & -Layout.PAGE_SIZE;
        long address = (top - size) & -Layout.PAGE_SIZE;
        if (size > top || address < floor) {
            throw new BootException(BootException.Kind.DOES_NOT_FIT, String.format(
                    "%s: the initramfs (%d bytes) does not fit: only %d bytes are free between the kernel (ends at 0x%x) and 0x%x.",
                    initrd.name(), size, Math.max(0, top - floor), floor, top));
        }
        memory.write(address, initrd.segment(), 0, size);
        return new LoadedInitrd(address, size);
    }
}
