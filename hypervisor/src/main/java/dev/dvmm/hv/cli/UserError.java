package dev.dvmm.hv.cli;

/** Bad input from the command line: the message is the whole explanation. */
public final class UserError extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public UserError(String message) {
        super(message);
    }
}
