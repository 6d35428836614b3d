package dev.dvmm.hv.cli;

import dev.dvmm.bindings.NativeException;
import dev.dvmm.dsm.fault.FaultServiceException;
import dev.dvmm.hv.bus.BusException;
import dev.dvmm.hv.vcpu.VcpuFailure;
import dev.dvmm.hv.vstate.KvmException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code dvmm} command line. Errors a user can act on print one sentence, never a stack trace. */
@Command(name = "dvmm", mixinStandardHelpOptions = true, version = "dvmm 0.1.0", scope = CommandLine.ScopeType.INHERIT,
        description = "A distributed virtual machine monitor: one SMP guest across a cluster of KVM hosts.",
        subcommands = {InfoCommand.class, RunCommand.class, GuestCommand.class, TestKernelCommand.class, NodeCommand.class, BenchCommand.class, ImageCommand.class,
                dev.dvmm.hv.lab.LabCommand.class})
public final class Main {
    public static void main(String[] args) {
        System.exit(run(args));
    }

    public static int run(String... args) {
        CommandLine cl = new CommandLine(new Main());
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            if (ex instanceof VcpuFailure f) {
                cmd.getErr().println("dvmm: " + f.report());
                return 1;
            }
            if (ex instanceof KvmException || ex instanceof BusException || ex instanceof NativeException
                    || ex instanceof dev.dvmm.boot.BootException
                    || ex instanceof FaultServiceException || ex instanceof UserError
                    || ex instanceof dev.dvmm.dsm.bench.BenchmarkException) {
                cmd.getErr().println("dvmm: " + ex.getMessage());
                return 1;
            }
            throw ex;
        });
        return cl.execute(args);
    }
}
