package dev.dvmm.hv.cli;

import dev.dvmm.boot.kernel.KernelFile;
import dev.dvmm.boot.linux.KernelCommandLine;
import dev.dvmm.boot.smp.SmpEnumeration;
import dev.dvmm.hv.machine.LinuxGuestSession;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** Boots the freestanding SMP test kernel and reports its results. */
@Command(name = "testkernel", description = "Run the SMP test kernel (INIT/SIPI, IPIs, LAPIC timer, atomics, "
        + "memory-model litmus tests); exit status = number of failed tests.")
final class TestKernelCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--cpus", defaultValue = "2", description = "vCPUs (default: ${DEFAULT-VALUE})")
    int cpus;

    @Option(names = "--memory", defaultValue = "64M", converter = ByteSize.GuestRam.class, description = "guest RAM")
    long memory;

    @Option(names = "--iterations", defaultValue = "20000", description = "litmus iterations per test")
    long iterations;

    @Option(names = "--timeout", defaultValue = "600", description = "seconds")
    long timeoutSeconds;

    static byte[] image() {
        try (InputStream in = TestKernelCommand.class.getResourceAsStream("/dev/dvmm/boot/testkernel/testkernel.elf")) {
            if (in == null) {
                throw new UserError("the test kernel is missing from the build (guest-boot/src/main/testkernel)");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UserError("cannot read the test kernel: " + e.getMessage());
        }
    }

    @Override
    public Integer call() throws Exception {
        if (cpus < 1 || cpus > 64) {
            throw new UserError("--cpus must be between 1 and 64");
        }
        PrintWriter out = spec.commandLine().getOut();
        out.printf("dvmm: test kernel on %d vCPU(s), %d MiB%n", cpus, memory >> 20);
        out.flush();
        long t0 = System.nanoTime();
        try (LinuxGuestSession s = LinuxGuestSession.boot(cpus, memory, KernelFile.of("testkernel", image()), null,
                new KernelCommandLine().add("tk.iters", iterations), SmpEnumeration.BOTH, System.out)) {
            int failures = s.run(Duration.ofSeconds(timeoutSeconds));
            String text = s.platform().consoleText();
            long passed = text.lines().filter(l -> l.startsWith("DVMM-TEST") && l.contains("result=pass")).count();
            long failed = text.lines().filter(l -> l.startsWith("DVMM-TEST") && l.contains("result=fail")).count();
            System.out.flush();
            out.printf(Locale.ROOT, "dvmm: test kernel finished in %.1f s: %d passed, %d failed%n",
                    (System.nanoTime() - t0) / 1e9, passed, failed);
            if (failures != failed) {
                out.printf("dvmm: the kernel reported %d failures at exit%n", failures);
            }
            return failures == 0 && failed == 0 && passed > 0 ? 0 : Math.max(1, failures);
        }
    }
}
