package dev.dvmm.hv.lab;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HostModeTest {
    private static Path machine(Path root, boolean kvm, String flags, String... modules) throws IOException {
        Files.createDirectories(root.resolve("dev"));
        if (kvm) {
            Files.createFile(root.resolve("dev/kvm"));
        }
        Files.createDirectories(root.resolve("proc"));
        Files.writeString(root.resolve("proc/cpuinfo"), "processor\t: 0\nflags\t\t: " + flags + "\n\nprocessor\t: 1\n");
        for (String m : modules) {
            Files.createDirectories(root.resolve("sys/module").resolve(m));
        }
        return root;
    }

    @Test
    void noDevKvm(@TempDir Path root) throws IOException {
        assertEquals(HostMode.NO_KVM, HostMode.detect(machine(root, false, "fpu svm", "kvm")).mode());
    }

    @Test
    void pvmModuleMeansNestedPvm(@TempDir Path root) throws IOException {
        // What the project's build machines show: kvm and kvm_pvm built in, no vmx/svm, "hypervisor".
        var d = HostMode.detect(machine(root, true, "fpu sse2 hypervisor avx2", "kvm", "kvm_pvm"));
        assertEquals(HostMode.NESTED_PVM, d.mode());
        assertTrue(d.explanation().contains("kvm_pvm"), d.explanation());
    }

    @Test
    void svmFlagMeansHardware(@TempDir Path root) throws IOException {
        // What a lab VM shows: kvm_amd loaded, svm in the flags, under a hypervisor.
        var d = HostMode.detect(machine(root, true, "fpu svm npt hypervisor", "kvm", "kvm_amd"));
        assertEquals(HostMode.HARDWARE_KVM, d.mode());
        assertTrue(d.explanation().contains("kvm_amd") && d.explanation().contains("svm"), d.explanation());
    }

    @Test
    void vendorModuleAloneMeansHardware(@TempDir Path root) throws IOException {
        assertEquals(HostMode.HARDWARE_KVM, HostMode.detect(machine(root, true, "fpu sse2", "kvm_intel")).mode());
    }

    @Test
    void kvmWithoutVmxOrSvmIsParavirtual(@TempDir Path root) throws IOException {
        var d = HostMode.detect(machine(root, true, "fpu sse2 hypervisor", "kvm"));
        assertEquals(HostMode.NESTED_PVM, d.mode());
        assertFalse(d.explanation().isBlank());
    }

    @Test
    void thisMachineAgreesWithItsDevKvm() {
        var d = HostMode.detect();
        if (Files.exists(Path.of("/dev/kvm"))) {
            assertNotEquals(HostMode.NO_KVM, d.mode(), d.toString());
        } else {
            assertEquals(HostMode.NO_KVM, d.mode(), d.toString());
        }
        System.out.println("host mode here: " + d);
    }
}
