package dev.dvmm.dsm.node;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * A bounded log of timestamped steps of the fault path (fault read, engine entered, message sent or received, page
 * installed, faulter woken), shared by the nodes of one process so that a benchmark can split each fault's latency
 * into stages on one clock. Recording allocates nothing and never blocks; events past the capacity are dropped.
 */
public final class FaultTrace {
    /** The faulting thread starts the access (recorded by the benchmark). */
    public static final int ACCESS = 1;
    /** The fault reader got the uffd event. */
    public static final int FAULT = 2;
    /** The fault entered the engine (the node's lock is held). */
    public static final int FAULT_LOCKED = 3;
    /** The transport handed a protocol message to the node (before the lock); {@code detail} is its type. */
    public static final int RECEIVED = 4;
    /** A received message entered the engine (the lock is held); {@code detail} is its type. */
    public static final int RECEIVED_LOCKED = 5;
    /** A send returned; {@code detail} is the message type. */
    public static final int SENT = 6;
    /** UFFDIO_COPY / ZEROPAGE / WRITEPROTECT-clear of the faulting page returned. */
    public static final int INSTALLED = 7;
    /** The faulters of the page were woken (UFFDIO_WAKE returned, or the install woke them). */
    public static final int RESOLVED = 8;
    /** The faulting thread's access completed (recorded by the benchmark). */
    public static final int ACCESS_DONE = 9;
    /** The node finished handling a received message (the lock is released); {@code detail} is its type. */
    public static final int HANDLED = 10;
    /**
     * A page was write-protected (detail 0: downgraded; 1: frozen before its data is sent) or unmapped from the guest
     * mapping (2: frozen so, where MINOR faults are registered).
     */
    public static final int PROTECTED = 11;
    /** A page was dropped (its memfd range punched). */
    public static final int PUNCHED = 12;
    /** A one-sided read of the page finished (before it is installed). */
    public static final int READ_DONE = 13;
    /** A one-sided read of the page was started. */
    public static final int READ_STARTED = 14;
    /** A page's contents were copied out of guest memory for a message that carries them. */
    public static final int COPIED = 15;

    private final long[] time;
    private final long[] info;
    private final AtomicInteger next = new AtomicInteger();

    public FaultTrace(int capacity) {
        time = new long[capacity];
        info = new long[capacity];
    }

    /** Records one event at {@code System.nanoTime()}. */
    public void record(int node, int event, int detail, int page) {
        int i = next.getAndIncrement();
        if (i < time.length) {
            time[i] = System.nanoTime();
            info[i] = (long) page << 32 | (long) (detail & 0xFFFF) << 16 | (node & 0xFF) << 8 | (event & 0xFF);
        }
    }

    /**
     * Adds an event recorded elsewhere: {@code time} and {@code packed} as {@link #time} and {@link #packed} gave them
     * (the benchmark merges the traces of node processes into one). Dropped past the capacity, like a recording.
     */
    public void add(long time, long packed) {
        int i = next.getAndIncrement();
        if (i < this.time.length) {
            this.time[i] = time;
            info[i] = packed;
        }
    }

    /** Events recorded (at most the capacity); read them only after the recording threads have been joined. */
    public int size() {
        return Math.min(next.get(), time.length);
    }

    public long time(int i) { return time[i]; }

    /** Event {@code i}'s node, event, detail and page in one value, for {@link #add} to another trace. */
    public long packed(int i) { return info[i]; }

    public int event(int i) { return (int) (info[i] & 0xFF); }

    public int node(int i) { return (int) (info[i] >>> 8 & 0xFF); }

    public int detail(int i) { return (int) (info[i] >>> 16 & 0xFFFF); }

    public int page(int i) { return (int) (info[i] >>> 32); }
}
