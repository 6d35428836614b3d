package dev.dvmm.bindings.generator;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

/**
 * Generates Java ABI classes with the C compiler as the oracle.
 *
 * <p>It reads a spec ({@code spec/bindings.spec} for the kernel and libc, {@code spec/ucx.spec} for
 * UCX), writes a C probe that prints {@code sizeof}, {@code offsetof}, constants and ioctl numbers from
 * the installed headers, compiles and runs it with gcc, and emits one Java class per struct, constant
 * group and ioctl group into the spec's package ({@code package} directive, default
 * {@value #PACKAGE}). Nothing is typed in by hand: every number in the output comes from the probe.
 * {@code BindingsMatchCompilerTest} and {@code UcxBindingsMatchCompilerTest} rerun this and compare.
 *
 * <p>Usage: {@code BindingsGenerator <spec file> <java source root>}.
 */
public final class BindingsGenerator {

    /** Package of the generated classes when a spec names none. */
    public static final String PACKAGE = "dev.dvmm.bindings.abi";

    public enum IoctlDir { IO, IOR, IOW, IOWR }

    public record Field(String path, String type, int count) {
        boolean isArray() { return count > 0; }
        boolean isScalar() { return scalarBytes(type) > 0; }
        String javaName() { return camel(path.replace('.', '_')); }
        String constName() { return path.replace('.', '_').toUpperCase(Locale.ROOT); }
    }

    public record StructSpec(String javaName, String cName, List<Field> fields) {
        String cType() { return cName.endsWith("_t") ? cName : "struct " + cName; }
    }

    /** A constant: {@code expression} is the C text the probe evaluates, by default the name itself. */
    public record ConstSpec(String name, boolean forceLong, String expression) {}

    public record ConstGroup(String javaName, List<ConstSpec> constants) {}

    public record IoctlSpec(String name, IoctlDir dir, int type, int nr, String argType) {}

    public record IoctlGroup(String javaName, List<IoctlSpec> ioctls) {}

    /**
     * A parsed spec. {@code versionLabel} and {@code versionParts} say how the probe stamps the header
     * version ({@code version} directive); without one it prints the Linux uapi version.
     */
    public record Spec(String fileName, String packageName, String versionLabel, List<String> versionParts,
                       List<String> includes, List<StructSpec> structs, List<ConstGroup> constants,
                       List<IoctlGroup> ioctls) {

        /** Directory of the generated classes below the source root. */
        public String packageDirectory() {
            return packageName.replace('.', '/');
        }
    }

    /** What the probe printed. */
    public record Probe(String headerVersion, String compiler,
                        Map<String, long[]> structs,          // java name -> {size, align}
                        Map<String, long[]> fields,           // java name + "#" + path -> {offset, size}
                        Map<String, Long> constants,
                        Map<String, Long> ioctls,
                        Map<String, Long> ioctlArgSizes) {}

