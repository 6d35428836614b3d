package dev.dvmm.dsm.protocol;

/** An open-addressing map from 64-bit state fingerprints to state ids (0 is remapped, it marks empty slots). */
final class FingerprintMap {
    private long[] keys;
    private int[] ids;
    private int size;

    FingerprintMap(int initialCapacityPowerOfTwo) {
        keys = new long[initialCapacityPowerOfTwo];
        ids = new int[initialCapacityPowerOfTwo];
    }

    /** Maps {@code fingerprint} to {@code id} unless present; returns the id it already had, or -1. */
    int putIfAbsent(long fingerprint, int id) {
        long key = fingerprint == 0 ? 1 : fingerprint;
        if (size * 2 >= keys.length) {
            grow();
        }
        int mask = keys.length - 1;
        for (int i = slot(key, mask); ; i = (i + 1) & mask) {
            if (keys[i] == 0) {
                keys[i] = key;
                ids[i] = id;
                size++;
                return -1;
            }
            if (keys[i] == key) {
                return ids[i];
            }
        }
    }

    int size() {
        return size;
    }

    private static int slot(long key, int mask) {
        return (int) (key ^ key >>> 32) & mask;
    }

    private void grow() {
        long[] oldKeys = keys;
        int[] oldIds = ids;
        keys = new long[oldKeys.length * 2];
        ids = new int[oldKeys.length * 2];
        int mask = keys.length - 1;
        for (int j = 0; j < oldKeys.length; j++) {
            if (oldKeys[j] != 0) {
                int i = slot(oldKeys[j], mask);
                while (keys[i] != 0) {
                    i = (i + 1) & mask;
                }
                keys[i] = oldKeys[j];
                ids[i] = oldIds[j];
            }
        }
    }
}
