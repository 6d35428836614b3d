package dev.dvmm.boot.kernel;

import dev.dvmm.boot.BootException;
import dev.dvmm.boot.Layout;
import dev.dvmm.boot.memory.GuestPhysicalMemory;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * Loads an uncompressed vmlinux (ELF64, x86-64): every PT_LOAD segment goes to its physical
 * address (p_paddr), its bss tail zeroed. The entry is e_entry translated to a physical address;
 * the PVH 32-bit entry from a Xen ELF note is reported when present.
 */
public final class ElfKernelLoader {
    private ElfKernelLoader() {}

    static final int ELF_HEADER_SIZE = 64;
    static final int PHDR_SIZE = 56;
    static final long ELF_MAGIC = 0x464c_457fL; // "\x7fELF" little-endian
    static final int ELFCLASS64 = 2;
    static final int ELFDATA2LSB = 1;
    static final int ET_EXEC = 2;
    static final int EM_X86_64 = 62;
    static final int PT_LOAD = 1;
    static final int PT_NOTE = 4;
    /** Xen note type whose descriptor is the PVH 32-bit entry point (physical). */
    public static final int XEN_ELFNOTE_PHYS32_ENTRY = 18;
    /** x86 COMMAND_LINE_SIZE is 2048 with its NUL: an ELF kernel carries no cmdline_size. */
    public static final long DEFAULT_CMDLINE_MAX = 2047;
    /** Protocol default initrd_addr_max for kernels that do not state one. */
    public static final long DEFAULT_INITRD_ADDR_MAX = 0x7fff_ffffL;

    private record Segment(long offset, long vaddr, long paddr, long filesz, long memsz) {}

    /** Whether {@code file} starts with the ELF magic. */
    public static boolean isElf(KernelFile file) {
        return file.size() >= 4 && file.u32(0, "ELF magic") == ELF_MAGIC;
    }

    public static LoadedKernel load(GuestPhysicalMemory memory, KernelFile file) {
        String name = file.name();
        file.require(0, ELF_HEADER_SIZE, "the ELF header");
        if (!isElf(file)) {
            throw new BootException(BootException.Kind.NOT_A_KERNEL, name + ": not an ELF file (bad magic).");
        }
        if (file.u8(4, "EI_CLASS") != ELFCLASS64 || file.u8(5, "EI_DATA") != ELFDATA2LSB) {
            throw new BootException(BootException.Kind.UNSUPPORTED, name + ": not a 64-bit little-endian ELF file.");
        }
        int type = file.u16(16, "e_type");
        int machine = file.u16(18, "e_machine");
        if (machine != EM_X86_64) {
            throw new BootException(BootException.Kind.UNSUPPORTED, name + ": an ELF file for machine " + machine + ", not x86-64 (62).");
        }
        if (type != ET_EXEC) {
            throw new BootException(BootException.Kind.UNSUPPORTED, name + ": an ELF file of type " + type + ", not an executable (vmlinux is ET_EXEC).");
        }
        long entry = file.u64(24, "e_entry");
        long phoff = file.u64(32, "e_phoff");
        int phentsize = file.u16(54, "e_phentsize");
        int phnum = file.u16(56, "e_phnum");
        if (phentsize != PHDR_SIZE || phnum == 0 || phnum == 0xffff) {
            throw new BootException(BootException.Kind.CORRUPT, String.format(
                    "%s: corrupt ELF: %d program headers of %d bytes (expected 1-65534 of 56).", name, phnum, phentsize));
        }
        file.require(phoff, (long) phnum * PHDR_SIZE, "the program header table");

        long ramEnd = Layout.lowRamEnd(memory.size());
        List<Segment> loads = new ArrayList<>();
        OptionalLong pvh = OptionalLong.empty();
        for (int i = 0; i < phnum; i++) {
            long ph = phoff + (long) i * PHDR_SIZE;
            long pType = file.u32(ph, "p_type");
            long offset = file.u64(ph + 8, "p_offset");
            long filesz = file.u64(ph + 32, "p_filesz");
            if (pType == PT_NOTE && pvh.isEmpty()) {
                file.require(offset, filesz, "note segment " + i);
                pvh = pvhEntry(file, offset, filesz);
            }
            if (pType != PT_LOAD) {
                continue;
            }
            Segment s = new Segment(offset, file.u64(ph + 16, "p_vaddr"), file.u64(ph + 24, "p_paddr"),
                    filesz, file.u64(ph + 40, "p_memsz"));
            file.require(s.offset, s.filesz, "load segment " + i);
            if (s.filesz > s.memsz || s.memsz < 0) {
                throw new BootException(BootException.Kind.CORRUPT, String.format(
                        "%s: corrupt ELF: load segment %d has more file bytes (0x%x) than memory bytes (0x%x).",
                        name, i, s.filesz, s.memsz));
            }
            if (s.paddr < Layout.HIGH_MEMORY || s.paddr > ramEnd - s.memsz) {
                throw new BootException(BootException.Kind.DOES_NOT_FIT, String.format(
                        "%s: load segment %d at physical [0x%x, +0x%x) does not fit between 1 MiB and the end of low RAM (0x%x).",
                        name, i, s.paddr, s.memsz, ramEnd));
            }
            loads.add(s);
        }
        if (loads.isEmpty()) {
            throw new BootException(BootException.Kind.CORRUPT, name + ": the ELF file has no loadable segment.");
        }
        long lowest = Long.MAX_VALUE;
        long end = 0;
        for (Segment s : loads) {
            memory.write(s.paddr, file.segment(), s.offset, s.filesz);
            memory.zero(s.paddr + s.filesz, s.memsz - s.filesz);
            lowest = Math.min(lowest, s.paddr);
            end = Math.max(end, s.paddr + s.memsz);
        }
        long entry64 = physicalEntry(name, entry, loads);
        return new LoadedKernel(name, LoadedKernel.Format.ELF, lowest, entry64, end, DEFAULT_CMDLINE_MAX,
                DEFAULT_INITRD_ADDR_MAX, Optional.empty(), new byte[0], pvh);
    }

