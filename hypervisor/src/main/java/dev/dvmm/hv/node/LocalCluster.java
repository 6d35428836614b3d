package dev.dvmm.hv.node;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Starts N {@code dvmm node} processes on this machine over loopback (the embedded default of a
 * multi-node run), streams their output prefixed with the rank, and waits for them.
 */
public final class LocalCluster {
    private LocalCluster() {}

    /** Free loopback ports, one per node (bound and released: a tiny race that loopback tests accept). */
    static List<Integer> freePorts(int n) throws IOException {
        List<ServerSocket> held = new ArrayList<>();
        try {
            List<Integer> ports = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress());
                held.add(s);
                ports.add(s.getLocalPort());
            }
            return ports;
        } finally {
            for (ServerSocket s : held) {
                s.close();
            }
        }
    }

    /**
     * Runs the nodes; {@code nodeArgs} are the {@code dvmm node} options shared by all (program, cpus...).
     * Returns node 0's exit status, or 1 if any node failed.
     */
    public static int run(int nodes, List<String> nodeArgs, Duration timeout, Path statsJson, PrintStream out)
            throws IOException, InterruptedException {
        Path dir = Files.createTempDirectory("dvmm-cluster");
        Path secret = dir.resolve("secret");
        byte[] key = new byte[32];
        new SecureRandom().nextBytes(key);
        Files.writeString(secret, HexFormat.of().formatHex(key));
        Files.setPosixFilePermissions(secret, PosixFilePermissions.fromString("rw-------"));
        List<Integer> ports = freePorts(nodes);
        StringBuilder peers = new StringBuilder();
        for (int p : ports) {
            peers.append(peers.length() == 0 ? "" : ",").append("127.0.0.1:").append(p);
        }
        String javaBin = ProcessHandle.current().info().command().orElse("java");
        List<Process> procs = new ArrayList<>();
        List<Thread> pumps = new ArrayList<>();
        try {
            for (int r = 0; r < nodes; r++) {
                List<String> cmd = new ArrayList<>(List.of(javaBin, "--enable-native-access=ALL-UNNAMED",
                        "-XX:+UnlockDiagnosticVMOptions", "-XX:GuaranteedSafepointInterval=0",
                        "-cp", System.getProperty("java.class.path"), "dev.dvmm.hv.cli.Main", "node",
                        "--rank", Integer.toString(r), "--peers", peers.toString(), "--secret-file", secret.toString(),
                        "--stats-json", dir.resolve("stats-" + r + ".json").toString()));
                cmd.addAll(nodeArgs);
                Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
                p.getOutputStream().close();
                procs.add(p);
                final int rank = r;
                Thread pump = Thread.ofPlatform().name("node-" + r + "-output").start(() -> {
                    try (BufferedReader in = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                        String line;
                        while ((line = in.readLine()) != null) {
                            synchronized (out) {
                                out.println("[node " + rank + "] " + line);
                            }
                        }
                    } catch (IOException e) {
                        // the process is gone
                    }
                });
                pumps.add(pump);
            }
            long deadline = System.nanoTime() + timeout.toNanos() + Duration.ofSeconds(30).toNanos();
            int[] status = new int[nodes];
            boolean anyFailed = false;
            for (int r = 0; r < nodes; r++) {
                Process p = procs.get(r);
                long left = deadline - System.nanoTime();
                if (!p.waitFor(Math.max(0, left), TimeUnit.NANOSECONDS)) {
                    out.println("dvmm: node " + r + " did not finish in time; stopping the cluster");
                    anyFailed = true;
                    break;
                }
                status[r] = p.exitValue();
                if (status[r] != 0) {
                    anyFailed = true;
                    // A failed node: the others cannot finish without it.
                    for (Process q : procs) {
                        if (q.isAlive() && !q.waitFor(5, TimeUnit.SECONDS)) {
                            q.destroy();
                        }
                    }
                }
            }
            for (Thread t : pumps) {
                t.join(5000);
            }
            if (statsJson != null) {
                StringBuilder b = new StringBuilder("[\n");
                for (int r = 0; r < nodes; r++) {
                    Path f = dir.resolve("stats-" + r + ".json");
                    if (Files.exists(f)) {
                        b.append(b.length() > 2 ? ",\n" : "").append("  ").append(Files.readString(f).strip());
                    }
                }
                Files.writeString(statsJson, b.append("\n]\n").toString());
            }
            return anyFailed ? (status[0] != 0 ? status[0] : 1) : status[0];
        } finally {
            for (Process p : procs) {
                if (p.isAlive()) {
                    p.destroyForcibly();
                }
            }
            try (var w = Files.walk(dir)) {
                w.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            }
        }
    }
}
