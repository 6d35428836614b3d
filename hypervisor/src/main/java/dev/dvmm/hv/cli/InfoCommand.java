package dev.dvmm.hv.cli;

import dev.dvmm.bindings.abi.KvmConstants;
import dev.dvmm.bindings.abi.UffdConstants;
import dev.dvmm.dsm.fault.Userfaultfd;
import dev.dvmm.hv.vstate.Kvm;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** What this host offers dvmm, and what is missing, in plain words. */
@Command(name = "info", description = "Report KVM, userfaultfd and what dvmm needs from this host.")
final class InfoCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    private record Need(String name, int cap, boolean required, String why) {}

    private static final List<Need> NEEDS = List.of(
            new Need("USER_MEMORY", KvmConstants.KVM_CAP_USER_MEMORY, true, "guest RAM from a memfd mapping"),
            new Need("IMMEDIATE_EXIT", KvmConstants.KVM_CAP_IMMEDIATE_EXIT, false, "race-free vCPU kicks"),
            new Need("SET_TSS_ADDR", KvmConstants.KVM_CAP_SET_TSS_ADDR, false, "real mode on Intel VMX"),
            new Need("MP_STATE", KvmConstants.KVM_CAP_MP_STATE, true, "AP start-up (INIT/SIPI) state"),
            new Need("VCPU_EVENTS", KvmConstants.KVM_CAP_VCPU_EVENTS, true, "exception and NMI injection"),
            new Need("EXT_CPUID", KvmConstants.KVM_CAP_EXT_CPUID, true, "per-vCPU CPUID (APIC ids)"),
            new Need("SYNC_MMU", KvmConstants.KVM_CAP_SYNC_MMU, true, "page invalidation reaches the guest (DSM)"),
            new Need("READONLY_MEM", KvmConstants.KVM_CAP_READONLY_MEM, false, "read-only memslots"),
            new Need("X86_USER_SPACE_MSR", KvmConstants.KVM_CAP_X86_USER_SPACE_MSR, false, "MSR exits to the VMM"),
            new Need("VCPU_ATTRIBUTES", KvmConstants.KVM_CAP_VCPU_ATTRIBUTES, false, "TSC offset across nodes"),
            new Need("TSC_CONTROL", KvmConstants.KVM_CAP_TSC_CONTROL, false, "guest TSC frequency"));

    private record UffdFeature(String name, long bit, boolean required, String why) {}

    private static final List<UffdFeature> UFFD = List.of(
            new UffdFeature("MISSING_SHMEM", UffdConstants.UFFD_FEATURE_MISSING_SHMEM, true,
                    "missing-page faults on the memfd guest RAM"),
            new UffdFeature("WP_SHMEM", UffdConstants.UFFD_FEATURE_WP_HUGETLBFS_SHMEM, true,
                    "write-protect faults on shared memory (SHARED -> MODIFIED upgrades)"),
            new UffdFeature("PAGEFAULT_FLAG_WP", UffdConstants.UFFD_FEATURE_PAGEFAULT_FLAG_WP, true, "WP fault reporting"),
            new UffdFeature("THREAD_ID", UffdConstants.UFFD_FEATURE_THREAD_ID, false, "per-vCPU fault attribution"),
            new UffdFeature("MINOR_SHMEM", UffdConstants.UFFD_FEATURE_MINOR_SHMEM, false, "minor faults"));

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        List<String> missing = new ArrayList<>();
        out.println("KVM");
        try (Kvm kvm = Kvm.open()) {
            out.printf("  %-22s %d%n", "API version", kvm.apiVersion());
            out.printf("  %-22s %d%n", "max vCPUs", kvm.checkExtension(KvmConstants.KVM_CAP_MAX_VCPUS));
            out.printf("  %-22s %d%n", "memslots", kvm.checkExtension(KvmConstants.KVM_CAP_NR_MEMSLOTS));
            for (Need n : NEEDS) {
                boolean has = kvm.checkExtension(n.cap()) > 0;
                out.printf("  %-22s %-3s %s%s%n", n.name(), has ? "yes" : "no", n.why(), n.required() ? "" : " (optional)");
                if (!has && n.required()) {
                    missing.add("KVM capability " + n.name() + " (" + n.why() + ")");
                }
            }
        } catch (RuntimeException e) {
            out.println("  unavailable: " + e.getMessage());
            missing.add("a usable /dev/kvm");
        }
        out.println("userfaultfd");
        try {
            long f = Userfaultfd.supportedFeatures();
            out.printf("  %-22s yes (features 0x%x)%n", "available", f);
            for (UffdFeature u : UFFD) {
                boolean has = (f & u.bit()) != 0;
                out.printf("  %-22s %-3s %s%s%n", u.name(), has ? "yes" : "no", u.why(), u.required() ? "" : " (optional)");
                if (!has && u.required()) {
                    missing.add("userfaultfd feature " + u.name() + " (" + u.why() + ")");
                }
            }
        } catch (RuntimeException e) {
            out.println("  unavailable: " + e.getMessage());
            missing.add("userfaultfd (the DSM needs it for multi-node guests)");
        }
        out.println("host");
        dev.dvmm.hv.lab.HostMode.Detection mode = dev.dvmm.hv.lab.HostMode.detect();
        out.printf("  %-22s %s (%s)%n", "mode", mode.mode(), mode.explanation());
        if (mode.mode() != dev.dvmm.hv.lab.HostMode.HARDWARE_KVM) {
            out.println("  Linux guests need the lab here: ./dvmm lab -- <command> (QEMU with emulated SVM)");
        }
        out.println("UCX (RDMA transport)");
        try {
            for (String line : dev.dvmm.dsm.transport.UcxInfo.probe().lines()) {
                out.println("  " + line);
            }
        } catch (RuntimeException | LinkageError e) {
            out.println("  not usable: " + e.getMessage() + " (optional: the TCP transport works without it)");
        }
        out.println();
        if (missing.isEmpty()) {
            out.println("dvmm can run here.");
            return 0;
        }
        out.println("Missing:");
        for (String m : missing) {
            out.println("  - " + m);
        }
        return 1;
    }
}