    /** e_entry is virtual in some links and physical in others (vmlinux: phys_startup_64). */
    private static long physicalEntry(String name, long entry, List<Segment> loads) {
        for (Segment s : loads) {
            if (Long.compareUnsigned(entry - s.vaddr, s.memsz) < 0) {
                return s.paddr + (entry - s.vaddr);
            }
        }
        for (Segment s : loads) {
            if (Long.compareUnsigned(entry - s.paddr, s.memsz) < 0) {
                return entry;
            }
        }
        throw new BootException(BootException.Kind.CORRUPT, String.format(
                "%s: the entry point 0x%x is in no loadable segment.", name, entry));
    }

    /** Walks the notes of one PT_NOTE segment for Xen's PHYS32_ENTRY. */
    private static OptionalLong pvhEntry(KernelFile file, long offset, long size) {
        long at = offset;
        long end = offset + size;
        while (end - at >= 12) {
            long namesz = file.u32(at, "note namesz");
            long descsz = file.u32(at + 4, "note descsz");
            long noteType = file.u32(at + 8, "note type");
            long nameAt = at + 12;
            long descAt = nameAt + align4(namesz);
            long next = descAt + align4(descsz);
            if (next > end || next <= at) {
                throw new BootException(BootException.Kind.CORRUPT, String.format(
                        "%s: corrupt ELF: a note at 0x%x runs past its segment's end 0x%x.", file.name(), at, end));
            }
            if (noteType == XEN_ELFNOTE_PHYS32_ENTRY && namesz == 4 && isXen(file, nameAt)
                    && (descsz == 4 || descsz == 8)) {
                return OptionalLong.of(descsz == 4 ? file.u32(descAt, "PVH entry") : file.u64(descAt, "PVH entry"));
            }
            at = next;
        }
        return OptionalLong.empty();
    }

    private static boolean isXen(KernelFile file, long at) {
        return file.u8(at, "note name") == 'X' && file.u8(at + 1, "note name") == 'e'
                && file.u8(at + 2, "note name") == 'n' && file.u8(at + 3, "note name") == 0;
    }

    private static long align4(long n) {
        return (n + 3) & ~3L;
    }
}
