package dev.dvmm.bindings;

/** A failed system call: the operation, the errno and its text. */
public final class NativeException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final int errno;
    private final String operation;

    public NativeException(String operation, int errno) {
        super(operation + " failed: " + Posix.strerror(errno) + " (errno " + errno + ")");
        this.errno = errno;
        this.operation = operation;
    }

    public int errno() { return errno; }

    public String operation() { return operation; }
}
