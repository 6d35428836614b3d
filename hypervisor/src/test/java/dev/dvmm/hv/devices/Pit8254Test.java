package dev.dvmm.hv.devices;

import dev.dvmm.hv.bus.BusDevice;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class Pit8254Test {
    private static final long F = 1_193_182L;

    private final FakeTime time = new FakeTime();
    private final RecordingLine irq0 = new RecordingLine();
    private final Pit8254 pit = new Pit8254(time, irq0);
    private final BusDevice portB = pit.portB();

    /** Nanoseconds until 'ticks' input clocks have passed (independent of the device's arithmetic). */
    private static long ns(long ticks) {
        return (ticks * 1_000_000_000L + F - 1) / F;
    }

    private void out(int port, int v) {
        if (port == 0x61) {
            portB.write(0, 0, 1, v);
        } else {
            pit.write(0, port - 0x40, 1, v);
        }
    }

    private int in(int port) {
        return port == 0x61 ? (int) portB.read(0, 0, 1) : (int) pit.read(0, port - 0x40, 1);
    }

    private void program(int channel, int mode, int count) {
        out(0x43, channel << 6 | 0x30 | mode << 1);
        out(0x40 + channel, count & 0xff);
        out(0x40 + channel, (count >> 8) & 0xff);
    }

    private int latchAndRead(int channel) {
        out(0x43, channel << 6);
        int lo = in(0x40 + channel);
        return lo | in(0x40 + channel) << 8;
    }

    @Test
    void mode2InterruptsOncePerPeriodAndCountsDown() {
        program(0, 2, 1000);
        assertEquals(1000, latchAndRead(0));
        time.advance(ns(300));
        assertEquals(700, latchAndRead(0));
        assertEquals(0, irq0.rises);
        time.advance(ns(1000) - ns(300));
        assertEquals(1, irq0.rises, "one interrupt at the end of the first period");
        time.advance(ns(5000) - ns(1000));
        assertEquals(5, irq0.rises);
        assertEquals(1000, latchAndRead(0), "reloaded at the period boundary");
    }

    @Test
    void mode3SquareWaveOnChannel2IsVisibleInPortB() {
        out(0x61, 0x01); // gate 2 on
        program(2, 3, 100);
        assertEquals(0x20, in(0x61) & 0x20, "first half high");
        time.advance(ns(49));
        assertEquals(0x20, in(0x61) & 0x20);
        time.advance(ns(50) - ns(49));
        assertEquals(0, in(0x61) & 0x20, "second half low");
        time.advance(ns(100) - ns(50));
        assertEquals(0x20, in(0x61) & 0x20, "high again at the next period");
        assertEquals(100, latchAndRead(2));
        time.advance(ns(110) - ns(100));
        assertEquals(80, latchAndRead(2), "mode 3 counts down by two");
    }

    @Test
    void mode3OnChannel0InterruptsEachPeriod() {
        program(0, 3, 2000);
        time.advance(ns(2000) * 3 + 10);
        assertEquals(3, irq0.rises);
    }

    @Test
    void linuxTscCalibrationSequenceSeesOut2RiseAtTerminalCount() {
        // arch/x86/kernel/tsc.c pit_calibrate_tsc(): gate high, speaker off, channel 2 mode 0, poll bit 5.
        out(0x61, (in(0x61) & ~0x02) | 0x01);
        out(0x43, 0xb0);
        int latch = (int) (F / 20); // 50 ms
        out(0x42, latch & 0xff);
        out(0x42, latch >> 8);
        assertEquals(0, in(0x61) & 0x20);
        time.advance(ns(latch - 1));
        assertEquals(0, in(0x61) & 0x20, "one tick before terminal count");
        time.advance(ns(latch) - ns(latch - 1));
        assertEquals(0x20, in(0x61) & 0x20, "OUT2 high at terminal count");
        assertEquals(0x01, in(0x61) & 0x03, "port B keeps gate and speaker bits");
    }

    @Test
    void lowGateSuspendsMode0Counting() {
        out(0x61, 0x01);
        program(2, 0, 1000);
        time.advance(ns(400));
        out(0x61, 0x00);
        time.advance(ns(10_000));
        assertEquals(600, latchAndRead(2), "frozen while the gate is low");
        out(0x61, 0x01);
        time.advance(ns(599));
        assertFalse(pit.output(2));
        time.advance(ns(600) - ns(599));
        assertTrue(pit.output(2));
    }

    @Test
    void latchedValueStaysUntilReadAndStatusReadBackReportsMode() {
        program(0, 2, 500);
        time.advance(ns(100));
        out(0x43, 0x00); // latch channel 0
        time.advance(ns(50));
        out(0x43, 0x00); // a second latch before the read is ignored
        int lo = in(0x40);
        int hi = in(0x40);
        assertEquals(400, lo | hi << 8);
        // Read-back: latch status and count of channel 0 (bits 5 and 4 clear = latch both).
        out(0x43, 0xc0 | 0x02);
        int status = in(0x40);
        assertEquals(0x80, status & 0x80, "OUT high in mode 2 between pulses");
        assertEquals(0x00, status & 0x40, "count loaded");
        assertEquals(0x30 | 2 << 1, status & 0x3f, "RW word, mode 2, binary");
        lo = in(0x40);
        hi = in(0x40);
        assertEquals(350, lo | hi << 8);
    }

    @Test
    void lowByteOnlyAccessAndZeroMeans65536() {
        out(0x43, 0x00 | 0x10 | 2 << 1); // channel 0, LSB only, mode 2
        out(0x40, 50);
        time.advance(ns(20));
        assertEquals(30, in(0x40));
        program(0, 2, 0);
        time.advance(ns(1));
        assertEquals(65535, latchAndRead(0));
        time.advance(ns(65536) - ns(1));
        assertEquals(1, irq0.rises, "period of 65536 ticks");
    }

    @Test
    void bcdCountsInDecimal() {
        out(0x43, 0x30 | 2 << 1 | 1); // channel 0, word, mode 2, BCD
        out(0x40, 0x00);
        out(0x40, 0x10); // 1000 decimal
        time.advance(ns(1));
        assertEquals(0x0999, latchAndRead(0));
        time.advance(ns(1000) - ns(1));
        assertEquals(1, irq0.rises);
    }

    @Test
    void mode0InterruptsOnceAtTerminalCount() {
        program(0, 0, 300);
        time.advance(ns(299));
        assertEquals(0, irq0.rises);
        time.advance(ns(10_000));
        assertEquals(1, irq0.rises);
        assertEquals(0, time.armedTimers(), "no host timer left running");
    }

    @Test
    void aLateHostTimerMergesMissedPeriodsIntoOneInterrupt() {
        program(0, 2, 1000);
        time.jump(ns(10_500));
        time.fireDue();
        assertEquals(1, irq0.rises);
        time.advance(ns(11_000) - ns(10_500));
        assertEquals(2, irq0.rises, "the next period is still on the original grid");
    }

    @Test
    void reprogrammingTheModeStopsTheChannel0Timer() {
        program(0, 2, 1000);
        out(0x43, 0x30); // new control word, no count yet
        time.advance(ns(100_000));
        assertEquals(0, irq0.rises);
    }

    @Test
    void refreshBitToggles() {
        int first = in(0x61) & 0x10;
        time.advance(15_085);
        assertEquals(first ^ 0x10, in(0x61) & 0x10);
    }

    @Test
    void tickConversionSurvivesLongUptimes() {
        long tenYears = 10L * 365 * 86400 * 1_000_000_000L;
        long ticks = Pit8254.ticksIn(tenYears);
        assertEquals(10L * 365 * 86400 * F, ticks);
        assertTrue(Pit8254.ticksIn(Pit8254.nanosFor(ticks + 7)) >= ticks + 7);
        assertTrue(Pit8254.ticksIn(Pit8254.nanosFor(ticks + 7) - 1) < ticks + 7);
    }
}
