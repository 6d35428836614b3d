package dev.dvmm.hv.lab;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class LabOptionsTest {
    private static LabOptions options(int hosts, List<String> args, String exec) {
        return new LabOptions(hosts, 1, 1024, args, exec, null, Path.of("/tmp/c"), 0, false, Path.of("/r"),
                Path.of("/w"), "loose", Map.of(), false);
    }

    @Test
    void memorySizes() {
        assertEquals(3072, LabOptions.parseMemoryMiB("3G"));
        assertEquals(4096, LabOptions.parseMemoryMiB("4GiB"));
        assertEquals(2048, LabOptions.parseMemoryMiB("2048M"));
        assertEquals(512, LabOptions.parseMemoryMiB("512"));
        assertEquals(1, LabOptions.parseMemoryMiB("1024k"));
        assertEquals(2L * 1024 * 1024, LabOptions.parseMemoryMiB("2T"));
    }

    @Test
    void badMemorySizesAreOneLineErrors() {
        for (String bad : List.of("", "three", "3X", "-1G", "0", "99999999999999999999G", "9999999999999999T")) {
            LabException e = assertThrows(LabException.class, () -> LabOptions.parseMemoryMiB(bad), bad);
            assertTrue(!e.getMessage().contains("\n") && e.getMessage().contains("memory"), e.getMessage());
        }
    }

    @Test
    void commandMustBeGivenOnce() {
        assertThrows(LabException.class, () -> options(1, List.of(), null));
        assertThrows(LabException.class, () -> options(1, List.of("info"), "true"));
        assertEquals("true", options(1, List.of(), "true").exec());
        assertEquals(List.of("info"), options(1, List.of("info"), null).dvmmArgs());
    }

    @Test
    void hostCountIsBounded() {
        assertThrows(LabException.class, () -> options(0, List.of("info"), null));
        assertThrows(LabException.class, () -> options(LabOptions.MAX_HOSTS + 1, List.of("info"), null));
        assertEquals(LabOptions.MAX_HOSTS, options(LabOptions.MAX_HOSTS, List.of("info"), null).hosts());
    }

    @Test
    void defaultCpusShareTheHostCores() {
        int cores = Runtime.getRuntime().availableProcessors();
        assertEquals(cores, LabOptions.defaultCpus(1));
        assertEquals(1, LabOptions.defaultCpus(cores * 4));
    }
}
