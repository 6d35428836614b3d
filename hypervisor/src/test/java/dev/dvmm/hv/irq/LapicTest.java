package dev.dvmm.hv.irq;

import dev.dvmm.hv.devices.FakeTime;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LapicTest {
    private static final int ID = 0x020, VER = 0x030, TPR = 0x080, PPR = 0x0a0, EOI = 0x0b0, LDR = 0x0d0,
            DFR = 0x0e0, SVR = 0x0f0, ISR = 0x100, TMR = 0x180, IRR = 0x200, ESR = 0x280, ICR_LO = 0x300,
            ICR_HI = 0x310, LVT_TIMER = 0x320, LVT_LINT0 = 0x350, LVT_LINT1 = 0x360, LVT_ERROR = 0x370,
            TIMER_INIT = 0x380, TIMER_CUR = 0x390, TIMER_DIV = 0x3e0;

    private final FakeTime time = new FakeTime();
    private final Lapic[] apics = new Lapic[4];
    private final int[] wakes = new int[4];
    private final List<Integer> eois = new ArrayList<>();

    @BeforeEach
    void setUp() {
        for (int i = 0; i < 4; i++) {
            apics[i] = new Lapic(i, i, i == 0, time);
            final int n = i;
            apics[i].setWakeHook(() -> wakes[n]++);
            apics[i].setEoiListener(eois::add);
        }
        LocalIpiRouter.connect(apics);
        for (Lapic a : apics) {
            w(a, SVR, 0x1ff); // software enable, spurious vector 0xff
        }
    }

    private static void w(Lapic a, int reg, int v) {
        a.write(a.index(), reg, 4, Integer.toUnsignedLong(v));
    }

    private static int r(Lapic a, int reg) {
        return (int) a.read(a.index(), reg, 4);
    }

    private static boolean irr(Lapic a, int vector) {
        return (r(a, IRR + (vector >> 5) * 0x10) & (1 << (vector & 31))) != 0;
    }

    private static boolean isr(Lapic a, int vector) {
        return (r(a, ISR + (vector >> 5) * 0x10) & (1 << (vector & 31))) != 0;
    }

    /** Sends an IPI from 'from' and returns which APICs got the vector in IRR, as a bitmask. */
    private int ipi(int from, int icrHigh, int icrLow) {
        w(apics[from], ICR_HI, icrHigh);
        w(apics[from], ICR_LO, icrLow);
        int got = 0;
        for (int i = 0; i < 4; i++) {
            if (irr(apics[i], icrLow & 0xff)) {
                got |= 1 << i;
            }
        }
        return got;
    }

    @Test
    void identityRegisters() {
        assertEquals(0x0005_0014, r(apics[2], VER), "version 0x14, max LVT 5");
        assertEquals(2 << 24, r(apics[2], ID));
        assertEquals(0xffff_ffff, r(apics[2], DFR), "flat model after reset");
        assertEquals(0x14, apics[0].read(0, VER, 1), "byte reads see the low byte");
        assertEquals(0x05, apics[0].read(0, VER + 2, 1), "and the byte at its offset");
        assertEquals(0, apics[2].read(2, 0x800 + ID, 4), "offsets above 0x3F0 do not alias registers");
    }

    @Test
    void physicalDestinationReachesOnlyThatApic() {
        assertEquals(0b0100, ipi(0, 2 << 24, 0x40));
        assertEquals(1, wakes[2]);
        assertEquals(0, wakes[1] + wakes[3]);
        assertEquals(0, r(apics[0], ICR_LO) & (1 << 12), "delivery status idle");
    }

    @Test
    void physicalBroadcastReachesEveryone() {
        assertEquals(0b1111, ipi(1, 0xff << 24, 0x41));
    }

    @Test
    void logicalFlatMatchesTheLdrBitmask() {
        for (int i = 0; i < 4; i++) {
            w(apics[i], LDR, (1 << i) << 24);
        }
        assertEquals(0b0101, ipi(3, 0x05 << 24, 1 << 11 | 0x42));
        assertEquals(0b1000, ipi(0, 0x08 << 24, 1 << 11 | 0x43));
    }

    @Test
    void logicalClusterMatchesClusterAndMember() {
        int[] ldr = {0x01, 0x02, 0x11, 0x12};
        for (int i = 0; i < 4; i++) {
            w(apics[i], DFR, 0x0fff_ffff);
            w(apics[i], LDR, ldr[i] << 24);
        }
        assertEquals(0x0, r(apics[0], DFR) >>> 28);
        assertEquals(0b0100, ipi(0, 0x11 << 24, 1 << 11 | 0x44));
        assertEquals(0b1100, ipi(0, 0x13 << 24, 1 << 11 | 0x45));
        assertEquals(0b0101, ipi(3, 0xf1 << 24, 1 << 11 | 0x46), "cluster 0xF addresses every cluster");
        assertEquals(0b0000, ipi(3, 0x21 << 24, 1 << 11 | 0x47), "no such cluster");
    }

    @Test
    void shorthandsOverrideTheDestination() {
        assertEquals(0b0010, ipi(1, 3 << 24, 1 << 18 | 0x50), "self");
        assertEquals(0b1111, ipi(1, 3 << 24, 2 << 18 | 0x51), "all including self");
        assertEquals(0b1101, ipi(1, 3 << 24, 3 << 18 | 0x52), "all excluding self");
    }

    @Test
    void tprMasksLowerPriorityClasses() {
        Lapic a = apics[0];
        w(a, TPR, 0x50);
        a.acceptFixed(0x45, false);
        assertFalse(a.hasInjectableInterrupt(), "class 4 is not above TPR class 5");
        assertEquals(-1, a.acceptInterrupt());
        a.acceptFixed(0x61, false);
        assertTrue(a.hasInjectableInterrupt());
        assertEquals(0x61, a.acceptInterrupt());
        assertEquals(0x60, r(a, PPR), "ISR class 6 above TPR");
        w(a, EOI, 0);
        assertEquals(0x50, r(a, PPR));
        w(a, TPR, 0x00);
        assertEquals(0x45, a.acceptInterrupt());
    }

    @Test
    void nestedInterruptsEndInPriorityOrder() {
        Lapic a = apics[1];
        a.acceptFixed(0x40, false);
        assertEquals(0x40, a.acceptInterrupt());
        a.acceptFixed(0x80, false);
        assertTrue(a.hasInjectableInterrupt(), "a higher class preempts");
        assertEquals(0x80, a.acceptInterrupt());
        a.acceptFixed(0x50, false);
        a.acceptFixed(0x4f, false);
        assertFalse(a.hasInjectableInterrupt(), "0x50 waits while 0x80 is in service");
        assertTrue(isr(a, 0x40) && isr(a, 0x80));
        w(a, EOI, 0);
        assertFalse(isr(a, 0x80), "EOI ends the highest in-service vector");
        assertTrue(isr(a, 0x40));
        assertEquals(0x50, a.acceptInterrupt());
        assertFalse(a.hasInjectableInterrupt(), "0x4f is in the class of 0x40, which is in service");
        w(a, EOI, 0);
        w(a, EOI, 0);
        assertFalse(isr(a, 0x40));
        assertEquals(0x4f, a.acceptInterrupt());
        assertEquals(4, a.acceptedInterrupts());
    }

    @Test
    void eoiOfALevelTriggeredVectorIsBroadcast() {
        Lapic a = apics[2];
        a.acceptFixed(0x30, true);
        assertTrue((r(a, TMR + 0x10) & 1 << 16) != 0, "TMR bit set for the level vector 0x30");
        assertEquals(0x30, a.acceptInterrupt());
        a.acceptFixed(0x41, false);
        assertEquals(0x41, a.acceptInterrupt());
        w(a, EOI, 0); // ends 0x41, edge
        assertEquals(List.of(), eois);
        w(a, EOI, 0); // ends 0x30, level
        assertEquals(List.of(0x30), eois);
    }

    @Test
    void errorStatusIsWriteThenRead() {
        Lapic a = apics[0];
        w(a, ICR_HI, 1 << 24);
        w(a, ICR_LO, 0x05); // illegal vector: not sent
        assertFalse(irr(apics[1], 0x05));
        assertEquals(0, r(a, ESR), "errors show only after a write to ESR");
        w(a, ESR, 0);
        assertEquals(0x20, r(a, ESR), "send illegal vector");
        w(a, ESR, 0);
        assertEquals(0, r(a, ESR));
        apics[3].acceptFixed(0x07, false);
        w(apics[3], LVT_ERROR, 0xfe);
        apics[3].acceptFixed(0x08, false);
        w(apics[3], ESR, 0);
        assertEquals(0x40, r(apics[3], ESR), "receive illegal vector");
        assertEquals(0xfe, apics[3].acceptInterrupt(), "the error LVT interrupt");
    }

    @Test
    void oneShotTimerFiresOnceAndCountsDown() {
        Lapic a = apics[0];
        w(a, TIMER_DIV, 0x3); // divide by 16
        w(a, LVT_TIMER, 0xec);
        w(a, TIMER_INIT, 1000);
        time.advance(8000);
        assertEquals(500, r(a, TIMER_CUR));
        assertFalse(irr(a, 0xec));
        time.advance(8000);
        assertTrue(irr(a, 0xec));
        assertEquals(0, r(a, TIMER_CUR));
        assertEquals(0xec, a.acceptInterrupt());
        w(a, EOI, 0);
        time.advance(1_000_000);
        assertFalse(irr(a, 0xec), "one shot");
        assertEquals(1, a.timerFires());
    }

    @Test
    void periodicTimerReloads() {
        Lapic a = apics[1];
        w(a, TIMER_DIV, 0xb); // divide by 1
        w(a, LVT_TIMER, 1 << 17 | 0xed);
        w(a, TIMER_INIT, 10_000);
        time.advance(35_000);
        assertEquals(3, a.timerFires());
        assertEquals(5000, r(a, TIMER_CUR));
        w(a, LVT_TIMER, 1 << 17 | 1 << 16 | 0xed); // masked: counts on, interrupts stop
        assertEquals(0xed, a.acceptInterrupt());
        w(a, EOI, 0);
        time.advance(20_000);
        assertFalse(irr(a, 0xed));
        w(a, TIMER_INIT, 0);
        assertEquals(0, time.armedTimers(), "a stopped timer holds no host timer");
    }

    @Test
    void divideConfigurationEncodings() {
        Lapic a = apics[2];
        int[] config = {0x0, 0x1, 0x2, 0x3, 0x8, 0x9, 0xa, 0xb};
        int[] divisor = {2, 4, 8, 16, 32, 64, 128, 1};
        for (int i = 0; i < config.length; i++) {
            w(a, TIMER_DIV, config[i]);
            w(a, TIMER_INIT, 100_000);
            time.advance(divisor[i] * 10L);
            assertEquals(100_000 - 10, r(a, TIMER_CUR), "divide config 0x" + Integer.toHexString(config[i]));
        }
    }

    @Test
    void initSipiStartsAnApplicationProcessor() {
        Lapic ap = apics[3];
        assertTrue(ap.waitingForSipi(), "APs wait for SIPI from power-on");
        assertFalse(apics[0].waitingForSipi());
        w(ap, TPR, 0x20);
        // Linux's wakeup_secondary_cpu_via_init(): INIT assert, INIT de-assert, then two SIPIs.
        w(apics[0], ICR_HI, 3 << 24);
        w(apics[0], ICR_LO, 1 << 15 | 1 << 14 | 5 << 8);
        assertTrue(ap.pendingInit());
        assertEquals(0, r(ap, TPR), "INIT reset the APIC");
        assertEquals(0xff, r(ap, SVR), "software disabled after INIT");
        assertEquals(3 << 24, r(ap, ID), "the ID survives INIT");
        w(apics[0], ICR_LO, 1 << 15 | 5 << 8);
        assertTrue(ap.takeInit());
        assertFalse(ap.takeInit(), "the de-assert is not a second INIT");
        w(apics[0], ICR_LO, 6 << 8 | 0x9a);
        assertEquals(0x9a, ap.pendingSipiVector());
        w(apics[0], ICR_LO, 6 << 8 | 0x9b);
        assertEquals(0x9a, ap.takeSipi(), "the first SIPI wins");
        assertFalse(ap.waitingForSipi());
        w(apics[0], ICR_LO, 6 << 8 | 0x9c);
        assertEquals(-1, ap.takeSipi(), "a running CPU ignores SIPI");
        assertTrue(wakes[3] >= 2);
    }

    @Test
    void nmiIpiAndLint1Nmi() {
        w(apics[0], ICR_HI, 2 << 24);
        w(apics[0], ICR_LO, 4 << 8);
        assertTrue(apics[2].nmiPending());
        assertTrue(apics[2].takeNmi());
        assertFalse(apics[2].takeNmi());
        w(apics[1], LVT_LINT1, 4 << 8);
        apics[1].setLint(1, true);
        assertTrue(apics[1].takeNmi());
        w(apics[1], LVT_LINT0, 1 << 16 | 0x33);
        apics[1].setLint(0, true);
        assertFalse(apics[1].hasInjectableInterrupt(), "masked LINT0");
    }

    @Test
    void lowestPriorityPicksTheLeastBusyApic() {
        for (int i = 0; i < 4; i++) {
            w(apics[i], LDR, (1 << i) << 24);
            w(apics[i], TPR, 0x40);
        }
        w(apics[2], TPR, 0x10);
        assertEquals(0b0100, ipi(0, 0x0f << 24, 1 << 11 | 1 << 8 | 0x60));
    }

    @Test
    void softwareDisabledApicDropsFixedInterruptsAndKeepsLvtsMasked() {
        Lapic a = apics[1];
        w(a, SVR, 0x0ff);
        a.acceptFixed(0x70, false);
        assertFalse(irr(a, 0x70));
        w(a, LVT_TIMER, 0x20);
        assertEquals(1 << 16, r(a, LVT_TIMER) & (1 << 16), "mask cannot be cleared while disabled");
        a.raiseNmi();
        assertTrue(a.takeNmi(), "NMI still accepted");
    }

    @Test
    void illegalRegisterWriteSetsEsrAndNarrowWritesAreIgnored() {
        Lapic a = apics[0];
        w(a, 0x3f0, 1);
        w(a, ESR, 0);
        assertEquals(0x80, r(a, ESR));
        a.write(0, TPR, 1, 0x30);
        assertEquals(0, r(a, TPR));
    }
}
