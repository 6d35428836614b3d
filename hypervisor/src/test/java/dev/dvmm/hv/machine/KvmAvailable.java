package dev.dvmm.hv.machine;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Skips a test, with the reason printed, when this machine cannot run KVM guests. */
public final class KvmAvailable {
    private KvmAvailable() {}

    public static void assume() {
        Path kvm = Path.of("/dev/kvm");
        boolean ok = Files.exists(kvm) && Files.isReadable(kvm) && Files.isWritable(kvm);
        if (!ok) {
            System.out.println("SKIPPED: /dev/kvm is missing or not accessible on this machine");
        }
        assumeTrue(ok, "/dev/kvm is missing or not accessible on this machine");
    }
}
