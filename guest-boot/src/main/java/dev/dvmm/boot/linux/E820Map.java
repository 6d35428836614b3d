package dev.dvmm.boot.linux;

import dev.dvmm.boot.BootException;
import dev.dvmm.boot.Layout;
import java.util.ArrayList;
import java.util.List;

/**
 * The BIOS memory map the kernel reads from the zero page: RAM with the PC's conventional holes,
 * as {@link Layout} lays it out. Entries are sorted and never overlap.
 */
public final class E820Map {
    public static final int RAM = 1;
    public static final int RESERVED = 2;
    public static final int ACPI = 3;
    public static final int NVS = 4;
    /** boot_params has room for 128 entries. */
    public static final int MAX_ENTRIES = 128;
    /** Smallest RAM dvmm boots: something must lie above 1 MiB. */
    public static final long MIN_RAM = 2 * Layout.HIGH_MEMORY;

    /** One range of guest physical addresses with its e820 type. */
    public record Entry(long address, long size, int type) {
        public long end() {
            return address + size;
        }
    }

    private final List<Entry> entries;

    private E820Map(List<Entry> entries) {
        this.entries = List.copyOf(entries);
    }

    /**
     * The map for a guest with {@code ramSize} bytes: RAM below the EBDA, the EBDA and the legacy
     * hole reserved (the ACPI and MP tables live in that hole), RAM from 1 MiB to the MMIO gap,
     * and the rest of RAM from 4 GiB.
     */
    public static E820Map forRam(long ramSize) {
        if (ramSize < MIN_RAM) {
            throw new BootException(BootException.Kind.DOES_NOT_FIT, String.format(
                    "guest memory of %d bytes is too small: at least %d MiB are needed.", ramSize, MIN_RAM >> 20));
        }
        List<Entry> list = new ArrayList<>();
        list.add(new Entry(0, Layout.EBDA_START, RAM));
        list.add(new Entry(Layout.EBDA_START, Layout.LEGACY_HOLE_START - Layout.EBDA_START, RESERVED));
        list.add(new Entry(Layout.LEGACY_HOLE_START, Layout.HIGH_MEMORY - Layout.LEGACY_HOLE_START, RESERVED));
        list.add(new Entry(Layout.HIGH_MEMORY, Layout.lowRamEnd(ramSize) - Layout.HIGH_MEMORY, RAM));
        long high = Layout.highRamSize(ramSize);
        if (high > 0) {
            list.add(new Entry(Layout.MMIO_GAP_END, high, RAM));
        }
        return new E820Map(list);
    }

    public List<Entry> entries() {
        return entries;
    }

    /** Total bytes of type {@link #RAM}. */
    public long ramBytes() {
        long total = 0;
        for (Entry e : entries) {
            if (e.type == RAM) {
                total += e.size;
            }
        }
        return total;
    }
}
