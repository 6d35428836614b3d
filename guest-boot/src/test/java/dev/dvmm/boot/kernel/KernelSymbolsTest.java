package dev.dvmm.boot.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.StringReader;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class KernelSymbolsTest {
    private static final String MAP = """
            ffffffff81000000 T _text
            ffffffff81001000 t early_idt_handler
            ffffffff81800000 D some_data
            garbage line
            ffffffff81000400 T start_kernel
            ffffffff81002000 W weak_fn
            """;

    @Test
    void namesTheFunctionContainingAnAddressFromUnsortedTextSymbols() throws Exception {
        KernelSymbols s = KernelSymbols.parse(new StringReader(MAP));
        assertEquals(4, s.size(), "text symbols only (T, t, W), bad lines skipped");
        assertEquals(0xffffffff81000000L, s.lowest());
        assertEquals("start_kernel+0x10", s.describe(0xffffffff81000410L));
        assertEquals("_text+0x0", s.describe(0xffffffff81000000L));
        assertEquals("early_idt_handler+0xfff", s.describe(0xffffffff81001fffL));
        assertEquals("weak_fn+0x7fe000", s.describe(0xffffffff81800000L), "data symbols are not targets");
        assertEquals("0x1000", s.describe(0x1000L), "before every symbol (e.g. real mode)");
    }

    @Test
    void aStubSystemMapWithoutTextSymbolsGivesNoNames(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("System.map-6.1.0-2-amd64"),
                "ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n");
        assertTrue(KernelSymbols.besideKernel(Files.writeString(dir.resolve("vmlinuz-6.1.0-2-amd64"), "x")).isEmpty());
    }

    @Test
    void findsSystemMapBesideAVersionedVmlinuz(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("System.map-6.1.0-1-amd64"), MAP);
        Path kernel = Files.writeString(dir.resolve("vmlinuz-6.1.0-1-amd64"), "x");
        assertEquals("start_kernel+0x0", KernelSymbols.besideKernel(kernel).orElseThrow().describe(0xffffffff81000400L));
        assertTrue(KernelSymbols.besideKernel(Files.writeString(dir.resolve("other"), "x")).isEmpty(),
                "no map for an unrelated name");
    }
}
