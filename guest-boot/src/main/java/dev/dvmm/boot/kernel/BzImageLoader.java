package dev.dvmm.boot.kernel;

import dev.dvmm.boot.BootException;
import dev.dvmm.boot.Layout;
import dev.dvmm.boot.memory.GuestPhysicalMemory;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * Places the protected-mode part of a bzImage in guest memory for the 64-bit boot protocol: at
 * the kernel's pref_address when it is relocatable and the kernel fits there, else at 1 MiB. The
 * entry point is 0x200 past the load address. Configuration (zero page, registers) is separate.
 */
public final class BzImageLoader {
    private BzImageLoader() {}

    public static LoadedKernel load(GuestPhysicalMemory memory, KernelFile file) {
        SetupHeader header = SetupHeader.parse(file);
        String name = file.name();
        long ramEnd = Layout.lowRamEnd(memory.size());
        long imageOffset = header.setupBytes();
        long imageSize = file.size() - imageOffset;

        long loadAddress = Layout.HIGH_MEMORY;
        long pref = header.prefAddress();
        boolean prefUsable = header.relocatable() && pref >= Layout.HIGH_MEMORY
                && (pref & (header.kernelAlignment() - 1)) == 0;
        if (prefUsable) {
            loadAddress = pref;
        }
        // The decompressor runs at pref_address (if loaded below it) and needs init_size bytes there.
        long runAddress = Math.max(loadAddress, pref);
        // Compared by subtraction so that a corrupt pref_address or init_size cannot overflow.
        boolean fits = loadAddress <= ramEnd && imageSize <= ramEnd - loadAddress
                && runAddress <= ramEnd && header.initSize() <= ramEnd - runAddress;
        if (!fits) {
            throw new BootException(BootException.Kind.DOES_NOT_FIT, String.format(
                    "%s: the kernel needs guest memory from 0x%x to 0x%x (init_size 0x%x at its run address) but low RAM ends at 0x%x: give the guest more memory.",
                    name, loadAddress, runAddress + header.initSize(), header.initSize(), ramEnd));
        }
        long footprintEnd = Math.max(loadAddress + imageSize, runAddress + header.initSize());
        memory.write(loadAddress, file.segment(), imageOffset, imageSize);

        int headerLength = header.headerEnd() - SetupHeader.SETUP_SECTS;
        byte[] headerBytes = file.bytes(SetupHeader.SETUP_SECTS, headerLength, "the setup header");
        return new LoadedKernel(name, LoadedKernel.Format.BZIMAGE, loadAddress,
                loadAddress + SetupHeader.ENTRY_64_OFFSET, footprintEnd, header.cmdlineSize(),
                header.initrdAddrMax(), Optional.of(header), headerBytes, OptionalLong.empty());
    }
}
