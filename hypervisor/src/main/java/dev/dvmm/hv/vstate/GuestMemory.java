package dev.dvmm.hv.vstate;

import dev.dvmm.bindings.Posix;
import dev.dvmm.bindings.abi.PosixConstants;
import java.lang.foreign.MemorySegment;

/**
 * Guest RAM: one memfd mapped twice (ARCHITECTURE.md section 5).
 *
 * <p>The <em>guest mapping</em> is what KVM's memslots point at (and what the DSM registers with
 * userfaultfd); the <em>alias mapping</em> is a second view of the same pages that the DSM service uses
 * to read and write page contents without ever faulting on itself. Guest physical address {@code gpa}
 * is at offset {@code gpa} of both mappings for RAM below the PCI hole, see {@link #offsetOf}.
 */
public final class GuestMemory implements AutoCloseable {
    public static final long PAGE_SIZE = 4096;
    /** Start of the 32-bit MMIO hole (LAPIC, IOAPIC live in it); RAM above continues at 4 GiB. */
    public static final long MMIO_HOLE_START = 0xC000_0000L;
    public static final long FOUR_GIB = 0x1_0000_0000L;

    private final long size;
    private final int memfd;
    private final MemorySegment guestMapping;
    private final MemorySegment aliasMapping;
    private boolean closed;

    private GuestMemory(long size, int memfd, MemorySegment guest, MemorySegment alias) {
        this.size = size;
        this.memfd = memfd;
        this.guestMapping = guest;
        this.aliasMapping = alias;
    }

    /** Checks a user-given size, with the reason when it is unusable. */
    public static void validateSize(long bytes) {
        if (bytes <= 0) {
            throw new KvmException("guest memory size must be positive, got " + bytes);
        }
        if (bytes % PAGE_SIZE != 0) {
            throw new KvmException("guest memory size " + bytes + " bytes is not a multiple of the "
                    + PAGE_SIZE + "-byte page size");
        }
        if (bytes < 1 << 20) {
            throw new KvmException("guest memory size " + bytes + " bytes is below the 1 MiB minimum");
        }
    }

    public static GuestMemory create(long bytes, String name) {
        validateSize(bytes);
        Posix px = Posix.current();
        int fd = Posix.check(px.memfdCreate(name, PosixConstants.MFD_CLOEXEC), "memfd_create");
        try {
            Posix.check(px.ftruncate(fd, bytes), "ftruncate guest memfd to " + bytes + " bytes");
            int rw = PosixConstants.PROT_READ | PosixConstants.PROT_WRITE;
            int flags = PosixConstants.MAP_SHARED | PosixConstants.MAP_NORESERVE;
            MemorySegment guest = px.mmapChecked(0, bytes, rw, flags, fd, 0, "guest mapping");
            MemorySegment alias = px.mmapChecked(0, bytes, rw, flags, fd, 0, "alias mapping");
            return new GuestMemory(bytes, fd, guest, alias);
        } catch (RuntimeException e) {
            px.close(fd);
            throw e;
        }
    }

    public long size() { return size; }

    public int memfd() { return memfd; }

    /** The mapping KVM and the VMM's own device threads use. */
    public MemorySegment guestMapping() { return guestMapping; }

    /** The second view used only by the DSM service (never registered with userfaultfd). */
    public MemorySegment aliasMapping() { return aliasMapping; }

    /** Memfd offset of a guest physical address, or -1 if it is not RAM. */
    public long offsetOf(long gpa) {
        long below = Math.min(size, MMIO_HOLE_START);
        if (gpa >= 0 && gpa < below) {
            return gpa;
        }
        if (gpa >= FOUR_GIB && gpa - FOUR_GIB < size - below) {
            return below + (gpa - FOUR_GIB);
        }
        return -1;
    }

    /** Memslots: {guestPhysAddr, memfdOffset, length} per RAM region. */
    public long[][] regions() {
        long below = Math.min(size, MMIO_HOLE_START);
        if (size <= MMIO_HOLE_START) {
            return new long[][] {{0, 0, below}};
        }
        return new long[][] {{0, 0, below}, {FOUR_GIB, below, size - below}};
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            Posix px = Posix.current();
            px.munmap(guestMapping);
            px.munmap(aliasMapping);
            px.close(memfd);
        }
    }
}
