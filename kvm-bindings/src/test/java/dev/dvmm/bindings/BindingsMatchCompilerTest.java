package dev.dvmm.bindings;

import dev.dvmm.bindings.generator.BindingsGenerator;
import dev.dvmm.bindings.generator.BindingsGenerator.IoctlSpec;
import java.lang.foreign.StructLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The committed bindings agree with what gcc says about the installed headers, to the byte. */
class BindingsMatchCompilerTest {
    private static final Path MODULE = locateModule();
    private static BindingsGenerator.Spec spec;
    private static BindingsGenerator.Probe probe;

    private static Path locateModule() {
        Path p = Path.of("").toAbsolutePath();
        return Files.isDirectory(p.resolve("spec")) ? p : p.resolve("kvm-bindings");
    }

    @BeforeAll
    static void runProbe() throws Exception {
        assumeTrue(onPath("gcc"), "gcc is not installed: cannot re-run the bindings probe");
        assumeTrue(Files.exists(Path.of("/usr/include/linux/kvm.h")),
                "linux/kvm.h is not installed (apt-get install linux-libc-dev): cannot re-run the bindings probe");
        spec = BindingsGenerator.parse(MODULE.resolve("spec/bindings.spec"));
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
        Map<String, String> fresh = BindingsGenerator.generate(spec, probe);
        Path root = MODULE.resolve("src/main/java");
        List<String> differ = new ArrayList<>();
        for (var e : fresh.entrySet()) {
            Path f = root.resolve(e.getKey());
            if (!Files.exists(f) || !withoutStamp(Files.readString(f)).equals(withoutStamp(e.getValue()))) {
                differ.add(e.getKey());
            }
        }
        try (var files = Files.list(root.resolve(BindingsGenerator.PACKAGE.replace('.', '/')))) {
            files.map(p -> root.relativize(p).toString()).filter(k -> !fresh.containsKey(k))
                    .forEach(k -> differ.add(k + " (not produced by the generator)"));
        }
        assertTrue(differ.isEmpty(), "generated bindings differ from the probe of the installed headers ("
                + probe.headerVersion() + "); run kvm-bindings/regenerate: " + differ);
        assertTrue(fresh.size() >= 30, "expected the full set of generated classes, got " + fresh.size());
    }

    @Test
    void everyStructLayoutHasTheCompilersSizeAndAlignment() throws Exception {
        for (var s : spec.structs()) {
            Class<?> c = Class.forName(BindingsGenerator.PACKAGE + "." + s.javaName());
            StructLayout layout = (StructLayout) c.getField("LAYOUT").get(null);
            long[] sizeAlign = probe.structs().get(s.javaName());
            assertEquals(sizeAlign[0], layout.byteSize(), s.cName() + " size");
            assertEquals(sizeAlign[0], c.getField("SIZE").getLong(null), s.cName() + " SIZE");
            assertEquals(sizeAlign[1], layout.byteAlignment(), s.cName() + " alignment");
            for (var f : s.fields()) {
                String k = f.path().replace('.', '_').toUpperCase(java.util.Locale.ROOT) + "_OFFSET";
                assertEquals(probe.fields().get(s.javaName() + "#" + f.path())[0], c.getField(k).getLong(null),
                        s.cName() + "." + f.path());
            }
        }
    }

    @Test
    void javaIoctlEncoderAgreesWithTheKernelMacros() {
        int checked = 0;
        for (var g : spec.ioctls()) {
            for (IoctlSpec i : g.ioctls()) {
                long size = i.argType() == null ? 0 : probe.ioctlArgSizes().get(i.name());
                long encoded = switch (i.dir()) {
                    case IO -> Ioctl.io(i.type(), i.nr());
                    case IOR -> Ioctl.ior(i.type(), i.nr(), size);
                    case IOW -> Ioctl.iow(i.type(), i.nr(), size);
                    case IOWR -> Ioctl.iowr(i.type(), i.nr(), size);
                };
                assertEquals(probe.ioctls().get(i.name()), encoded, i.name());
                checked++;
            }
        }
        assertTrue(checked > 40, "checked " + checked + " ioctls");
    }

    @Test
    void encoderRejectsOversizedArguments() {
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> Ioctl.iow(0xAE, 1, 1 << 14));
    }

    /**
     * Drops the "Probed: ..." stamp line: a header package update that changes no value (6.1.187 -> 6.1.192
     * here) must not fail the build, while any size, offset, constant or ioctl difference still does.
     */
    private static String withoutStamp(String source) {
        return source.replaceAll("(?m)^// DO NOT EDIT: run kvm-bindings/regenerate\\. Probed: .*$", "");
    }
}
