package dev.dvmm.dsm;

import dev.dvmm.bindings.abi.UffdConstants;
import dev.dvmm.dsm.fault.FaultServiceException;
import dev.dvmm.dsm.fault.Userfaultfd;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Skips a test, with the reason printed, when this kernel's userfaultfd cannot back the DSM. */
public final class UffdAvailable {
    private UffdAvailable() {}

    /** Null when usable, else why not. */
    private static String unavailableReason() {
        try {
            long f = Userfaultfd.supportedFeatures();
            return (f & UffdConstants.UFFD_FEATURE_WP_HUGETLBFS_SHMEM) != 0 ? null
                    : "this kernel's userfaultfd cannot write-protect shared memory";
        } catch (FaultServiceException e) {
            return e.getMessage();
        }
    }

    public static void assume() {
        String why = unavailableReason();
        if (why != null) {
            System.out.println("SKIPPED: " + why);
        }
        assumeTrue(why == null, why);
    }
}
