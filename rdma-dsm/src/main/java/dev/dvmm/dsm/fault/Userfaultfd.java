package dev.dvmm.dsm.fault;

import dev.dvmm.bindings.Posix;
import dev.dvmm.bindings.abi.PosixConstants;
import dev.dvmm.bindings.abi.UffdConstants;
import dev.dvmm.bindings.abi.UffdIoctls;
import dev.dvmm.bindings.abi.UffdioApi;
import dev.dvmm.bindings.abi.UffdioRange;
import dev.dvmm.bindings.abi.UffdioRegister;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A userfaultfd: created through /dev/userfaultfd (or the syscall), handshaken with UFFDIO_API.
 * Never {@code UFFD_USER_MODE_ONLY}: KVM's accesses to guest memory are kernel-mode faults.
 */
public final class Userfaultfd implements AutoCloseable {
    private final int fd;
    private final long features;
    private volatile long registeredModes;

    private Userfaultfd(int fd, long features) {
        this.fd = fd;
        this.features = features;
    }

    /** Opens a userfaultfd and enables {@code wantedFeatures}; fails if any is not supported. */
    public static Userfaultfd open(long wantedFeatures) {
        Posix px = Posix.current();
        int fd = create(px);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment api = a.allocate(UffdioApi.LAYOUT);
            UffdioApi.api(api, UffdConstants.UFFD_API);
            UffdioApi.features(api, wantedFeatures);
            int r = px.ioctl(fd, UffdIoctls.UFFDIO_API, api);
            if (r < 0) {
                px.close(fd);
                throw new FaultServiceException("UFFDIO_API with features 0x" + Long.toHexString(wantedFeatures)
                        + " refused: " + Posix.strerror(-r));
            }
            return new Userfaultfd(fd, UffdioApi.features(api));
        }
    }

    /** The features this kernel offers (a throwaway handshake with none requested). */
    public static long supportedFeatures() {
        try (Userfaultfd u = open(0)) {
            return u.features;
        }
    }

    private static int create(Posix px) {
        int flags = PosixConstants.O_CLOEXEC | PosixConstants.O_NONBLOCK;
        if (Files.exists(Path.of("/dev/userfaultfd"))) {
            int dev = px.open("/dev/userfaultfd", PosixConstants.O_RDWR | PosixConstants.O_CLOEXEC);
            if (dev >= 0) {
                int fd = px.ioctl(dev, UffdIoctls.USERFAULTFD_IOC_NEW, (long) flags);
                px.close(dev);
                if (fd >= 0) {
                    return fd;
                }
            }
        }
        long fd = px.syscall1(PosixConstants.SYS_userfaultfd, flags);
        if (fd < 0) {
            throw new FaultServiceException("userfaultfd is not available: " + Posix.strerror((int) -fd)
                    + " (needs /dev/userfaultfd access or vm.unprivileged_userfaultfd=1 or CAP_SYS_PTRACE)");
        }
        return (int) fd;
    }

    /** Registers {@code range} (page-aligned) for MISSING and/or WP faults. */
    public void register(MemorySegment range, long modes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment reg = a.allocate(UffdioRegister.LAYOUT);
            UffdioRegister.rangeStart(reg, range.address());
            UffdioRegister.rangeLen(reg, range.byteSize());
            UffdioRegister.mode(reg, modes);
            int r = Posix.current().ioctl(fd, UffdIoctls.UFFDIO_REGISTER, reg);
            if (r < 0) {
                throw new FaultServiceException("UFFDIO_REGISTER of " + range.byteSize() + " bytes with modes 0x"
                        + Long.toHexString(modes) + " refused: " + Posix.strerror(-r));
            }
            registeredModes = modes;
        }
    }

    public void unregister(MemorySegment range) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment rg = a.allocate(UffdioRange.LAYOUT);
            UffdioRange.start(rg, range.address());
            UffdioRange.len(rg, range.byteSize());
            Posix.current().ioctl(fd, UffdIoctls.UFFDIO_UNREGISTER, rg);
            registeredModes = 0;
        }
    }

    /** The modes of the last {@link #register} (0 after {@link #unregister}). */
    public long registeredModes() { return registeredModes; }

    public int fd() { return fd; }

    public long features() { return features; }

    @Override
    public void close() {
        Posix.current().close(fd);
    }
}
