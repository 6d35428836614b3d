package dev.dvmm.hv.lab;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class KernelModulesTest {
    /** A fake module file: some bytes, then .modinfo-style NUL-separated strings. */
    private static void module(Path tree, String relative, String depends) throws IOException {
        Path f = tree.resolve(relative);
        Files.createDirectories(f.getParent());
        String body = "\u007fELF junk xdepends=bogus\0license=GPL\0depends=" + depends + "\0name=x\0";
        Files.write(f, body.getBytes(StandardCharsets.ISO_8859_1));
    }

    @Test
    void kvmAmdLoadsAfterIrqbypassKvmAndCcp(@TempDir Path tree) throws IOException {
        module(tree, "kernel/virt/lib/irqbypass.ko", "");
        module(tree, "kernel/arch/x86/kvm/kvm.ko", "irqbypass");
        module(tree, "kernel/drivers/crypto/ccp/ccp.ko", "");
        module(tree, "kernel/arch/x86/kvm/kvm-amd.ko", "kvm,ccp");
        List<String> order = KernelModules.scan(tree).loadOrder(List.of("kvm-amd"));
        assertEquals(List.of("irqbypass", "kvm", "ccp", "kvm_amd"), order);
    }

    @Test
    void sharedDependenciesLoadOnce(@TempDir Path tree) throws IOException {
        module(tree, "a/virtio_ring.ko", "");
        module(tree, "a/virtio.ko", "virtio_ring");
        module(tree, "b/virtio_net.ko", "virtio_ring,virtio");
        module(tree, "b/virtio_console.ko", "virtio,virtio_ring");
        List<String> order = KernelModules.scan(tree).loadOrder(List.of("virtio_net", "virtio_console"));
        assertEquals(List.of("virtio_ring", "virtio", "virtio_net", "virtio_console"), order);
    }

    @Test
    void cycleIsAnError(@TempDir Path tree) throws IOException {
        module(tree, "a.ko", "b");
        module(tree, "b.ko", "a");
        LabException e = assertThrows(LabException.class, () -> KernelModules.scan(tree).loadOrder(List.of("a")));
        assertTrue(e.getMessage().contains("cycle"), e.getMessage());
    }

    @Test
    void missingModuleNamesIt(@TempDir Path tree) throws IOException {
        module(tree, "kvm.ko", "irqbypass");
        LabException e = assertThrows(LabException.class, () -> KernelModules.scan(tree).loadOrder(List.of("kvm")));
        assertTrue(e.getMessage().contains("irqbypass"), e.getMessage());
    }

    @Test
    void emptyTreeIsAnError(@TempDir Path tree) {
        assertThrows(LabException.class, () -> KernelModules.scan(tree));
    }

    @Test
    void modinfoMatchesOnlyWholeStrings() {
        byte[] b = "xdepends=no\0depends=kvm,ccp\0".getBytes(StandardCharsets.US_ASCII);
        assertEquals("kvm,ccp", KernelModules.modinfo(b, "depends"));
        assertNull(KernelModules.modinfo(b, "vermagic"));
    }
}
