package dev.dvmm.dsm.protocol;

/** An open-addressing set of 64-bit state fingerprints (0 is remapped, it marks empty slots). */
final class FingerprintSet {
    private long[] slots;
    private int size;

    FingerprintSet(int initialCapacityPowerOfTwo) {
        slots = new long[initialCapacityPowerOfTwo];
    }

    /** Adds {@code fingerprint}; returns false if it was already present. */
    boolean add(long fingerprint) {
        long key = fingerprint == 0 ? 1 : fingerprint;
        if (size * 2 >= slots.length) {
            grow();
        }
        int mask = slots.length - 1;
        for (int i = (int) (key ^ key >>> 32) & mask; ; i = (i + 1) & mask) {
            if (slots[i] == 0) {
                slots[i] = key;
                size++;
                return true;
            }
            if (slots[i] == key) {
                return false;
            }
        }
    }

    int size() {
        return size;
    }

    private void grow() {
        long[] old = slots;
        slots = new long[old.length * 2];
        int mask = slots.length - 1;
        for (long key : old) {
            if (key != 0) {
                int i = (int) (key ^ key >>> 32) & mask;
                while (slots[i] != 0) {
                    i = (i + 1) & mask;
                }
                slots[i] = key;
            }
        }
    }
}
