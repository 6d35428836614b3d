package dev.dvmm.boot.kernel;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Synthetic kernels for the loader tests, built field by field from the boot protocol and ELF
 * specifications (no real kernel needed): a bzImage with a valid setup header and an ELF64
 * vmlinux look-alike with PT_LOAD and PT_NOTE segments.
 */
public final class TestImages {
    private TestImages() {}

    /** The byte a test kernel has at offset i of its protected-mode part (a recognisable pattern). */
    public static byte pattern(long i) {
        return (byte) (i * 31 + 7);
    }

    /** A bzImage whose fields tests may change before {@link #build()}. */
    public static final class BzImage {
        public int setupSectsField = 4;
        public int version = 0x020f;
        public int loadflags = SetupHeader.LOADED_HIGH;
        public int xloadflags = SetupHeader.XLF_KERNEL_64 | SetupHeader.XLF_CAN_BE_LOADED_ABOVE_4G;
        public long kernelAlignment = 0x20_0000;
        public boolean relocatable = true;
        public long cmdlineSize = 2047;
        public long initrdAddrMax = 0x7fff_ffffL;
        public long prefAddress = 0x100_0000;
        public long initSize = 0x40_0000;
        public int kernelBytes = 0x3000;
        public int headerEnd = 0x26c;
        public String kernelVersion = "6.99.0-dvmm-test (test@dvmm) #1 SMP";
        public int bootFlag = SetupHeader.BOOT_FLAG_MAGIC;
        public String magic = "HdrS";

        public int setupSects() {
            return setupSectsField == 0 ? 4 : setupSectsField;
        }

        public byte[] build() {
            int setupBytes = (setupSects() + 1) * 512;
            ByteBuffer b = ByteBuffer.allocate(setupBytes + kernelBytes).order(ByteOrder.LITTLE_ENDIAN);
            b.put(SetupHeader.SETUP_SECTS, (byte) setupSectsField);
            b.putInt(SetupHeader.SYSSIZE, (kernelBytes + 15) / 16);
            b.putShort(0x1fa, (short) 0xffff); // vid_mode: normal
            b.putShort(SetupHeader.BOOT_FLAG, (short) bootFlag);
            b.put(SetupHeader.JUMP, (byte) 0xeb);
            b.put(SetupHeader.JUMP + 1, (byte) (headerEnd - SetupHeader.HEADER));
            byte[] m = magic.getBytes(StandardCharsets.US_ASCII);
            for (int i = 0; i < 4; i++) {
                b.put(SetupHeader.HEADER + i, m[i]);
            }
            b.putShort(SetupHeader.VERSION, (short) version);
            int versionAt = 0x300; // inside the setup sectors, after the header
            b.putShort(SetupHeader.KERNEL_VERSION, (short) (versionAt - 0x200));
            byte[] v = kernelVersion.getBytes(StandardCharsets.US_ASCII);
            for (int i = 0; i < v.length; i++) {
                b.put(versionAt + i, v[i]);
            }
            b.put(SetupHeader.LOADFLAGS, (byte) loadflags);
            b.putInt(SetupHeader.CODE32_START, 0x10_0000);
            b.putInt(SetupHeader.INITRD_ADDR_MAX, (int) initrdAddrMax);
            b.putInt(SetupHeader.KERNEL_ALIGNMENT, (int) kernelAlignment);
            b.put(SetupHeader.RELOCATABLE_KERNEL, (byte) (relocatable ? 1 : 0));
            b.put(0x235, (byte) 21); // min_alignment
            b.putShort(SetupHeader.XLOADFLAGS, (short) xloadflags);
            b.putInt(SetupHeader.CMDLINE_SIZE, (int) cmdlineSize);
            b.putLong(SetupHeader.PREF_ADDRESS, prefAddress);
            b.putInt(SetupHeader.INIT_SIZE, (int) initSize);
            for (int i = 0; i < kernelBytes; i++) {
                b.put(setupBytes + i, pattern(i));
            }
            return b.array();
        }
    }

