package dev.dvmm.hv.lab;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Debian's stock kernel as shipped (linux-image-amd64), unpacked into a cache without touching /boot: the
 * guest kernel of {@code dvmm run --image debian}.
 */
public final class DebianKernel {
    private static final Pattern KERNEL_DEPENDENCY =
            Pattern.compile("^\\s*Depends:\\s*(linux-image-[0-9][^\\s]*)\\s*$", Pattern.MULTILINE);

    private DebianKernel() {}

    /** The vmlinuz of the current linux-image-amd64, downloaded and unpacked under {@code cacheRoot} once. */
    public static Path vmlinuz(Path cacheRoot) throws IOException {
        String pkg = DebianPackages.resolveDependency("linux-image-amd64", KERNEL_DEPENDENCY);
        Path dir = cacheRoot.resolve("debian-" + pkg);
        Path found = find(dir);
        if (found != null) {
            return found;
        }
        Path work = Files.createDirectories(cacheRoot.resolve("debian-" + pkg + ".tmp"));
        for (Path deb : DebianPackages.download(List.of(pkg), work)) {
            DebianPackages.extract(deb, work.resolve("root"));
        }
        Files.move(work, dir, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        found = find(dir);
        if (found == null) {
            throw new LabException(pkg + " has no /boot/vmlinuz-*");
        }
        return found;
    }

    private static Path find(Path dir) throws IOException {
        Path boot = dir.resolve("root/boot");
        if (!Files.isDirectory(boot)) {
            return null;
        }
        try (Stream<Path> s = Files.list(boot)) {
            return s.filter(p -> p.getFileName().toString().startsWith("vmlinuz-")).findFirst().orElse(null);
        }
    }
}
