package dev.dvmm.boot.kernel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.dvmm.boot.Layout;
import dev.dvmm.boot.TestMemory;
import dev.dvmm.boot.memory.SegmentGuestMemory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** Loads the host's own Debian kernel when one is installed (/boot/vmlinuz-*); skips otherwise. */
class HostKernelTest {

    private static Optional<Path> hostKernel() throws IOException {
        Path boot = Path.of("/boot");
        if (!Files.isDirectory(boot)) {
            return Optional.empty();
        }
        try (Stream<Path> files = Files.list(boot)) {
            return files.filter(p -> p.getFileName().toString().startsWith("vmlinuz-"))
                    .filter(Files::isReadable).sorted().findFirst();
        }
    }

    @Test
    void hostBzImageHeaderIsSaneAndItLoads() throws IOException {
        Optional<Path> found = hostKernel();
        assumeTrue(found.isPresent(), "no /boot/vmlinuz-* on this machine (apt-get install linux-image-amd64 to run this test)");
        Path path = found.get();
        String release = path.getFileName().toString().substring("vmlinuz-".length());
        // Sparse: a distribution kernel wants ~80 MiB (pref_address + init_size) and only the image is touched.
        SegmentGuestMemory memory = TestMemory.sparse(512 * TestMemory.MIB);
        LoadedKernel k = KernelLoader.load(memory, path);
        SetupHeader h = k.setupHeader().orElseThrow();

        assertTrue(h.version() >= SetupHeader.MIN_VERSION, "protocol " + h.versionText());
        assertTrue((h.xloadflags() & SetupHeader.XLF_KERNEL_64) != 0);
        assertTrue(h.relocatable());
        assertEquals(1, Long.bitCount(h.kernelAlignment()));
        assertTrue(h.kernelAlignment() >= Layout.PAGE_SIZE);
        assertTrue(h.cmdlineSize() >= 255, "cmdline_size " + h.cmdlineSize());
        assertTrue(h.prefAddress() >= Layout.HIGH_MEMORY && h.prefAddress() % h.kernelAlignment() == 0);
        long imageSize = Files.size(path) - h.setupBytes();
        assertTrue(h.initSize() >= imageSize, "init_size covers the compressed kernel");
        assertTrue(h.syssize() * 16 <= imageSize + 15);
        assertTrue(h.kernelVersion().startsWith(release), h.kernelVersion() + " vs " + release);
        assertEquals(h.prefAddress(), k.loadAddress());
        assertEquals(k.loadAddress() + 0x200, k.entry64());

        // The first and last pages of the protected-mode code are where the loader put them.
        byte[] file = Files.readAllBytes(path);
        int pm = (int) h.setupBytes();
        assertArrayEquals(java.util.Arrays.copyOfRange(file, pm, pm + 4096), memory.read(k.loadAddress(), 4096));
        assertArrayEquals(java.util.Arrays.copyOfRange(file, file.length - 4096, file.length),
                memory.read(k.loadAddress() + imageSize - 4096, 4096));
        System.out.printf("host kernel %s: protocol %s, pref_address 0x%x, init_size 0x%x, cmdline_size %d, %s%n",
                path, h.versionText(), h.prefAddress(), h.initSize(), h.cmdlineSize(), h.kernelVersion());
    }
}
