package dev.dvmm.dsm.fault;

/** The DSM fault service cannot do what was asked (userfaultfd missing, a page install refused...). */
public final class FaultServiceException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public FaultServiceException(String message) {
        super(message);
    }
}
