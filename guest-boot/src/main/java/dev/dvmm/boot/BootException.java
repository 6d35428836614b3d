package dev.dvmm.boot;

/**
 * Everything that can go wrong while preparing a guest to boot: a bad kernel or initramfs file, a
 * command line the kernel cannot take, a machine too small for what it is asked to hold. The
 * message is one sentence meant for the user (it names the file and the problem), so callers print
 * {@link #getMessage()} and need no stack trace; {@link #kind()} says which sort of problem it is.
 */
public final class BootException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** The sort of problem, for callers and tests that act on it. */
    public enum Kind {
        /** The file is missing or cannot be read. */
        UNREADABLE,
        /** The file is not a kernel of any format dvmm knows (wrong magic). */
        NOT_A_KERNEL,
        /** The file ends before a structure it announces. */
        TRUNCATED,
        /** A structure in the file contradicts itself or the format. */
        CORRUPT,
        /** A valid file that dvmm cannot boot (too old a protocol, no 64-bit entry, another machine). */
        UNSUPPORTED,
        /** Something does not fit where it must go (kernel, initramfs, command line, tables). */
        DOES_NOT_FIT,
        /** A value given by the caller is not acceptable (command line text, initramfs path, vCPU count). */
        INVALID_ARGUMENT
    }

    private final Kind kind;

    public BootException(Kind kind, String message) {
        super(message);
        this.kind = kind;
    }

    public BootException(Kind kind, String message, Throwable cause) {
        super(message, cause);
        this.kind = kind;
    }

    public Kind kind() {
        return kind;
    }
}
