package dev.dvmm.hv.vstate;

import dev.dvmm.bindings.NativeException;
import dev.dvmm.bindings.Posix;
import dev.dvmm.bindings.abi.KvmConstants;
import dev.dvmm.bindings.abi.KvmCpuid2;
import dev.dvmm.bindings.abi.KvmCpuidEntry2;
import dev.dvmm.bindings.abi.KvmIoctls;
import dev.dvmm.bindings.abi.PosixConstants;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;

/** The {@code /dev/kvm} system fd: capabilities and VM creation. Owns and closes its fd. */
public final class Kvm implements AutoCloseable {
    public static final String DEVICE = "/dev/kvm";
    /** KVM_GET_SUPPORTED_CPUID needs a buffer large enough for every entry; E2BIG otherwise. */
    private static final int MAX_CPUID_ENTRIES = 256;

    private final int fd;
    private final int vcpuMmapSize;
    private boolean closed;

    private Kvm(int fd) {
        this.fd = fd;
        Posix px = Posix.current();
        int api = px.ioctl(fd, KvmIoctls.KVM_GET_API_VERSION);
        if (api != KvmConstants.KVM_API_VERSION) {
            px.close(fd);
            throw new KvmException("/dev/kvm speaks API version " + api + ", dvmm needs " + KvmConstants.KVM_API_VERSION);
        }
        this.vcpuMmapSize = Posix.check(px.ioctl(fd, KvmIoctls.KVM_GET_VCPU_MMAP_SIZE), "KVM_GET_VCPU_MMAP_SIZE");
    }

    /** Opens /dev/kvm, explaining in one sentence why it cannot be used. */
    public static Kvm open() {
        return open(DEVICE);
    }

    public static Kvm open(String device) {
        if (!Files.exists(Path.of(device))) {
            throw new KvmException(device + " does not exist: this host has no KVM (load kvm-intel/kvm-amd, "
                    + "enable virtualization in the firmware, or use ./dvmm lab)");
        }
        int fd = Posix.current().open(device, PosixConstants.O_RDWR | PosixConstants.O_CLOEXEC);
        if (fd == -PosixConstants.EACCES || fd == -PosixConstants.EPERM) {
            throw new KvmException("permission denied opening " + device
                    + ": run as root or add this user to the group that owns it (usually 'kvm')");
        }
        if (fd < 0) {
            throw new KvmException("cannot open " + device + ": " + Posix.strerror(-fd));
        }
        return new Kvm(fd);
    }

    public int fd() { return fd; }

    public int apiVersion() {
        return Posix.current().ioctl(fd, KvmIoctls.KVM_GET_API_VERSION);
    }

    /** KVM_CHECK_EXTENSION: 0 when absent, otherwise a capability-specific positive value. */
    public int checkExtension(int cap) {
        int r = Posix.current().ioctl(fd, KvmIoctls.KVM_CHECK_EXTENSION, (long) cap);
        return Math.max(r, 0);
    }

    public int vcpuMmapSize() { return vcpuMmapSize; }

    /** Copies the host-supported CPUID entries into {@code arena}: a kvm_cpuid2 with nent set. */
    public MemorySegment supportedCpuid(Arena arena) {
        MemorySegment buf = arena.allocate(KvmCpuid2.SIZE + MAX_CPUID_ENTRIES * KvmCpuidEntry2.SIZE, 8);
        KvmCpuid2.nent(buf, MAX_CPUID_ENTRIES);
        Posix.check(Posix.current().ioctl(fd, KvmIoctls.KVM_GET_SUPPORTED_CPUID, buf), "KVM_GET_SUPPORTED_CPUID");
        return buf;
    }

    public Vm createVm() {
        int vmfd = Posix.current().ioctl(fd, KvmIoctls.KVM_CREATE_VM, 0L);
        if (vmfd < 0) {
            throw new KvmException("KVM_CREATE_VM failed: " + Posix.strerror(-vmfd), new NativeException("KVM_CREATE_VM", -vmfd));
        }
        return new Vm(this, vmfd);
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            Posix.current().close(fd);
        }
    }
}
