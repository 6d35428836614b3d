package dev.dvmm.hv.lab;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * What kind of KVM this machine offers, decided from files the kernel exposes.
 *
 * <p>On the project's build machines /dev/kvm is PVM (a paravirtual, shadow-paging KVM for nested
 * clouds): /sys/module/kvm_pvm exists, /proc/modules does not (the modules are built in), and
 * /proc/cpuinfo has the "hypervisor" flag but neither "vmx" nor "svm". Linux guests run about
 * 1000x slow there, so such hosts use the lab. Inside a lab VM: kvm_amd is loaded and "svm" shows.
 */
public enum HostMode {
    /** /dev/kvm on VMX/SVM (bare metal, or nested with hardware semantics such as the lab). */
    HARDWARE_KVM,
    /** /dev/kvm backed by PVM or another KVM without VMX/SVM: ring-0 guest code is very slow. */
    NESTED_PVM,
    /** No usable /dev/kvm. */
    NO_KVM;

    /** The mode and one line saying what it was recognised by. */
    public record Detection(HostMode mode, String explanation) {
        @Override
        public String toString() {
            return mode + ": " + explanation;
        }
    }

    private static final Pattern FLAGS = Pattern.compile("^flags\\s*:(.*)$", Pattern.MULTILINE);

    /** Detects the mode of this machine. */
    public static Detection detect() {
        return detect(Path.of("/"));
    }

    /** Detects the mode from the /dev, /sys and /proc found under {@code root}. */
    public static Detection detect(Path root) {
        Path kvm = root.resolve("dev/kvm");
        if (!Files.exists(kvm)) {
            return new Detection(NO_KVM, "no /dev/kvm (kvm modules not loaded or no virtualization"
                    + " support); Linux guests need the lab");
        }
        Set<String> flags = cpuFlags(root);
        boolean pvmModule = Files.isDirectory(root.resolve("sys/module/kvm_pvm"));
        if (pvmModule) {
            return new Detection(NESTED_PVM, "/dev/kvm is PVM (/sys/module/kvm_pvm present"
                    + (flags.contains("hypervisor") ? ", running under a hypervisor" : "")
                    + "): guest ring-0 code is ~1000x slow, use the lab for Linux guests");
        }
        String vendorModule = Files.isDirectory(root.resolve("sys/module/kvm_amd")) ? "kvm_amd"
                : Files.isDirectory(root.resolve("sys/module/kvm_intel")) ? "kvm_intel" : null;
        String hwFlag = flags.contains("svm") ? "svm" : flags.contains("vmx") ? "vmx" : null;
        if (vendorModule != null || hwFlag != null) {
            String by = vendorModule != null && hwFlag != null ? vendorModule + " loaded, CPU flag " + hwFlag
                    : vendorModule != null ? vendorModule + " loaded" : "CPU flag " + hwFlag;
            return new Detection(HARDWARE_KVM, "/dev/kvm with hardware virtualization (" + by + ")"
                    + (flags.contains("hypervisor") ? ", nested under a hypervisor" : ""));
        }
        if (flags.isEmpty()) {
            return new Detection(NESTED_PVM, "/dev/kvm exists but /proc/cpuinfo is unreadable;"
                    + " assuming a paravirtual KVM without VMX/SVM");
        }
        return new Detection(NESTED_PVM, "/dev/kvm exists but the CPU shows neither vmx nor svm:"
                + " a paravirtual KVM (like PVM) where ring-0 guest code is very slow");
    }

    private static Set<String> cpuFlags(Path root) {
        try {
            var m = FLAGS.matcher(Files.readString(root.resolve("proc/cpuinfo")));
            return m.find() ? Arrays.stream(m.group(1).trim().split("\\s+")).collect(Collectors.toSet())
                    : Set.of();
        } catch (IOException e) {
            return Set.of();
        }
    }
}
