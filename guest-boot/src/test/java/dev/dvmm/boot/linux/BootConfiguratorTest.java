package dev.dvmm.boot.linux;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dvmm.boot.BootException;
import dev.dvmm.boot.Layout;
import dev.dvmm.boot.LinuxBoot;
import dev.dvmm.boot.TestMemory;
import dev.dvmm.boot.kernel.KernelFile;
import dev.dvmm.boot.kernel.SetupHeader;
import dev.dvmm.boot.kernel.TestImages;
import dev.dvmm.boot.memory.GuestPhysicalMemory;
import dev.dvmm.boot.memory.SegmentGuestMemory;
import dev.dvmm.boot.smp.SmpEnumeration;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class BootConfiguratorTest {
    private static final long RAM = 128 * TestMemory.MIB;

    private static byte[] initramfs(int size) {
        byte[] b = new byte[size];
        new Random(size).nextBytes(b);
        return b;
    }

    private static LinuxBoot.Prepared prepare(GuestPhysicalMemory memory, byte[] kernel, byte[] initrd,
                                              KernelCommandLine cmdline, SmpEnumeration smp, PageTables.PageSize pages) {
        LinuxBoot boot = new LinuxBoot(memory).kernel(KernelFile.of("kernel", kernel)).cmdline(cmdline)
                .vcpus(2).smp(smp).pageSize(pages);
        if (initrd != null) {
            boot.initramfs(KernelFile.of("initramfs", initrd));
        }
        return boot.prepare();
    }

    @Test
    void zeroPageForABzImage() {
        TestImages.BzImage spec = new TestImages.BzImage();
        byte[] image = spec.build();
        byte[] initrd = initramfs(300_000);
        KernelCommandLine cmdline = new KernelCommandLine().add("console", "ttyS0").add("panic", -1);
        SegmentGuestMemory m = TestMemory.sparse(RAM);
        LinuxBoot.Prepared p = prepare(m, image, initrd, cmdline, SmpEnumeration.BOTH, PageTables.PageSize.TWO_MIB);
        long zp = Layout.ZERO_PAGE;

        assertEquals((short) 0xaa55, m.getShort(zp + SetupHeader.BOOT_FLAG));
        assertEquals((int) SetupHeader.HEADER_MAGIC, m.getInt(zp + SetupHeader.HEADER));
        assertEquals((short) 0x020f, m.getShort(zp + SetupHeader.VERSION));
        assertEquals(image[0x1f1], m.getByte(zp + 0x1f1), "setup_sects copied");
        assertEquals(spec.initSize, m.getInt(zp + SetupHeader.INIT_SIZE), "init_size copied");
        assertEquals(spec.prefAddress, m.getLong(zp + SetupHeader.PREF_ADDRESS), "pref_address copied");
        assertEquals((byte) 0xff, m.getByte(zp + SetupHeader.TYPE_OF_LOADER));
        assertEquals((byte) (SetupHeader.LOADED_HIGH | SetupHeader.CAN_USE_HEAP), m.getByte(zp + SetupHeader.LOADFLAGS));
        assertEquals(0, m.getByte(zp + ZeroPage.SENTINEL));
        assertEquals(0, m.getByte(zp + spec.headerEnd), "nothing written past the header's end");

        assertEquals((int) Layout.CMDLINE, m.getInt(zp + SetupHeader.CMD_LINE_PTR));
        assertEquals(0, m.getInt(zp + ZeroPage.EXT_CMD_LINE_PTR));
        String line = cmdline.toString();
        assertArrayEquals((line + "\0").getBytes(StandardCharsets.US_ASCII), m.read(Layout.CMDLINE, line.length() + 1));

        long initrdAt = Integer.toUnsignedLong(m.getInt(zp + SetupHeader.RAMDISK_IMAGE))
                | (long) m.getInt(zp + ZeroPage.EXT_RAMDISK_IMAGE) << 32;
        assertEquals(p.initrd().orElseThrow().address(), initrdAt);
        assertEquals(initrd.length, m.getInt(zp + SetupHeader.RAMDISK_SIZE));
        assertEquals(0, m.getInt(zp + ZeroPage.EXT_RAMDISK_SIZE));
        assertEquals(0, initrdAt % Layout.PAGE_SIZE);
        assertTrue(initrdAt >= p.kernel().footprintEnd(), "initrd above the kernel's footprint");
        assertTrue(initrdAt + initrd.length <= RAM);
        assertTrue(initrdAt + initrd.length > RAM - Layout.PAGE_SIZE, "initrd at the top of RAM");
        assertArrayEquals(initrd, m.read(initrdAt, initrd.length));

        assertEquals(p.firmware().rsdp().getAsLong(), m.getLong(zp + ZeroPage.ACPI_RSDP_ADDR));

        List<E820Map.Entry> expected = E820Map.forRam(RAM).entries();
        assertEquals(expected.size(), m.getByte(zp + ZeroPage.E820_ENTRIES));
        for (int i = 0; i < expected.size(); i++) {
            long at = zp + ZeroPage.E820_TABLE + i * 20L;
            assertEquals(expected.get(i), new E820Map.Entry(m.getLong(at), m.getLong(at + 8), m.getInt(at + 16)));
        }
        E820MapTest.assertOrderedAndDisjoint(expected);
    }

    @Test
    void initrdStaysBelowInitrdAddrMax() {
        TestImages.BzImage spec = new TestImages.BzImage();
        spec.initrdAddrMax = 0x37ff_ffff;
        SegmentGuestMemory m = TestMemory.sparse(1L << 30);
        LinuxBoot.Prepared p = prepare(m, spec.build(), initramfs(10_000), new KernelCommandLine(),
                SmpEnumeration.MP_TABLE, PageTables.PageSize.TWO_MIB);
        long at = p.initrd().orElseThrow().address();
        assertTrue(at + 10_000 - 1 <= 0x37ff_ffff);
        assertTrue(at >= 0x37ff_ffff - 10_000 - Layout.PAGE_SIZE);
        assertEquals(0, m.getLong(Layout.ZERO_PAGE + ZeroPage.ACPI_RSDP_ADDR), "no RSDP without ACPI tables");
    }

    @Test
    void initrdLargerThanTheFreeSpaceDoesNotFit() {
        byte[] kernel = new TestImages.BzImage().build(); // footprint ends at 20 MiB
        BootException e = assertThrows(BootException.class, () -> prepare(TestMemory.sparse(32 * TestMemory.MIB),
                kernel, initramfs(13 << 20), new KernelCommandLine(), SmpEnumeration.BOTH, PageTables.PageSize.TWO_MIB));
        assertEquals(BootException.Kind.DOES_NOT_FIT, e.kind());
        assertTrue(e.getMessage().startsWith("initramfs:"), e.getMessage());
        // 12 MiB minus the page alignment slack still fits.
        prepare(TestMemory.sparse(32 * TestMemory.MIB), kernel, initramfs((12 << 20) - 4096), new KernelCommandLine(),
                SmpEnumeration.BOTH, PageTables.PageSize.TWO_MIB);
    }

    @Test
    void commandLineLongerThanTheKernelTakesIsRefused() {
        TestImages.BzImage spec = new TestImages.BzImage();
        spec.cmdlineSize = 20;
        KernelCommandLine line = new KernelCommandLine().add("console", "ttyS0").add("loglevel", 8).add("x");
        BootException e = assertThrows(BootException.class, () -> prepare(TestMemory.sparse(RAM), spec.build(), null,
                line, SmpEnumeration.BOTH, PageTables.PageSize.TWO_MIB));
        assertEquals(BootException.Kind.DOES_NOT_FIT, e.kind());
        assertTrue(e.getMessage().startsWith("kernel:"), e.getMessage());
    }

    @Test
    void zeroPageForAnElfKernel() {
        TestImages.Elf elf = new TestImages.Elf();
        SegmentGuestMemory m = TestMemory.sparse(RAM);
        LinuxBoot.Prepared p = prepare(m, elf.build(), null, new KernelCommandLine().add("quiet"),
                SmpEnumeration.ACPI, PageTables.PageSize.ONE_GIB);
        long zp = Layout.ZERO_PAGE;
        assertEquals((short) 0xaa55, m.getShort(zp + SetupHeader.BOOT_FLAG));
        assertEquals((int) SetupHeader.HEADER_MAGIC, m.getInt(zp + SetupHeader.HEADER));
        assertEquals((byte) 0xff, m.getByte(zp + SetupHeader.TYPE_OF_LOADER));
        assertEquals((int) Layout.CMDLINE, m.getInt(zp + SetupHeader.CMD_LINE_PTR));
        assertEquals(0, m.getInt(zp + SetupHeader.RAMDISK_IMAGE));
        assertEquals(0x100_0000, p.state().rip());
        assertFalse(p.kernel().pvhEntry().isPresent());
    }

    @Test
    void bootStateEntersTheKernelInLongMode() {
        TestImages.BzImage spec = new TestImages.BzImage();
        SegmentGuestMemory m = TestMemory.sparse(RAM);
        X86BootState s = prepare(m, spec.build(), null, new KernelCommandLine(), SmpEnumeration.BOTH,
                PageTables.PageSize.TWO_MIB).state();
        assertEquals(spec.prefAddress + 0x200, s.rip());
        assertEquals(Layout.ZERO_PAGE, s.rsi());
        assertEquals(Layout.PML4, s.cr3());
        assertTrue((s.cr0() & 1) != 0 && (s.cr0() & (1L << 31)) != 0, "protection and paging on");
        assertTrue((s.cr4() & (1 << 5)) != 0, "PAE on");
        assertEquals(0x500, s.efer() & 0x500, "LME and LMA");
        assertEquals(0, s.rflags() & (1 << 9), "interrupts off");
        assertEquals(Layout.GDT, s.gdtBase());
        assertEquals(Gdt.ENTRIES * 8 - 1, s.gdtLimit());
        assertEquals(Gdt.BOOT_CS, s.cs().selector());
        for (Segment data : List.of(s.ds(), s.es(), s.ss(), s.fs(), s.gs())) {
            assertEquals(Gdt.BOOT_DS, data.selector());
        }
        assertTrue(s.ldt().unusable());
        assertEquals(Gdt.TSS_SELECTOR, s.tr().selector());
    }
}
