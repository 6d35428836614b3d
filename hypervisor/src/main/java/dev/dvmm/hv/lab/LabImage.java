package dev.dvmm.hv.lab;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.function.Consumer;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The L1 image of the lab: Debian's stock kernel and a small busybox initramfs holding the kvm,
 * kvm-amd, virtio, 9p and overlay modules plus the lab's init. Built once per machine from Debian
 * packages (downloaded and unpacked, never installed, so the host's /boot stays as it is) and
 * cached in a directory named by the hash of its recipe.
 */
public final class LabImage {
    /** The modules the guest init loads; their dependencies (irqbypass, ccp, virtio...) come along. */
    static final List<String> MODULES = List.of(
            "virtio_pci", "virtio_console", "9pnet_virtio", "9p", "virtio_net", "overlay", "kvm-amd");

    private static final Pattern KERNEL_DEPENDENCY =
            Pattern.compile("^\\s*Depends:\\s*(linux-image-[0-9][^\\s]*)\\s*$", Pattern.MULTILINE);

    /** What goes into an image; equal recipes give the same cache entry. */
    public record Recipe(String kernelPackage, String busyboxPackage, List<String> modules, byte[] init) {
        /** Bumped whenever the way an image is assembled from a recipe changes. */
        static final int FORMAT = 2;

        public Recipe {
            modules = List.copyOf(modules);
            init = init.clone();
        }

        /** The recipe with the init script shipped in this jar. */
        public static Recipe standard() {
            try (InputStream in = LabImage.class.getResourceAsStream("init.sh")) {
                if (in == null) {
                    throw new LabException("init.sh missing from the dvmm jar");
                }
                return new Recipe("linux-image-amd64", "busybox-static", MODULES, in.readAllBytes());
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        String text() {
            return "format=" + FORMAT + "\nkernel-package=" + kernelPackage + "\nbusybox-package="
                    + busyboxPackage + "\nmodules=" + String.join(",", modules) + "\ninit-sha256="
                    + sha256(init) + "\n";
        }

        /** A short content hash naming the cache directory. */
        public String hash() {
            return sha256(text().getBytes(StandardCharsets.UTF_8)).substring(0, 16);
        }
    }

    /** A built image: the kernel and initramfs that QEMU boots. */
    public record Built(Path directory, Path kernel, Path initramfs, String description) {}

    private LabImage() {}

    /** The cache root: $DVMM_LAB_CACHE, else $XDG_CACHE_HOME/dvmm/lab, else ~/.cache/dvmm/lab. */
    public static Path defaultCacheRoot() {
        String explicit = System.getenv("DVMM_LAB_CACHE");
        if (explicit != null && !explicit.isBlank()) {
            return Path.of(explicit);
        }
        String xdg = System.getenv("XDG_CACHE_HOME");
        Path base = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
        return base.resolve("dvmm").resolve("lab");
    }

    /** The cached image for {@code recipe}, if it was built before. */
    public static Built cached(Path cacheRoot, Recipe recipe) {
        Path dir = cacheRoot.resolve(recipe.hash());
        Path kernel = dir.resolve("kernel");
        Path initramfs = dir.resolve("initramfs.cpio");
        Path description = dir.resolve("recipe.txt");
        if (Files.isRegularFile(kernel) && Files.isRegularFile(initramfs) && Files.isRegularFile(description)) {
            try {
                return new Built(dir, kernel, initramfs, Files.readString(description));
            } catch (IOException e) {
                return null;
            }
        }
        return null;
    }

    /** The cached image, built first if needed (downloads two Debian packages, ~75 MB). */
    public static Built ensure(Path cacheRoot, Recipe recipe, boolean rebuild, Consumer<String> progress) {
        Built built = rebuild ? null : cached(cacheRoot, recipe);
        if (built != null) {
            return built;
        }
        Path dir = cacheRoot.resolve(recipe.hash());
        progress.accept("building the L1 image " + recipe.hash() + " in " + dir + " (once per machine)");
        Path work;
        try {
            Files.createDirectories(cacheRoot);
            work = Files.createTempDirectory(cacheRoot, "build-");
        } catch (IOException e) {
            throw new LabException("cannot create the lab cache " + cacheRoot + ": " + e.getMessage(), e);
        }
        try {
            assemble(recipe, work, progress);
            if (rebuild) {
                deleteTree(dir);
            }
            try {
                Files.move(work.resolve("image"), dir, StandardCopyOption.ATOMIC_MOVE);
            } catch (FileAlreadyExistsException | AtomicMoveNotSupportedException e) {
                // Another lab built the same recipe at the same time; its image is as good as ours.
            } catch (IOException e) {
                if (cached(cacheRoot, recipe) == null) {
                    throw e;
                }
            }
        } catch (IOException e) {
            throw new LabException("cannot build the lab image in " + work + ": " + e.getMessage(), e);
        } finally {
            deleteTree(work);
        }
        built = cached(cacheRoot, recipe);
        if (built == null) {
            throw new LabException("the lab image in " + dir + " is incomplete after building it");
        }
        return built;
    }

    private static void assemble(Recipe recipe, Path work, Consumer<String> progress) throws IOException {
        String kernelPackage = DebianPackages.resolveDependency(recipe.kernelPackage(), KERNEL_DEPENDENCY);
        progress.accept("downloading " + kernelPackage + " and " + recipe.busyboxPackage());
        Path debs = Files.createDirectories(work.resolve("debs"));
        List<Path> downloaded = DebianPackages.download(List.of(kernelPackage, recipe.busyboxPackage()), debs);
        Path root = Files.createDirectories(work.resolve("root"));
        progress.accept("unpacking " + downloaded.size() + " packages");
        for (Path deb : downloaded) {
            DebianPackages.extract(deb, root);
        }

        Path vmlinuz;
        Path moduleTree;
        try (Stream<Path> boot = Files.list(root.resolve("boot"));
             Stream<Path> trees = Files.list(root.resolve("lib/modules"))) {
            vmlinuz = boot.filter(p -> p.getFileName().toString().startsWith("vmlinuz-")).findFirst()
                    .orElseThrow(() -> new LabException(kernelPackage + " has no /boot/vmlinuz-*"));
            moduleTree = trees.findFirst()
                    .orElseThrow(() -> new LabException(kernelPackage + " has no /lib/modules/<version>"));
        }
        KernelModules modules = KernelModules.scan(moduleTree);
        List<String> order = modules.loadOrder(recipe.modules());
        Path busybox = root.resolve("bin/busybox");
        if (!Files.isExecutable(busybox)) {
            throw new LabException(recipe.busyboxPackage() + " has no /bin/busybox");
        }
        HostProcess list = HostProcess.run(List.of(busybox.toString(), "--list"), null, 30);
        if (list.exitCode() != 0) {
            throw new LabException("busybox --list failed: " + list.lastLine());
        }

        Path image = Files.createDirectories(work.resolve("image"));
        progress.accept("writing the initramfs (" + order.size() + " modules: " + String.join(" ", order) + ")");
        dev.dvmm.boot.initramfs.CpioArchive cpio = new dev.dvmm.boot.initramfs.CpioArchive();
        for (String d : List.of("bin", "dev", "lib", "lib/dvmm-lab", "lab-bin", "proc", "sys", "run")) {
            cpio.directory(d, 0755);
        }
        // The kernel opens /dev/console for init before anything can mount devtmpfs.
        cpio.characterDevice("dev/console", 0600, 5, 1);
        cpio.file("bin/busybox", 0755, Files.readAllBytes(busybox));
        cpio.file("init", 0755, recipe.init());
        for (String m : order) {
            cpio.file("lib/dvmm-lab/" + m + ".ko", 0644, Files.readAllBytes(modules.file(m)));
        }
        cpio.file("lib/dvmm-lab/modules", 0644, (String.join("\n", order) + "\n").getBytes(StandardCharsets.UTF_8));
        // Applet links for the booted root, made here so the guest need not fork once per applet.
        for (String applet : list.output().strip().split("\\s+")) {
            cpio.symlink("lab-bin/" + applet, "/run/dvmm-lab/busybox");
        }
        try (OutputStream file = new BufferedOutputStream(Files.newOutputStream(image.resolve("initramfs.cpio")))) {
            cpio.writeTo(file);
        }
        String kernelFormat = bootKernel(root, vmlinuz, image.resolve("kernel"), progress);
        List<String> names = new ArrayList<>();
        for (Path deb : downloaded) {
            names.add(deb.getFileName().toString());
        }
        Files.writeString(image.resolve("recipe.txt"), recipe.text() + "packages=" + String.join(",", names)
                + "\nload-order=" + String.join(",", order) + "\nkernel=" + kernelFormat + "\n");
    }

    /**
     * Puts the kernel QEMU boots at {@code target}: the unpacked vmlinux (PVH entry, no decompression
     * in the guest) when the kernel supports PVH, else the bzImage itself.
     */
    private static String bootKernel(Path root, Path vmlinuz, Path target, Consumer<String> progress) throws IOException {
        Path config = root.resolve("boot").resolve(vmlinuz.getFileName().toString().replaceFirst("^vmlinuz-", "config-"));
        boolean pvh = Files.isRegularFile(config) && Files.readAllLines(config).contains("CONFIG_PVH=y");
        if (pvh) {
            try {
                BzImage.extractVmlinux(vmlinuz, target);
                return "vmlinux (PVH)";
            } catch (LabException e) {
                progress.accept("booting the compressed kernel instead: " + e.getMessage());
            }
        }
        Files.copy(vmlinuz, target, StandardCopyOption.REPLACE_EXISTING);
        return "bzImage";
    }

    static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every JDK", e);
        }
    }

    static void deleteTree(Path dir) {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            // Leftovers in a temp or cache directory are harmless; the next build starts fresh.
        }
    }
}
