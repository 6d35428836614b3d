package dev.dvmm.dsm.bench;

/** A benchmark could not complete (a node process died, answered with an error, or did not answer in time). */
public final class BenchmarkException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public BenchmarkException(String message) {
        super(message);
    }
}
