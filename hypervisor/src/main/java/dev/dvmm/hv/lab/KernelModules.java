package dev.dvmm.hv.lab;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * The kernel modules of an unpacked Debian kernel package, and the order to insmod them in.
 *
 * <p>Unpacking a .deb does not run depmod, so there is no modules.dep: each module's dependencies
 * are read from the "depends=" string in its .modinfo section instead.
 */
final class KernelModules {
    private final Map<String, Path> byName;

    private KernelModules(Map<String, Path> byName) {
        this.byName = byName;
    }

    /** Indexes every *.ko under {@code tree} (e.g. lib/modules/6.1.0-56-amd64). */
    static KernelModules scan(Path tree) {
        Map<String, Path> byName = new HashMap<>();
        try (Stream<Path> files = Files.walk(tree)) {
            files.filter(f -> f.getFileName().toString().endsWith(".ko"))
                    .forEach(f -> byName.put(canonical(f.getFileName().toString().replaceFirst("\\.ko$", "")), f));
        } catch (IOException e) {
            throw new LabException("cannot read kernel modules under " + tree + ": " + e.getMessage(), e);
        }
        if (byName.isEmpty()) {
            throw new LabException("no kernel modules (*.ko) under " + tree
                    + " (compressed .ko.xz modules are not supported)");
        }
        return new KernelModules(byName);
    }

    Path file(String name) {
        Path p = byName.get(canonical(name));
        if (p == null) {
            throw new LabException("kernel module " + name + " is not in the kernel package");
        }
        return p;
    }

    /** The wanted modules and everything they depend on, each after its dependencies. */
    List<String> loadOrder(List<String> wanted) {
        Set<String> order = new LinkedHashSet<>();
        for (String name : wanted) {
            visit(canonical(name), order, new LinkedHashSet<>());
        }
        return new ArrayList<>(order);
    }

    private void visit(String name, Set<String> order, Set<String> path) {
        if (order.contains(name)) {
            return;
        }
        if (!path.add(name)) {
            throw new LabException("kernel module dependency cycle: " + String.join(" -> ", path) + " -> " + name);
        }
        for (String dep : dependencies(name)) {
            visit(dep, order, path);
        }
        path.remove(name);
        order.add(name);
    }

    /** The "depends=" list from a module's .modinfo strings. */
    List<String> dependencies(String name) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file(name));
        } catch (IOException e) {
            throw new LabException("cannot read kernel module " + name + ": " + e.getMessage(), e);
        }
        String value = modinfo(bytes, "depends");
        if (value == null) {
            throw new LabException("kernel module " + name + " has no depends= entry in .modinfo");
        }
        List<String> deps = new ArrayList<>();
        for (String d : value.split(",")) {
            if (!d.isBlank()) {
                deps.add(canonical(d.strip()));
            }
        }
        return deps;
    }

    /** A "key=value" NUL-terminated .modinfo string, or null. */
    static String modinfo(byte[] module, String key) {
        byte[] needle = (key + "=").getBytes(StandardCharsets.US_ASCII);
        outer:
        for (int i = 0; i + needle.length <= module.length; i++) {
            // .modinfo strings start right after a NUL.
            if (i > 0 && module[i - 1] != 0) {
                continue;
            }
            for (int j = 0; j < needle.length; j++) {
                if (module[i + j] != needle[j]) {
                    continue outer;
                }
            }
            int end = i + needle.length;
            while (end < module.length && module[end] != 0) {
                end++;
            }
            return new String(module, i + needle.length, end - i - needle.length, StandardCharsets.US_ASCII);
        }
        return null;
    }

    /** The kernel treats '-' and '_' in module names alike; file names keep their spelling. */
    private static String canonical(String name) {
        return name.replace('-', '_');
    }

    /** The file name of a module, as it is spelled in the package (kvm-amd.ko). */
    String fileName(String name) {
        return file(name).getFileName().toString();
    }
}
