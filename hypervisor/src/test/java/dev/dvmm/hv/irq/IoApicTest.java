package dev.dvmm.hv.irq;

import dev.dvmm.hv.devices.FakeTime;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class IoApicTest {
    private final FakeTime time = new FakeTime();
    private final Lapic[] apics = new Lapic[4];
    private IoApic ioapic;

    @BeforeEach
    void setUp() {
        for (int i = 0; i < 4; i++) {
            apics[i] = new Lapic(i, i, i == 0, time);
            apics[i].write(i, 0xf0, 4, 0x1ff);
        }
        LocalIpiRouter router = LocalIpiRouter.connect(apics);
        ioapic = new IoApic(4, router);
        for (Lapic a : apics) {
            a.setEoiListener(ioapic);
        }
    }

    private long reg(int index) {
        ioapic.write(0, 0x00, 4, index);
        return ioapic.read(0, 0x10, 4);
    }

    private void setReg(int index, long v) {
        ioapic.write(0, 0x00, 4, index);
        ioapic.write(0, 0x10, 4, v);
    }

    private void route(int pin, long entry) {
        setReg(0x11 + 2 * pin, entry >>> 32);
        setReg(0x10 + 2 * pin, entry & 0xffff_ffffL);
    }

    private static long entry(int vector, int destination, boolean logical, boolean level, boolean masked) {
        return (long) destination << 56 | (masked ? 1L << 16 : 0) | (level ? 1L << 15 : 0)
                | (logical ? 1L << 11 : 0) | vector;
    }

    private static boolean irr(Lapic a, int vector) {
        return (a.read(a.index(), 0x200 + (vector >> 5) * 0x10, 4) & (1L << (vector & 31))) != 0;
    }

    @Test
    void registersAfterReset() {
        assertEquals(4L << 24, reg(0x00));
        assertEquals(0x0017_0011L, reg(0x01), "version 0x11, 24 entries");
        assertEquals(4L << 24, reg(0x02));
        for (int pin = 0; pin < IoApic.PINS; pin++) {
            assertEquals(1L << 16, reg(0x10 + 2 * pin), "entry " + pin + " masked");
        }
        route(5, entry(0x35, 2, false, false, false) | 1L << 13);
        assertEquals(0x35 | 1L << 13, reg(0x10 + 10), "polarity is kept");
        assertEquals(2L << 24, reg(0x11 + 10));
        setReg(0x10 + 10, 0x35 | 1L << 12 | 1L << 14);
        assertEquals(0x35, reg(0x10 + 10), "delivery status and remote IRR are read-only");
    }

    @Test
    void edgeTriggeredInputSendsOnRisingEdgesOnly() {
        route(4, entry(0x34, 1, false, false, false));
        ioapic.setIrq(4, true);
        assertTrue(irr(apics[1], 0x34));
        assertFalse(irr(apics[0], 0x34));
        assertEquals(0x34, apics[1].acceptInterrupt());
        ioapic.setIrq(4, true);
        assertFalse(irr(apics[1], 0x34), "no edge, no message");
        ioapic.line(4).pulse(); // line was high: the pulse's falling half ends low
        ioapic.line(4).pulse();
        assertTrue(irr(apics[1], 0x34));
        assertEquals(2, ioapic.deliveries(4));
    }

    @Test
    void edgesOnAMaskedInputAreLost() {
        route(3, entry(0x33, 0, false, false, true));
        ioapic.line(3).pulse();
        route(3, entry(0x33, 0, false, false, false));
        assertFalse(irr(apics[0], 0x33));
    }

    @Test
    void levelTriggeredInputWaitsForEoiAndResendsWhileAsserted() {
        route(9, entry(0x39, 2, false, true, false));
        ioapic.setIrq(9, true);
        assertTrue(irr(apics[2], 0x39));
        assertTrue((reg(0x10 + 18) & 1L << 14) != 0, "remote IRR set");
        assertEquals(0x39, apics[2].acceptInterrupt());
        ioapic.setIrq(9, true);
        assertFalse(irr(apics[2], 0x39), "remote IRR blocks a second message");
        apics[2].write(2, 0xb0, 4, 0); // EOI: still asserted -> sent again
        assertTrue(irr(apics[2], 0x39));
        assertEquals(2, ioapic.deliveries(9));
        assertEquals(0x39, apics[2].acceptInterrupt());
        ioapic.setIrq(9, false); // the device was serviced
        apics[2].write(2, 0xb0, 4, 0);
        assertFalse(irr(apics[2], 0x39));
        assertEquals(0, reg(0x10 + 18) & 1L << 14, "remote IRR cleared by the EOI");
        assertEquals(2, ioapic.deliveries(9));
    }

    @Test
    void unmaskingAnAssertedLevelInputSendsAtOnce() {
        route(11, entry(0x3b, 3, false, true, true));
        ioapic.setIrq(11, true);
        assertFalse(irr(apics[3], 0x3b));
        route(11, entry(0x3b, 3, false, true, false));
        assertTrue(irr(apics[3], 0x3b));
    }

    @Test
    void logicalDestinationsResolveLikeIpis() {
        for (int i = 0; i < 4; i++) {
            apics[i].write(i, 0xd0, 4, (1L << i) << 24);
        }
        route(1, entry(0x21, 0x08, true, false, false));
        ioapic.line(1).pulse();
        assertTrue(irr(apics[3], 0x21));
        assertFalse(irr(apics[0], 0x21) || irr(apics[1], 0x21) || irr(apics[2], 0x21));
    }

    @Test
    void anEoiForAnotherVectorLeavesRemoteIrrAlone() {
        route(10, entry(0x3a, 0, false, true, false));
        ioapic.setIrq(10, true);
        ioapic.eoi(0x3b);
        assertTrue((reg(0x10 + 20) & 1L << 14) != 0);
    }
}
