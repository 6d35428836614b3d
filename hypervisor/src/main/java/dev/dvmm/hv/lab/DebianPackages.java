package dev.dvmm.hv.lab;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/** Debian package operations for the lab, through apt and dpkg as a user would run them. */
final class DebianPackages {
    private DebianPackages() {}

    /** The package a metapackage depends on (linux-image-amd64 -> linux-image-6.1.0-NN-amd64). */
    static String resolveDependency(String metapackage, Pattern dependency) {
        String found = dependencyOf(metapackage, dependency);
        if (found == null) {
            // Fresh machines have no package lists yet.
            update();
            found = dependencyOf(metapackage, dependency);
        }
        if (found == null) {
            throw new LabException("apt does not know " + metapackage + " (is this Debian with its main archive?)");
        }
        return found;
    }

    private static String dependencyOf(String metapackage, Pattern dependency) {
        HostProcess depends = HostProcess.run(List.of("apt-cache", "depends", metapackage), null, 120);
        if (depends.exitCode() != 0) {
            return null;
        }
        var m = dependency.matcher(depends.output());
        return m.find() ? m.group(1) : null;
    }

    private static void update() {
        requireRoot("apt-get update");
        HostProcess update = HostProcess.run(List.of("apt-get", "update", "-qq"), null, 600);
        if (update.exitCode() != 0) {
            throw new LabException("apt-get update failed: " + update.lastLine());
        }
    }

    /** Downloads .deb files into {@code directory} without installing them. */
    static List<Path> download(List<String> packages, Path directory) throws IOException {
        List<String> command = new ArrayList<>(List.of("apt-get", "download", "-q"));
        command.addAll(packages);
        HostProcess download = HostProcess.run(command, directory, 1800);
        if (download.exitCode() != 0) {
            throw new LabException("apt-get download " + String.join(" ", packages) + " failed: " + download.lastLine());
        }
        try (Stream<Path> debs = Files.list(directory)) {
            List<Path> found = debs.filter(p -> p.toString().endsWith(".deb")).sorted().toList();
            if (found.size() != packages.size()) {
                throw new LabException("apt-get download gave " + found.size() + " files for " + packages.size()
                        + " packages in " + directory);
            }
            return found;
        }
    }

    static void extract(Path deb, Path root) {
        HostProcess x = HostProcess.run(List.of("dpkg-deb", "-x", deb.toString(), root.toString()), null, 600);
        if (x.exitCode() != 0) {
            throw new LabException("dpkg-deb -x " + deb.getFileName() + " failed: " + x.lastLine());
        }
    }

    static boolean installed(String pkg) {
        HostProcess q = HostProcess.run(List.of("dpkg-query", "-W", "-f=${Status}", pkg), null, 60);
        return q.exitCode() == 0 && q.output().contains("install ok installed");
    }

    /** apt-get install --no-install-recommends, as root only. */
    static void install(String pkg) {
        requireRoot("apt-get install " + pkg);
        HostProcess install = HostProcess.run(
                List.of("apt-get", "install", "-y", "-qq", "--no-install-recommends", pkg), null, 1800);
        if (install.exitCode() != 0) {
            update();
            install = HostProcess.run(
                    List.of("apt-get", "install", "-y", "-qq", "--no-install-recommends", pkg), null, 1800);
        }
        if (install.exitCode() != 0) {
            throw new LabException("apt-get install " + pkg + " failed: " + install.lastLine());
        }
    }

    private static void requireRoot(String what) {
        if (!"root".equals(System.getProperty("user.name"))) {
            throw new LabException(what + " needs root; run it as root once (sudo " + what + ")");
        }
    }
}
