package dev.dvmm.hv.lab;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs a short host tool (apt-get, dpkg-deb, qemu --version) and captures its output. */
record HostProcess(int exitCode, String output) {

    static HostProcess run(List<String> command, Path directory, long timeoutSeconds) {
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        if (directory != null) {
            pb.directory(directory.toFile());
        }
        pb.environment().put("LC_ALL", "C");
        pb.environment().put("DEBIAN_FRONTEND", "noninteractive");
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            throw new LabException("cannot run " + command.getFirst() + ": " + e.getMessage(), e);
        }
        try {
            p.getOutputStream().close();
            // Read on another thread so a chatty tool cannot block on a full pipe past the timeout.
            var out = new StringBuilder();
            Thread reader = Thread.ofVirtual().start(() -> {
                try {
                    out.append(new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
                } catch (IOException ignored) {
                    // The process died; what was read so far is all there is.
                }
            });
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new LabException(String.join(" ", command) + " did not finish within "
                        + timeoutSeconds + " s");
            }
            reader.join();
            return new HostProcess(p.exitValue(), out.toString());
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new LabException("interrupted while running " + command.getFirst(), e);
        } catch (IOException e) {
            throw new LabException("cannot talk to " + command.getFirst() + ": " + e.getMessage(), e);
        }
    }

    /** The last non-empty line of the output, for one-line error messages. */
    String lastLine() {
        String[] lines = output.strip().split("\n");
        return lines.length == 0 ? "" : lines[lines.length - 1].strip();
    }
}
