package dev.dvmm.boot.image;

import dev.dvmm.boot.BootException;
import dev.dvmm.boot.initramfs.CpioArchive;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The guest initramfs shared by every guest image: busybox (from Debian's busybox-static), the
 * OpenMP programs in this module's resources (compiled here with {@code gcc -O2 -fopenmp -static}) and
 * an init that prints {@code DVMM-GUEST cpus=N}, runs the programs named by {@code dvmm.run=}, prints one
 * {@code DVMM-RESULT} line each and powers off. Cached by the hash of its inputs.
 */
public final class GuestInitramfs {
    public static final List<String> PROGRAMS = List.of("reduction", "stencil", "matmul");
    public static final Path BUSYBOX = Path.of("/bin/busybox");
    private static final String RES = "/dev/dvmm/boot/image/";

    private GuestInitramfs() {}

    /** Builds (or finds in {@code cacheRoot}) the initramfs; returns its path. */
    public static Path build(Path cacheRoot) throws IOException, InterruptedException {
        if (!Files.isExecutable(BUSYBOX) || !isStatic(BUSYBOX)) {
            throw new BootException(BootException.Kind.UNREADABLE, BUSYBOX + " is missing or not static: "
                    + "apt-get install busybox-static");
        }
        byte[] init = resource("init");
        byte[] header = resource("openmp/common.h");
        MessageDigest sha = sha256();
        sha.update(Files.readAllBytes(BUSYBOX));
        sha.update(init);
        sha.update(header);
        List<byte[]> sources = new ArrayList<>();
        for (String p : PROGRAMS) {
            byte[] src = resource("openmp/" + p + ".c");
            sources.add(src);
            sha.update(src);
        }
        sha.update(gccVersion().getBytes(StandardCharsets.UTF_8));
        String hash = HexFormat.of().formatHex(sha.digest()).substring(0, 16);
        Path out = cacheRoot.resolve("initramfs-" + hash + ".cpio");
        if (Files.exists(out)) {
            return out;
        }
        Path work = Files.createTempDirectory("dvmm-initramfs");
        try {
            Files.write(work.resolve("common.h"), header);
            CpioArchive cpio = new CpioArchive()
                    .directory("bin", 0755).directory("proc", 0755).directory("sys", 0755).directory("dev", 0755)
                    .directory("tmp", 01777).directory("omp", 0755)
                    .characterDevice("dev/console", 0600, 5, 1)
                    .file("bin/busybox", 0755, Files.readAllBytes(BUSYBOX))
                    .symlink("bin/sh", "busybox")
                    .file("init", 0755, init);
            for (int i = 0; i < PROGRAMS.size(); i++) {
                String p = PROGRAMS.get(i);
                Path c = work.resolve(p + ".c");
                Path exe = work.resolve(p);
                Files.write(c, sources.get(i));
                String log = run(List.of("gcc", "-O2", "-fopenmp", "-static", "-o", exe.toString(), c.toString()));
                if (!Files.isExecutable(exe)) {
                    throw new IOException("compiling the guest program " + p + " failed: " + log);
                }
                cpio.file("omp/" + p, 0755, Files.readAllBytes(exe));
            }
            Files.createDirectories(cacheRoot);
            Path tmp = cacheRoot.resolve(out.getFileName() + ".tmp");
            Files.write(tmp, cpio.toByteArray());
            Files.move(tmp, out, java.nio.file.StandardCopyOption.ATOMIC_MOVE, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            return out;
        } finally {
            try (var w = Files.walk(work)) {
                w.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            }
        }
    }

    private static boolean isStatic(Path exe) throws IOException {
        // A static ELF has no PT_INTERP: look for the interpreter path string in the first 64 KiB.
        byte[] head = new byte[65536];
        try (InputStream in = Files.newInputStream(exe)) {
            int n = in.readNBytes(head, 0, head.length);
            return !new String(head, 0, n, StandardCharsets.ISO_8859_1).contains("/lib64/ld-linux");
        }
    }

    private static byte[] resource(String name) throws IOException {
        try (InputStream in = GuestInitramfs.class.getResourceAsStream(RES + name)) {
            if (in == null) {
                throw new IOException("resource " + RES + name + " missing from the build");
            }
            return in.readAllBytes();
        }
    }

    private static String gccVersion() throws IOException, InterruptedException {
        return run(List.of("gcc", "-dumpfullversion"));
    }

    private static String run(List<String> cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(5, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            throw new IOException(String.join(" ", cmd) + " timed out");
        }
        return out.strip();
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