    private BindingsGenerator() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: BindingsGenerator <spec file> <java source root>");
            System.exit(2);
        }
        Spec spec = parse(Path.of(args[0]));
        Probe probe = probe(spec);
        Map<String, String> files = generate(spec, probe);
        Path root = Path.of(args[1]);
        for (var e : files.entrySet()) {
            Path out = root.resolve(e.getKey());
            Files.createDirectories(out.getParent());
            Files.writeString(out, e.getValue(), StandardCharsets.UTF_8);
        }
        System.out.println("generated " + files.size() + " files for headers " + probe.headerVersion());
    }

    // ------------------------------------------------------------------ spec parsing

    public static Spec parse(Path file) throws IOException {
        String packageName = PACKAGE;
        String versionLabel = null;
        List<String> versionParts = List.of();
        List<String> includes = new ArrayList<>();
        List<StructSpec> structs = new ArrayList<>();
        List<ConstGroup> consts = new ArrayList<>();
        List<IoctlGroup> ioctls = new ArrayList<>();
        List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        String section = null;
        String[] head = null;
        List<Object> body = new ArrayList<>();
        int lineNo = 0;
        for (String raw : lines) {
            lineNo++;
            String line = raw.strip();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            String[] t = line.split("\\s+");
            String where = file.getFileName() + ":" + lineNo + ": ";
            if (section == null) {
                switch (t[0]) {
                    case "include" -> includes.add(t[1]);
                    case "package" -> packageName = t[1];
                    case "version" -> {
                        // version <label> <c expression>... : the probe prints the values joined by dots.
                        if (t.length < 3) {
                            throw new IllegalArgumentException(where + "version needs a label and an expression");
                        }
                        versionLabel = t[1].replace('_', ' ');
                        versionParts = List.of(t).subList(2, t.length);
                    }
                    case "struct", "constants", "ioctls" -> {
                        section = t[0];
                        head = t;
                        body = new ArrayList<>();
                    }
                    default -> throw new IllegalArgumentException(where + "unknown directive " + t[0]);
                }
                continue;
            }
            if (t[0].equals("end")) {
                switch (section) {
                    case "struct" -> structs.add(new StructSpec(head[1], head[2], cast(body)));
                    case "constants" -> consts.add(new ConstGroup(head[1], cast(body)));
                    default -> ioctls.add(new IoctlGroup(head[1], cast(body)));
                }
                section = null;
                continue;
            }
            switch (section) {
                case "struct" -> {
                    String type = t[1];
                    int count = 0;
                    int br = type.indexOf('[');
                    if (br >= 0) {
                        count = Integer.parseInt(type.substring(br + 1, type.length() - 1));
                        type = type.substring(0, br);
                    }
                    if (!type.equals("bytes") && !type.equals("flex") && scalarBytes(type) == 0) {
                        throw new IllegalArgumentException(where + "unknown type " + t[1]);
                    }
                    body.add(new Field(t[0], type, count));
                }
                case "constants" -> {
                    // NAME [long]   or   JavaName = c expression (for sizeof and function-like macros)
                    if (t.length > 2 && t[1].equals("=")) {
                        body.add(new ConstSpec(t[0], false, line.substring(line.indexOf('=') + 1).strip()));
                    } else {
                        body.add(new ConstSpec(t[0], t.length > 1 && t[1].equals("long"), t[0]));
                    }
                }
                default -> {
                    String arg = t.length > 4 ? String.join(" ", List.of(t).subList(4, t.length)) : null;
                    body.add(new IoctlSpec(t[0], IoctlDir.valueOf(t[1]), Integer.decode(t[2]),
                            Integer.decode(t[3]), arg));
                }
            }
        }
        if (section != null) {
            throw new IllegalArgumentException(file + ": section '" + section + "' not closed with 'end'");
        }
        return new Spec(file.getFileName().toString(), packageName, versionLabel, versionParts, includes, structs,
                consts, ioctls);
    }

    @SuppressWarnings("unchecked")
    private static <T> List<T> cast(List<Object> l) {
        return (List<T>) (List<?>) List.copyOf(l);
    }

    static int scalarBytes(String type) {
        return switch (type) {
            case "u8" -> 1;
            case "u16" -> 2;
            case "u32", "s32" -> 4;
            case "u64", "s64" -> 8;
            default -> 0;
        };
    }

    // ------------------------------------------------------------------ probe

    /** Writes the C probe for a spec. */
    public static String probeSource(Spec spec) {
        StringBuilder c = new StringBuilder();
        c.append("#define _GNU_SOURCE\n");
        for (String inc : spec.includes()) {
            c.append("#include ").append(inc).append('\n');
        }
        c.append("#include <stddef.h>\n#include <stdio.h>\n");
        c.append("int main(void) {\n");
        if (spec.versionLabel() == null) {
            c.append("  printf(\"V %d.%d.%d\\n\", LINUX_VERSION_CODE >> 16, (LINUX_VERSION_CODE >> 8) & 255,"
                    + " LINUX_VERSION_CODE & 255);\n");
        } else {
            c.append("  printf(\"V ").append(String.join(".", spec.versionParts().stream().map(x -> "%lld").toList()))
                    .append("\\n\"");
            for (String part : spec.versionParts()) {
                c.append(", (long long)(").append(part).append(')');
            }
            c.append(");\n");
        }
        c.append("  printf(\"G gcc %d.%d.%d\\n\", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);\n");
        for (StructSpec s : spec.structs()) {
            String ct = s.cType();
            c.append("  printf(\"S ").append(s.javaName()).append(" %zu %zu\\n\", sizeof(").append(ct)
                    .append("), _Alignof(").append(ct).append("));\n");
            for (Field f : s.fields()) {
                String size = f.type().equals("flex") ? "(size_t)0" : "sizeof(((" + ct + " *)0)->" + f.path() + ")";
                c.append("  printf(\"F ").append(s.javaName()).append(' ').append(f.path())
                        .append(" %zu %zu\\n\", offsetof(").append(ct).append(", ").append(f.path())
                        .append("), ").append(size).append(");\n");
            }
        }
        for (ConstGroup g : spec.constants()) {
            for (ConstSpec k : g.constants()) {
                c.append("  printf(\"C ").append(k.name()).append(" %lld\\n\", (long long)(")
                        .append(k.expression()).append("));\n");
            }
        }
        for (IoctlGroup g : spec.ioctls()) {
            for (IoctlSpec i : g.ioctls()) {
                c.append("  printf(\"I ").append(i.name()).append(" %llu\\n\", (unsigned long long)(")
                        .append(i.name()).append("));\n");
                if (i.argType() != null) {
                    c.append("  printf(\"Z ").append(i.name()).append(" %zu\\n\", sizeof(")
                            .append(i.argType()).append("));\n");
                }
            }
        }
        c.append("  return 0;\n}\n");
        return c.toString();
    }

    /** Compiles and runs the probe; fails with a readable message when gcc or a header is missing. */
    public static Probe probe(Spec spec) throws IOException, InterruptedException {
        Path dir = Files.createTempDirectory("dvmm-probe");
        try {
            Path src = dir.resolve("probe.c");
            Path exe = dir.resolve("probe");
            Files.writeString(src, probeSource(spec));
            String compileOut = run(dir, "gcc", "-std=gnu11", "-O0", "-o", exe.toString(), src.toString());
            if (!Files.isExecutable(exe)) {
                throw new IOException("probe did not compile:\n" + compileOut);
            }
            return parseProbe(run(dir, exe.toString()));
        } finally {
            try (var walk = Files.walk(dir)) {
                walk.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    private static String run(Path dir, String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException(cmd[0] + " timed out");
        }
        String s = new String(out, StandardCharsets.UTF_8);
        if (p.exitValue() != 0) {
            throw new IOException(String.join(" ", cmd) + " exited " + p.exitValue() + ":\n" + s);
        }
        return s;
    }

    static Probe parseProbe(String out) {
        String version = null;
        String compiler = null;
        Map<String, long[]> structs = new LinkedHashMap<>();
        Map<String, long[]> fields = new LinkedHashMap<>();
        Map<String, Long> consts = new LinkedHashMap<>();
        Map<String, Long> ioctls = new LinkedHashMap<>();
        Map<String, Long> sizes = new LinkedHashMap<>();
        for (String line : out.split("\n")) {
            if (line.isBlank()) {
                continue;
            }
            String[] t = line.split(" ");
            switch (t[0]) {
                case "V" -> version = t[1];
                case "G" -> compiler = t[1] + " " + t[2];
                case "S" -> structs.put(t[1], new long[] {Long.parseLong(t[2]), Long.parseLong(t[3])});
                case "F" -> fields.put(t[1] + "#" + t[2], new long[] {Long.parseLong(t[3]), Long.parseLong(t[4])});
                case "C" -> consts.put(t[1], Long.parseLong(t[2]));
                case "I" -> ioctls.put(t[1], Long.parseUnsignedLong(t[2]));
                case "Z" -> sizes.put(t[1], Long.parseLong(t[2]));
                default -> throw new IllegalStateException("unexpected probe output: " + line);
            }
        }
        return new Probe(version, compiler, structs, fields, consts, ioctls, sizes);
    }

    // ------------------------------------------------------------------ emission

    /** Returns relative path -> Java source for every generated class. */
    public static Map<String, String> generate(Spec spec, Probe probe) {
        Map<String, String> out = new TreeMap<>();
        String dir = spec.packageDirectory() + "/";
        for (StructSpec s : spec.structs()) {
            out.put(dir + s.javaName() + ".java", emitStruct(spec, s, probe));
        }
        for (ConstGroup g : spec.constants()) {
            out.put(dir + g.javaName() + ".java", emitConstants(spec, g, probe));
        }
        for (IoctlGroup g : spec.ioctls()) {
            out.put(dir + g.javaName() + ".java", emitIoctls(spec, g, probe));
        }
        return out;
    }

    private static String header(Spec spec, Probe probe, String what) {
        String headers = spec.versionLabel() == null ? "Linux uapi" : spec.versionLabel();
        return "// GENERATED by dev.dvmm.bindings.generator.BindingsGenerator from kvm-bindings/spec/" + spec.fileName()
                + ".\n"
                + "// DO NOT EDIT: run kvm-bindings/regenerate. Probed: " + headers + " headers " + probe.headerVersion()
                + ", " + probe.compiler() + ", x86_64.\n"
                + "package " + spec.packageName() + ";\n\n"
                + what;
    }

    private static String emitStruct(Spec spec, StructSpec s, Probe probe) {
        long[] sa = probe.structs().get(s.javaName());
        long size = sa[0];
        long align = sa[1];
        StringBuilder b = new StringBuilder();
        b.append("import java.lang.foreign.MemoryLayout;\n");
        b.append("import java.lang.foreign.MemorySegment;\n");
        b.append("import java.lang.foreign.StructLayout;\n");
        b.append("import java.lang.foreign.ValueLayout;\n");
        b.append("import java.util.Objects;\n\n");
        b.append("/** {@code ").append(s.cType()).append("}: size ").append(size).append(", alignment ")
                .append(align).append(". Accessors read and write a segment in place. */\n");
        b.append("@SuppressWarnings(\"unused\")\n");
        b.append("public final class ").append(s.javaName()).append(" {\n");
        b.append("    private ").append(s.javaName()).append("() {}\n\n");
        b.append("    public static final long SIZE = ").append(size).append("L;\n");
        b.append("    public static final long ALIGN = ").append(align).append("L;\n\n");

        // Layout: fields grouped by their first path component (a nested struct or union member); groups
        // whose extents overlap (alternatives of an unnamed union) merge into one opaque byte region.
        List<String> parts = new ArrayList<>();
        Map<String, long[]> groups = new LinkedHashMap<>();   // component -> {start, end, fieldCount}
        Map<String, Field> single = new LinkedHashMap<>();
        for (Field f : s.fields()) {
            long off = fieldOffset(probe, s, f);
            long fend = off + fieldSize(probe, s, f);
            String comp = f.path().contains(".") ? f.path().substring(0, f.path().indexOf('.')) : f.path();
            long[] g = groups.get(comp);
            if (g == null) {
                groups.put(comp, new long[] {off, fend, f.path().contains(".") ? 2 : 1});
                single.put(comp, f);
            } else {
                g[0] = Math.min(g[0], off);
                g[1] = Math.max(g[1], fend);
                g[2] = 2;
            }
        }
        List<String> comps = new ArrayList<>(groups.keySet());
        comps.sort((x, y) -> Long.compare(groups.get(x)[0], groups.get(y)[0]));
        long end = 0;
        int i = 0;
        while (i < comps.size()) {
            long start = groups.get(comps.get(i))[0];
            long regionEnd = groups.get(comps.get(i))[1];
            int j = i + 1;
            while (j < comps.size() && groups.get(comps.get(j))[0] < regionEnd) {
                regionEnd = Math.max(regionEnd, groups.get(comps.get(j))[1]);
                j++;
            }
            if (regionEnd > start) {
                if (start > end) {
                    parts.add("MemoryLayout.paddingLayout(" + (start - end) + ")");
                }
                String comp = comps.get(i);
                Field f = single.get(comp);
                if (j == i + 1 && groups.get(comp)[2] == 1) {
                    parts.add(layoutExpr(s, f, regionEnd - start) + ".withName(\"" + comp + "\")");
                } else {
                    String name = j == i + 1 ? comp : "union_" + comp;
                    parts.add("MemoryLayout.sequenceLayout(" + (regionEnd - start)
                            + ", ValueLayout.JAVA_BYTE).withName(\"" + name + "\")");
                }
                end = regionEnd;
            }
            i = j;
        }
        if (end < size) {
            parts.add("MemoryLayout.paddingLayout(" + (size - end) + ")");
        }
        b.append("    public static final StructLayout LAYOUT = MemoryLayout.structLayout(\n            ")
                .append(String.join(",\n            ", parts)).append(")\n            .withByteAlignment(ALIGN)")
                .append(".withName(\"").append(s.cName()).append("\");\n");

        for (Field f : s.fields()) {
            long off = fieldOffset(probe, s, f);
            long fsize = fieldSize(probe, s, f);
            String c = f.constName();
            b.append('\n');
            b.append("    /** Offset of {@code ").append(f.path()).append("}. */\n");
            b.append("    public static final long ").append(c).append("_OFFSET = ").append(off).append("L;\n");
            if (!f.type().equals("flex")) {
                b.append("    public static final long ").append(c).append("_SIZE = ").append(fsize).append("L;\n");
            }
            if (f.isScalar()) {
                int eb = scalarBytes(f.type());
                if (f.isArray()) {
                    if (fsize != (long) eb * f.count()) {
                        throw new IllegalStateException(s.cName() + "." + f.path() + ": size " + fsize
                                + " is not " + f.count() + " x " + eb);
                    }
                    b.append("    public static final int ").append(c).append("_LENGTH = ").append(f.count())
                            .append(";\n");
                    emitAccessors(b, f, c + "_OFFSET + (long) Objects.checkIndex(i, " + c + "_LENGTH) * " + eb,
                            ", int i");
                } else {
                    if (fsize != eb) {
                        throw new IllegalStateException(s.cName() + "." + f.path() + ": size " + fsize
                                + " is not " + eb);
                    }
                    emitAccessors(b, f, c + "_OFFSET", "");
                }
            }
        }
        b.append("}\n");
        return header(spec, probe, b.toString());
    }

    private static long fieldOffset(Probe p, StructSpec s, Field f) {
        long[] v = p.fields().get(s.javaName() + "#" + f.path());
        if (v == null) {
            throw new IllegalStateException("probe lacks " + s.cName() + "." + f.path());
        }
        return v[0];
    }

    private static long fieldSize(Probe p, StructSpec s, Field f) {
        return p.fields().get(s.javaName() + "#" + f.path())[1];
    }

    private static String valueLayout(String type) {
        return switch (type) {
            case "u8" -> "ValueLayout.JAVA_BYTE";
            case "u16" -> "ValueLayout.JAVA_SHORT_UNALIGNED";
            case "u32", "s32" -> "ValueLayout.JAVA_INT_UNALIGNED";
            default -> "ValueLayout.JAVA_LONG_UNALIGNED";
        };
    }

    private static String layoutExpr(StructSpec s, Field f, long fsize) {
        if (!f.isScalar()) {
            return "MemoryLayout.sequenceLayout(" + fsize + ", ValueLayout.JAVA_BYTE)";
        }
        if (f.isArray()) {
            return "MemoryLayout.sequenceLayout(" + f.count() + ", " + valueLayout(f.type()) + ")";
        }
        return valueLayout(f.type());
    }

    private static void emitAccessors(StringBuilder b, Field f, String offsetExpr, String indexParam) {
        String name = f.javaName();
        String vl = valueLayout(f.type());
        switch (f.type()) {
            case "u8" -> {
                b.append("    public static int ").append(name).append("(MemorySegment s").append(indexParam)
                        .append(") { return Byte.toUnsignedInt(s.get(").append(vl).append(", ").append(offsetExpr)
                        .append(")); }\n");
                b.append("    public static void ").append(name).append("(MemorySegment s").append(indexParam)
                        .append(", int v) { s.set(").append(vl).append(", ").append(offsetExpr)
                        .append(", (byte) v); }\n");
            }
            case "u16" -> {
                b.append("    public static int ").append(name).append("(MemorySegment s").append(indexParam)
                        .append(") { return Short.toUnsignedInt(s.get(").append(vl).append(", ")
                        .append(offsetExpr).append(")); }\n");
                b.append("    public static void ").append(name).append("(MemorySegment s").append(indexParam)
                        .append(", int v) { s.set(").append(vl).append(", ").append(offsetExpr)
                        .append(", (short) v); }\n");
            }
            case "u32", "s32" -> {
                b.append("    public static int ").append(name).append("(MemorySegment s").append(indexParam)
                        .append(") { return s.get(").append(vl).append(", ").append(offsetExpr).append("); }\n");
                b.append("    public static void ").append(name).append("(MemorySegment s").append(indexParam)
                        .append(", int v) { s.set(").append(vl).append(", ").append(offsetExpr)
                        .append(", v); }\n");
            }
            default -> {
                b.append("    public static long ").append(name).append("(MemorySegment s").append(indexParam)
                        .append(") { return s.get(").append(vl).append(", ").append(offsetExpr).append("); }\n");
                b.append("    public static void ").append(name).append("(MemorySegment s").append(indexParam)
                        .append(", long v) { s.set(").append(vl).append(", ").append(offsetExpr)
                        .append(", v); }\n");
            }
        }
    }

    private static String emitConstants(Spec spec, ConstGroup g, Probe probe) {
        StringBuilder b = new StringBuilder();
        b.append("/** Constants probed from the installed headers. */\n");
        b.append("public final class ").append(g.javaName()).append(" {\n");
        b.append("    private ").append(g.javaName()).append("() {}\n\n");
        for (ConstSpec k : g.constants()) {
            Long v = probe.constants().get(k.name());
            if (v == null) {
                throw new IllegalStateException("probe lacks constant " + k.name());
            }
            boolean asLong = k.forceLong() || v > Integer.MAX_VALUE || v < Integer.MIN_VALUE;
            b.append("    public static final ").append(asLong ? "long " : "int ").append(k.name()).append(" = ")
                    .append(asLong ? "0x" + Long.toHexString(v) + "L" : v.toString()).append(";\n");
        }
        b.append("}\n");
        return header(spec, probe, b.toString());
    }

    private static String emitIoctls(Spec spec, IoctlGroup g, Probe probe) {
        StringBuilder b = new StringBuilder();
        b.append("/** ioctl request numbers probed from the installed headers (checked against Ioctl's encoder). */\n");
        b.append("public final class ").append(g.javaName()).append(" {\n");
        b.append("    private ").append(g.javaName()).append("() {}\n\n");
        for (IoctlSpec i : g.ioctls()) {
            Long v = probe.ioctls().get(i.name());
            b.append("    /** {@code _").append(i.dir()).append("(0x").append(Integer.toHexString(i.type()))
                    .append(", 0x").append(Integer.toHexString(i.nr()))
                    .append(i.argType() == null ? "" : ", " + i.argType()).append(")} */\n");
            b.append("    public static final long ").append(i.name()).append(" = 0x").append(Long.toHexString(v))
                    .append("L;\n");
        }
        b.append("}\n");
        return header(spec, probe, b.toString());
    }

    static String camel(String snake) {
        StringBuilder b = new StringBuilder();
        boolean up = false;
        for (char ch : snake.toCharArray()) {
            if (ch == '_') {
                up = b.length() > 0;
            } else {
                b.append(up ? Character.toUpperCase(ch) : ch);
                up = false;
            }
        }
        return b.toString();
    }
}