    /** One loadable segment of a test ELF. */
    public record ElfSegment(long vaddr, long paddr, byte[] data, long memsz) {}

    /** An ELF64 x86-64 executable whose fields tests may change before {@link #build()}. */
    public static final class Elf {
        public int elfClass = 2;
        public int dataEncoding = 1;
        public int type = 2;
        public int machine = 62;
        public long entry = 0xffff_ffff_8100_0000L;
        public int phentsize = 56;
        public final List<ElfSegment> segments = new ArrayList<>();
        /** The PVH entry written as a Xen note, or -1 for none. */
        public long pvhEntry = -1;
        /** Width of the note's descriptor: Linux writes 8 (a .quad on x86-64). */
        public int pvhDescSize = 8;
        /** Extra non-Xen note before the Xen one, to test the note walk. */
        public boolean otherNoteFirst = true;

        public Elf() {
            segments.add(new ElfSegment(0xffff_ffff_8100_0000L, 0x100_0000, data(0x2000, 0), 0x2000));
            // A data segment whose bss (memsz > filesz) must be zeroed.
            segments.add(new ElfSegment(0xffff_ffff_8120_0000L, 0x120_0000, data(0x800, 0x2000), 0x1800));
        }

        public static byte[] data(int size, long seed) {
            byte[] d = new byte[size];
            for (int i = 0; i < size; i++) {
                d[i] = pattern(seed + i);
            }
            return d;
        }

        private byte[] notes() {
            ByteBuffer n = ByteBuffer.allocate(256).order(ByteOrder.LITTLE_ENDIAN);
            if (otherNoteFirst) {
                n.putInt(4).putInt(4).putInt(1).put("GNU\0".getBytes(StandardCharsets.US_ASCII)).putInt(0x1234);
            }
            if (pvhEntry >= 0) {
                n.putInt(4).putInt(pvhDescSize).putInt(ElfKernelLoader.XEN_ELFNOTE_PHYS32_ENTRY)
                        .put("Xen\0".getBytes(StandardCharsets.US_ASCII));
                if (pvhDescSize == 8) {
                    n.putLong(pvhEntry);
                } else {
                    n.putInt((int) pvhEntry);
                }
            }
            byte[] out = new byte[n.position()];
            n.flip().get(out);
            return out;
        }

        public byte[] build() {
            byte[] notes = notes();
            int phnum = segments.size() + (notes.length > 0 ? 1 : 0);
            int dataStart = 64 + phnum * 56;
            int size = dataStart;
            for (ElfSegment s : segments) {
                size = align16(size) + s.data().length;
            }
            size = align16(size) + notes.length;
            ByteBuffer b = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
            b.put(new byte[] {0x7f, 'E', 'L', 'F', (byte) elfClass, (byte) dataEncoding, 1, 0});
            b.putShort(16, (short) type).putShort(18, (short) machine).putInt(20, 1)
                    .putLong(24, entry).putLong(32, 64).putLong(40, 0).putInt(48, 0)
                    .putShort(52, (short) 64).putShort(54, (short) phentsize).putShort(56, (short) phnum);
            int at = dataStart;
            int ph = 64;
            for (ElfSegment s : segments) {
                at = align16(at);
                b.putInt(ph, 1).putInt(ph + 4, 7).putLong(ph + 8, at).putLong(ph + 16, s.vaddr())
                        .putLong(ph + 24, s.paddr()).putLong(ph + 32, s.data().length)
                        .putLong(ph + 40, s.memsz()).putLong(ph + 48, 0x20_0000);
                b.put(at, s.data());
                at += s.data().length;
                ph += 56;
            }
            if (notes.length > 0) {
                at = align16(at);
                b.putInt(ph, 4).putInt(ph + 4, 4).putLong(ph + 8, at).putLong(ph + 32, notes.length)
                        .putLong(ph + 40, notes.length).putLong(ph + 48, 4);
                b.put(at, notes);
            }
            return b.array();
        }

        private static int align16(int n) {
            return (n + 15) & ~15;
        }
    }
}
