package dev.dvmm.hv.irq;

import dev.dvmm.hv.devices.FakeTime;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class LapicPageTest {
    @Test
    void eachVcpuSeesItsOwnLapicAtTheSameOffsets() {
        FakeTime time = new FakeTime();
        Lapic a = new Lapic(0, 0, true, time);
        Lapic b = new Lapic(2, 7, false, time);
        LapicPage page = new LapicPage(new Lapic[] {a, null, b});
        assertEquals(0, page.read(0, 0x20, 4));
        assertEquals(7L << 24, page.read(2, 0x20, 4));
        page.write(2, 0x80, 4, 0x30);
        assertEquals(0x30, b.read(2, 0x80, 4));
        assertEquals(0, a.read(0, 0x80, 4));
        assertEquals(0, page.read(1, 0x20, 4), "a vCPU on another node");
        page.write(9, 0x80, 4, 0x40); // out of range: ignored, no exception
    }
}
