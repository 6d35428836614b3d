package dev.dvmm.boot.kernel;

import dev.dvmm.boot.BootException;
import dev.dvmm.boot.memory.GuestPhysicalMemory;
import java.nio.file.Path;

/** Loads a kernel file of either format, recognised by its magic. */
public final class KernelLoader {
    private KernelLoader() {}

    public static LoadedKernel load(GuestPhysicalMemory memory, Path path) {
        try (KernelFile file = KernelFile.open(path)) {
            return load(memory, file);
        }
    }

    public static LoadedKernel load(GuestPhysicalMemory memory, KernelFile file) {
        if (ElfKernelLoader.isElf(file)) {
            return ElfKernelLoader.load(memory, file);
        }
        if (SetupHeader.isPresent(file)) {
            return BzImageLoader.load(memory, file);
        }
        throw new BootException(BootException.Kind.NOT_A_KERNEL, file.name() + ": not a Linux kernel (neither a bzImage nor an ELF vmlinux).");
    }
}
