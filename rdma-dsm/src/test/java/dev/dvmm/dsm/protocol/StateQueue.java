package dev.dvmm.dsm.protocol;

import java.util.ArrayDeque;

/**
 * A FIFO of encoded states (id, depth, bytes) packed into 1 MiB chunks: millions of frontier states cost their
 * bytes plus 8, not an object each.
 */
final class StateQueue {
    private static final int CHUNK = 1 << 20;
    private static final int HEADER = 8;

    private static final class Chunk {
        final byte[] bytes = new byte[CHUNK];
        int used;
    }

    private final ArrayDeque<Chunk> chunks = new ArrayDeque<>();
    private int headPosition;
    private long size;

    private int id;
    private int depth;
    private final byte[] state = new byte[0xFFFF];
    private int length;

    void add(int stateId, int stateDepth, StateWriter encoded) {
        int n = encoded.size();
        if (n > state.length || stateDepth > 0xFFFF) {
            throw new IllegalStateException("state of " + n + " bytes at depth " + stateDepth + " does not fit");
        }
        Chunk tail = chunks.peekLast();
        if (tail == null || tail.used + HEADER + n > CHUNK) {
            tail = new Chunk();
            chunks.addLast(tail);
        }
        byte[] b = tail.bytes;
        int at = tail.used;
        b[at] = (byte) (stateId >>> 24);
        b[at + 1] = (byte) (stateId >>> 16);
        b[at + 2] = (byte) (stateId >>> 8);
        b[at + 3] = (byte) stateId;
        b[at + 4] = (byte) (stateDepth >>> 8);
        b[at + 5] = (byte) stateDepth;
        b[at + 6] = (byte) (n >>> 8);
        b[at + 7] = (byte) n;
        encoded.copyTo(b, at + HEADER);
        tail.used = at + HEADER + n;
        size++;
    }

    boolean isEmpty() {
        return size == 0;
    }

    /** Moves the oldest state into {@link #id()}, {@link #depth()}, {@link #state()} and {@link #length()}. */
    void poll() {
        Chunk head = chunks.peekFirst();
        if (headPosition == head.used) {
            chunks.pollFirst();
            head = chunks.peekFirst();
            headPosition = 0;
        }
        byte[] b = head.bytes;
        int at = headPosition;
        id = (b[at] & 0xFF) << 24 | (b[at + 1] & 0xFF) << 16 | (b[at + 2] & 0xFF) << 8 | (b[at + 3] & 0xFF);
        depth = (b[at + 4] & 0xFF) << 8 | (b[at + 5] & 0xFF);
        length = (b[at + 6] & 0xFF) << 8 | (b[at + 7] & 0xFF);
        System.arraycopy(b, at + HEADER, state, 0, length);
        headPosition = at + HEADER + length;
        size--;
    }

    int id() {
        return id;
    }

    int depth() {
        return depth;
    }

    /** The polled state's bytes (the first {@link #length()}); valid until the next poll. */
    byte[] state() {
        return state;
    }

    int length() {
        return length;
    }
}
