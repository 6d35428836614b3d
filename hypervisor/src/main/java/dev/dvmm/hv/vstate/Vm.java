package dev.dvmm.hv.vstate;

import dev.dvmm.bindings.Posix;
import dev.dvmm.bindings.abi.KvmConstants;
import dev.dvmm.bindings.abi.KvmIoctls;
import dev.dvmm.bindings.abi.KvmUserspaceMemoryRegion;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/** A KVM VM fd: memslots and vCPU creation. Owns its fd and its vCPUs. No in-kernel irqchip, by design. */
public final class Vm implements AutoCloseable {
    /** Where Intel's real-mode emulation keeps its TSS and identity map: just below the BIOS. */
    private static final long TSS_ADDR = 0xFFFB_D000L;

    private final Kvm kvm;
    private final int fd;
    private final List<Vcpu> vcpus = new ArrayList<>();
    private int nextSlot;
    private boolean closed;

    Vm(Kvm kvm, int fd) {
        this.kvm = kvm;
        this.fd = fd;
        if (kvm.checkExtension(KvmConstants.KVM_CAP_SET_TSS_ADDR) > 0) {
            // Needed by VMX hosts for real mode; harmless elsewhere.
            Posix.current().ioctl(fd, KvmIoctls.KVM_SET_TSS_ADDR, TSS_ADDR);
        }
    }

    public Kvm kvm() { return kvm; }

    public int fd() { return fd; }

    /** Registers every RAM region of {@code mem} (its guest mapping) as a memslot. */
    public void mapMemory(GuestMemory mem) {
        for (long[] r : mem.regions()) {
            setMemorySlot(nextSlot++, r[0], mem.guestMapping().address() + r[1], r[2], 0);
        }
    }

    public void setMemorySlot(int slot, long gpa, long hostAddress, long size, int flags) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment region = a.allocate(KvmUserspaceMemoryRegion.LAYOUT);
            KvmUserspaceMemoryRegion.slot(region, slot);
            KvmUserspaceMemoryRegion.flags(region, flags);
            KvmUserspaceMemoryRegion.guestPhysAddr(region, gpa);
            KvmUserspaceMemoryRegion.memorySize(region, size);
            KvmUserspaceMemoryRegion.userspaceAddr(region, hostAddress);
            int r = Posix.current().ioctl(fd, KvmIoctls.KVM_SET_USER_MEMORY_REGION, region);
            if (r < 0) {
                throw new KvmException("KVM_SET_USER_MEMORY_REGION slot " + slot + " at 0x" + Long.toHexString(gpa)
                        + " (" + size + " bytes): " + Posix.strerror(-r));
            }
        }
    }

    public Vcpu createVcpu(int index) {
        int vfd = Posix.current().ioctl(fd, KvmIoctls.KVM_CREATE_VCPU, (long) index);
        if (vfd < 0) {
            throw new KvmException("KVM_CREATE_VCPU " + index + ": " + Posix.strerror(-vfd));
        }
        Vcpu v = new Vcpu(this, index, vfd, kvm.vcpuMmapSize());
        vcpus.add(v);
        return v;
    }

    public List<Vcpu> vcpus() { return List.copyOf(vcpus); }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            for (Vcpu v : vcpus) {
                v.close();
            }
            Posix.current().close(fd);
        }
    }
}
