package dev.dvmm.hv.bus;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Address-range dispatch for port I/O or MMIO: sorted, non-overlapping ranges, binary search per access.
 *
 * <p>Registration happens at setup and publishes a new immutable table; lookups from vCPU threads read
 * the table once (volatile) and allocate nothing. Accesses that hit no device read as all ones and are
 * ignored on write, as on real buses, and are counted.
 */
public final class IoBus {
    private record Table(long[] starts, long[] ends, BusDevice[] devices, String[] names) {}

    private final String name;
    private volatile Table table = new Table(new long[0], new long[0], new BusDevice[0], new String[0]);
    private final AtomicLong unclaimed = new AtomicLong();

    public IoBus(String name) {
        this.name = name;
    }

    /** Adds {@code device} at [base, base + length); rejects empty, wrapping and overlapping ranges. */
    public synchronized void register(String deviceName, long base, long length, BusDevice device) {
        if (length <= 0) {
            throw new BusException(name + ": device " + deviceName + " has an empty range at 0x" + Long.toHexString(base));
        }
        long end = base + length;
        if (base < 0 || end < base) {
            throw new BusException(name + ": device " + deviceName + " range wraps around the address space");
        }
        Table t = table;
        int n = t.starts.length;
        int pos = 0;
        while (pos < n && t.starts[pos] < base) {
            pos++;
        }
        if (pos > 0 && t.ends[pos - 1] > base) {
            throw overlap(deviceName, base, end, t, pos - 1);
        }
        if (pos < n && t.starts[pos] < end) {
            throw overlap(deviceName, base, end, t, pos);
        }
        long[] s = new long[n + 1];
        long[] e = new long[n + 1];
        BusDevice[] d = new BusDevice[n + 1];
        String[] nm = new String[n + 1];
        System.arraycopy(t.starts, 0, s, 0, pos);
        System.arraycopy(t.ends, 0, e, 0, pos);
        System.arraycopy(t.devices, 0, d, 0, pos);
        System.arraycopy(t.names, 0, nm, 0, pos);
        s[pos] = base;
        e[pos] = end;
        d[pos] = device;
        nm[pos] = deviceName;
        System.arraycopy(t.starts, pos, s, pos + 1, n - pos);
        System.arraycopy(t.ends, pos, e, pos + 1, n - pos);
        System.arraycopy(t.devices, pos, d, pos + 1, n - pos);
        System.arraycopy(t.names, pos, nm, pos + 1, n - pos);
        table = new Table(s, e, d, nm);
    }

    private BusException overlap(String dev, long base, long end, Table t, int i) {
        return new BusException(String.format("%s: device %s [0x%x, 0x%x) overlaps %s [0x%x, 0x%x)",
                name, dev, base, end, t.names[i], t.starts[i], t.ends[i]));
    }

    private static int find(Table t, long addr) {
        long[] s = t.starts;
        int lo = 0;
        int hi = s.length - 1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (s[mid] <= addr) {
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        return hi >= 0 && addr < t.ends[hi] ? hi : -1;
    }

    public long read(int vcpu, long addr, int size) {
        Table t = table;
        int i = find(t, addr);
        if (i < 0) {
            unclaimed.incrementAndGet();
            return size >= 8 ? -1L : (1L << (size * 8)) - 1;
        }
        return t.devices[i].read(vcpu, addr - t.starts[i], size);
    }

    public void write(int vcpu, long addr, int size, long value) {
        Table t = table;
        int i = find(t, addr);
        if (i < 0) {
            unclaimed.incrementAndGet();
            return;
        }
        t.devices[i].write(vcpu, addr - t.starts[i], size, value);
    }

    /** The device name at an address, or null (for diagnostics, not the hot path). */
    public String deviceAt(long addr) {
        Table t = table;
        int i = find(t, addr);
        return i < 0 ? null : t.names[i];
    }

    /** Accesses that hit no device so far. */
    public long unclaimedAccesses() {
        return unclaimed.get();
    }

    public String name() { return name; }
}
