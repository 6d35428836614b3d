package dev.dvmm.boot;

/**
 * Everything that can go wrong while preparing a guest to boot: a bad kernel or initramfs file, a
 * command line the kernel cannot take, a machine too small for what it is asked to hold. The
 * message is one sentence meant for the user (it names the file and the problem), so callers print
 * {@link #getMessage()} and need no stack trace.
 */
public final class BootException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public BootException(String message) {
        super(message);
    }

    public BootException(String message, Throwable cause) {
        super(message, cause);
    }
}
