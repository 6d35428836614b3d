package dev.dvmm.hv.bus;

/** A device on a port-I/O or MMIO bus. It sees offsets from its own base, never absolute addresses. */
public interface BusDevice {
    /** Reads {@code size} (1, 2, 4 or 8) bytes at {@code offset}; the value is zero-extended. */
    long read(int vcpu, long offset, int size);

    /** Writes the low {@code size} bytes of {@code value} at {@code offset}. */
    void write(int vcpu, long offset, int size, long value);
}
