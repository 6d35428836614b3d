package dev.dvmm.boot.linux;

import dev.dvmm.boot.Layout;
import dev.dvmm.boot.memory.GuestPhysicalMemory;

/**
 * Identity page tables for the first {@link Layout#IDENTITY_MAP_LIMIT} bytes, which the 64-bit
 * boot protocol needs to cover the kernel, zero page, command line and initramfs. The kernel
 * replaces them with its own early in startup.
 */
public final class PageTables {
    private PageTables() {}

    /** Page size of the identity map's leaf entries. */
    public enum PageSize {
        /** Works on every x86-64 CPU. */
        TWO_MIB(21),
        /** Needs CPUID pdpe1gb in the guest; one table fewer per GiB. */
        ONE_GIB(30);

        public final int shift;

        PageSize(int shift) {
            this.shift = shift;
        }
    }

    static final long PRESENT = 1;
    static final long WRITABLE = 1 << 1;
    static final long LARGE = 1 << 7;
    static final int ENTRIES_PER_TABLE = 512;

    /** Writes the tables and returns the value for CR3 (the PML4's address). */
    public static long writeIdentityMap(GuestPhysicalMemory memory, PageSize pageSize) {
        memory.zero(Layout.PML4, Layout.PAGE_SIZE);
        memory.zero(Layout.PDPT, Layout.PAGE_SIZE);
        memory.zero(Layout.PD, Layout.PD_COUNT * Layout.PAGE_SIZE);
        memory.putLong(Layout.PML4, Layout.PDPT | PRESENT | WRITABLE);
        int gibs = (int) (Layout.IDENTITY_MAP_LIMIT >>> 30);
        for (int gib = 0; gib < gibs; gib++) {
            long pdptEntry = Layout.PDPT + gib * 8L;
            if (pageSize == PageSize.ONE_GIB) {
                memory.putLong(pdptEntry, ((long) gib << 30) | PRESENT | WRITABLE | LARGE);
                continue;
            }
            long pd = Layout.PD + gib * Layout.PAGE_SIZE;
            memory.putLong(pdptEntry, pd | PRESENT | WRITABLE);
            for (int i = 0; i < ENTRIES_PER_TABLE; i++) {
                long address = ((long) gib << 30) | ((long) i << 21);
                memory.putLong(pd + i * 8L, address | PRESENT | WRITABLE | LARGE);
            }
        }
        return Layout.PML4;
    }
}
