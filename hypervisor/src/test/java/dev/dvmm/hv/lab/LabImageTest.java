package dev.dvmm.hv.lab;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LabImageTest {
    private static LabImage.Recipe recipe(String init, List<String> modules) {
        return new LabImage.Recipe("linux-image-amd64", "busybox-static", modules, init.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void hashFollowsEveryIngredient() {
        var base = recipe("#!/bin/sh\n", List.of("kvm-amd"));
        assertEquals(base.hash(), recipe("#!/bin/sh\n", List.of("kvm-amd")).hash());
        assertTrue(base.hash().matches("[0-9a-f]{16}"), base.hash());
        assertNotEquals(base.hash(), recipe("#!/bin/sh\n# changed\n", List.of("kvm-amd")).hash());
        assertNotEquals(base.hash(), recipe("#!/bin/sh\n", List.of("kvm-amd", "9p")).hash());
        assertNotEquals(base.hash(), new LabImage.Recipe("linux-image-cloud-amd64", "busybox-static",
                List.of("kvm-amd"), "#!/bin/sh\n".getBytes(StandardCharsets.UTF_8)).hash());
    }

    @Test
    void standardRecipeCarriesTheGuestInit() {
        var r = LabImage.Recipe.standard();
        String init = new String(r.init(), StandardCharsets.UTF_8);
        assertTrue(init.startsWith("#!/bin/busybox sh"), init.substring(0, 40));
        assertTrue(init.contains("switch_root") && init.contains("dvmm_root"));
        assertTrue(r.modules().contains("kvm-amd"));
    }

    @Test
    void cacheHitNeedsAllThreeFiles(@TempDir Path cache) throws IOException {
        var r = recipe("x", List.of("kvm"));
        assertNull(LabImage.cached(cache, r));
        Path dir = Files.createDirectories(cache.resolve(r.hash()));
        Files.writeString(dir.resolve("kernel"), "k");
        Files.writeString(dir.resolve("initramfs.cpio"), "i");
        assertNull(LabImage.cached(cache, r), "no recipe.txt: a build that did not finish");
        Files.writeString(dir.resolve("recipe.txt"), "format=2\n");
        LabImage.Built b = LabImage.cached(cache, r);
        assertNotNull(b);
        assertEquals(dir.resolve("kernel"), b.kernel());
        assertNull(LabImage.cached(cache, recipe("y", List.of("kvm"))));
    }
}
