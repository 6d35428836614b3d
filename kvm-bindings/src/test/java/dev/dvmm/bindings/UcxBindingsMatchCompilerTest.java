package dev.dvmm.bindings;

import dev.dvmm.bindings.generator.BindingsGenerator;
import dev.dvmm.bindings.ucx.UcsConstants;
import java.lang.foreign.StructLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The committed UCX bindings agree with what gcc says about the installed UCX headers, to the byte. */
class UcxBindingsMatchCompilerTest {
    private static final Path MODULE = locateModule();
    private static final Path UCP_HEADER = Path.of("/usr/include/ucp/api/ucp.h");
    private static BindingsGenerator.Spec spec;
    private static BindingsGenerator.Probe probe;

    private static Path locateModule() {
        Path p = Path.of("").toAbsolutePath();
        return Files.isDirectory(p.resolve("spec")) ? p : p.resolve("kvm-bindings");
    }

    @BeforeAll
    static void runProbe() throws Exception {
        assumeTrue(onPath("gcc"), "gcc is not installed: cannot re-run the UCX bindings probe");
        assumeTrue(Files.exists(UCP_HEADER),
                "<ucp/api/ucp.h> is not installed (apt-get install libucx-dev): cannot re-run the UCX bindings probe");
        spec = BindingsGenerator.parse(MODULE.resolve("spec/ucx.spec"));
        probe = BindingsGenerator.probe(spec);
    }

    private static boolean onPath(String tool) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (Files.isExecutable(Path.of(dir, tool))) {
                return true;
            }
        }
        return false;
    }

    @Test
    void committedSourcesEqualFreshGeneratorOutput() throws Exception {
        assertEquals("dev.dvmm.bindings.ucx", spec.packageName());
        Map<String, String> fresh = BindingsGenerator.generate(spec, probe);
        Path root = MODULE.resolve("src/main/java");
        List<String> differ = new ArrayList<>();
        for (var e : fresh.entrySet()) {
            assertTrue(e.getKey().startsWith("dev/dvmm/bindings/ucx/"), e.getKey() + " is outside the spec's package");
            Path f = root.resolve(e.getKey());
            if (!Files.exists(f) || !withoutStamp(Files.readString(f)).equals(withoutStamp(e.getValue()))) {
                differ.add(e.getKey());
            }
        }
        try (var files = Files.list(root.resolve(spec.packageDirectory()))) {
            files.map(p -> root.relativize(p).toString()).filter(k -> !fresh.containsKey(k))
                    .forEach(k -> differ.add(k + " (not produced by the generator)"));
        }
        assertTrue(differ.isEmpty(), "generated UCX bindings differ from the probe of the installed headers ("
                + probe.headerVersion() + "); run kvm-bindings/regenerate: " + differ);
        assertTrue(fresh.size() >= 11, "expected the full set of generated classes, got " + fresh.size());
    }

    @Test
    void everyStructLayoutHasTheCompilersSizeAndAlignment() throws Exception {
        for (var s : spec.structs()) {
            Class<?> c = Class.forName(spec.packageName() + "." + s.javaName());
            StructLayout layout = (StructLayout) c.getField("LAYOUT").get(null);
            long[] sizeAlign = probe.structs().get(s.javaName());
            assertEquals(sizeAlign[0], layout.byteSize(), s.cName() + " size");
            assertEquals(sizeAlign[1], layout.byteAlignment(), s.cName() + " alignment");
            for (var f : s.fields()) {
                String k = f.path().replace('.', '_').toUpperCase(Locale.ROOT) + "_OFFSET";
                assertEquals(probe.fields().get(s.javaName() + "#" + f.path())[0], c.getField(k).getLong(null),
                        s.cName() + "." + f.path());
            }
        }
    }

    @Test
    void theDowncallsAssumeAOneByteStatusAndAFourByteThreadMode() {
        // Ucp declares ucs_status_t as JAVA_BYTE: true only because UCX packs the enum.
        assertEquals(probe.constants().get("SIZEOF_UCS_STATUS_T"), 1L);
        assertEquals(UcsConstants.SIZEOF_UCS_STATUS_T, 1);
        assertEquals(probe.constants().get("SIZEOF_UCS_THREAD_MODE_T"), 4L);
    }

    /**
     * Drops the "Probed: ..." stamp line: a header package update that changes no value (6.1.187 -> 6.1.192
     * here) must not fail the build, while any size, offset, constant or ioctl difference still does.
     */
    private static String withoutStamp(String source) {
        return source.replaceAll("(?m)^// DO NOT EDIT: run kvm-bindings/regenerate\\. Probed: .*$", "");
    }
}
