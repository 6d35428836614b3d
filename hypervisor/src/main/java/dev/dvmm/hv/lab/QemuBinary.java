package dev.dvmm.hv.lab;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;
import java.util.regex.Pattern;

/** The qemu-system-x86_64 the lab boots its VMs with, checked to run before anything boots. */
public record QemuBinary(Path path, int major, int minor) {
    static final String NAME = "qemu-system-x86_64";
    static final String PACKAGE = "qemu-system-x86";
    private static final Pattern VERSION = Pattern.compile("QEMU emulator version (\\d+)\\.(\\d+)");

    /**
     * The QEMU at {@code explicit}, or on the PATH (installed from Debian's {@value #PACKAGE} first
     * if it is missing and {@code install} is set). Needs 7.2 or newer for -netdev stream.
     */
    public static QemuBinary locate(Path explicit, boolean install, Consumer<String> progress) {
        Path path = explicit != null ? explicit : onPath(NAME);
        if (path == null && install) {
            progress.accept("installing " + PACKAGE + " (first use)");
            DebianPackages.install(PACKAGE);
            path = onPath(NAME);
        }
        if (path == null) {
            throw new LabException(NAME + " not found on the PATH; install it (apt-get install "
                    + PACKAGE + ") or give --qemu");
        }
        if (!Files.isRegularFile(path) || !Files.isExecutable(path)) {
            throw new LabException("QEMU not found: " + path + " is not an executable file");
        }
        HostProcess version = HostProcess.run(List.of(path.toString(), "--version"), null, 30);
        var m = VERSION.matcher(version.output());
        if (version.exitCode() != 0 || !m.find()) {
            String why = version.output().isBlank() ? "exit status " + version.exitCode() : version.lastLine();
            throw new LabException("QEMU at " + path + " does not work: --version gave " + why);
        }
        QemuBinary q = new QemuBinary(path, Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)));
        if (q.major() < 7 || (q.major() == 7 && q.minor() < 2)) {
            throw new LabException("QEMU at " + path + " is " + q.major() + "." + q.minor()
                    + "; the lab needs 7.2 or newer (-netdev stream)");
        }
        return q;
    }

    static Path onPath(String name) {
        String pathVar = System.getenv("PATH");
        if (pathVar == null) {
            return null;
        }
        for (String dir : pathVar.split(":")) {
            if (dir.isEmpty()) {
                continue;
            }
            Path p = Path.of(dir, name);
            if (Files.isRegularFile(p) && Files.isExecutable(p)) {
                return p;
            }
        }
        return null;
    }
}
