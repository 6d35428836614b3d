package dev.dvmm.hv.lab;

import picocli.CommandLine;

/**
 * Stand-alone entry to the lab: {@code java -cp ... dev.dvmm.hv.lab.LabMain [lab options] -- args},
 * or {@code LabMain host-mode} to print what kind of KVM this machine has.
 */
public final class LabMain {
    private LabMain() {}

    public static void main(String[] args) {
        if (args.length == 1 && args[0].equals("host-mode")) {
            System.out.println(HostMode.detect());
            System.exit(0);
        }
        System.exit(new CommandLine(new LabCommand()).execute(args));
    }
}
