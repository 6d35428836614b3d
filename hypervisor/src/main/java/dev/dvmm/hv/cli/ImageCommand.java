package dev.dvmm.hv.cli;

import dev.dvmm.boot.BootException;
import dev.dvmm.boot.image.GuestInitramfs;
import dev.dvmm.hv.lab.HostMode;
import dev.dvmm.hv.lab.LabException;
import dev.dvmm.hv.lab.LabImage;
import dev.dvmm.hv.lab.QemuBinary;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * Prepares what {@code dvmm run} boots, ahead of time (setup runs it): the guest kernel and initramfs,
 * and, on a host whose KVM cannot run Linux, the lab's QEMU and L1 image. Each is cached per machine.
 */
@Command(name = "image", description = "Build the guest image ahead of time (the default kernel takes 10-15 minutes "
        + "on 2 cores, once per machine) and, where Linux must run inside the lab, QEMU and the lab image; "
        + "prints the paths.")
final class ImageCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--image", defaultValue = "default", description = "default or debian (default: ${DEFAULT-VALUE})")
    String image;

    @Option(names = "--lab", defaultValue = "auto", description = "auto (prepare the lab when this host's KVM cannot "
            + "run Linux), always or never (default: ${DEFAULT-VALUE})")
    RunCommand.LabMode lab;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        RunCommand.checkImage(image);
        long t0 = System.nanoTime();
        Path kernel;
        Path initramfs;
        try {
            kernel = RunCommand.imageKernel(image, out);
            initramfs = GuestInitramfs.build(RunCommand.cacheRoot());
        } catch (IOException | BootException | LabException e) {
            throw new UserError("preparing the " + image + " image failed: " + e.getMessage());
        }
        out.printf("dvmm: kernel %s%ndvmm: initramfs %s%n", kernel, initramfs);
        boolean needLab = lab == RunCommand.LabMode.always
                || (lab == RunCommand.LabMode.auto && HostMode.detect().mode() != HostMode.HARDWARE_KVM);
        if (needLab) {
            try {
                QemuBinary q = QemuBinary.locate(null, true, m -> progress(out, m));
                LabImage.Built l1 = LabImage.ensure(LabImage.defaultCacheRoot(), LabImage.Recipe.standard(), false,
                        m -> progress(out, m));
                out.printf("dvmm: lab ready: %s, L1 image %s%n", q.path(), l1.directory());
            } catch (LabException e) {
                throw new UserError("preparing the lab failed: " + e.getMessage());
            }
        }
        out.printf(Locale.ROOT, "dvmm: image ready in %.1f s%n", (System.nanoTime() - t0) / 1e9);
        return 0;
    }

    private static void progress(PrintWriter out, String message) {
        out.println("dvmm: " + message);
        out.flush();
    }
}
