package dev.dvmm.bindings;

/** A UCX call failed, or UCX is not installed: the operation, the UCX status and its text. */
public final class UcxException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    /** Status used when the library itself is missing (no UCX status code applies). */
    public static final int NOT_INSTALLED = Integer.MIN_VALUE;
    private final int status;

    public UcxException(String operation, int status, String statusText) {
        super(operation + " failed: " + statusText + " (UCX status " + status + ")");
        this.status = status;
    }

    /** UCX is absent or unusable; {@code message} is the whole sentence. */
    public UcxException(String message) {
        super(message);
        this.status = NOT_INSTALLED;
    }

    /** The {@code ucs_status_t} value, or {@link #NOT_INSTALLED}. */
    public int status() {
        return status;
    }
}
