package dev.dvmm.boot.kernel;

import java.util.Optional;
import java.util.OptionalLong;

/**
 * A kernel placed in guest memory, with what the boot configuration needs to know about it.
 *
 * @param name            the file it came from, for messages
 * @param format          bzImage or ELF vmlinux
 * @param loadAddress     lowest guest physical address the image was copied to
 * @param entry64         guest physical address of the 64-bit entry point (the initial RIP)
 * @param footprintEnd    first address above the memory the kernel may use while it starts
 *                        (its run address plus init_size for a bzImage, the end of the last
 *                        segment for an ELF): an initramfs must be placed above it
 * @param cmdlineMax      longest command line the kernel accepts, without the NUL
 * @param initrdAddrMax   highest address the last byte of an initramfs may have
 * @param setupHeader     the parsed setup header (bzImage only); its bytes go into the zero page
 * @param setupHeaderBytes the raw setup header bytes from 0x1f1 (empty for an ELF kernel)
 * @param pvhEntry        the 32-bit PVH entry (XEN_ELFNOTE_PHYS32_ENTRY) of an ELF kernel, if any
 */
public record LoadedKernel(
        String name,
        Format format,
        long loadAddress,
        long entry64,
        long footprintEnd,
        long cmdlineMax,
        long initrdAddrMax,
        Optional<SetupHeader> setupHeader,
        byte[] setupHeaderBytes,
        OptionalLong pvhEntry) {

    /** The kernel image formats dvmm boots. */
    public enum Format {
        BZIMAGE,
        ELF
    }

    public LoadedKernel {
        setupHeaderBytes = setupHeaderBytes.clone();
    }

    @Override
    public byte[] setupHeaderBytes() {
        return setupHeaderBytes.clone();
    }
}
