package dev.dvmm.hv.devices;

import java.time.Instant;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CmosRtcTest {
    private static final long MIB = 1 << 20;
    private static final long GIB = 1L << 30;

    private final FakeTime time = new FakeTime();
    private final RecordingLine irq = new RecordingLine();
    // A Thursday, leap day, one second before midnight.
    private final FollowingClock wall = new FollowingClock(time, Instant.parse("2024-02-29T23:59:58Z"));
    private final CmosRtc rtc = new CmosRtc(wall, time, irq, 3 * GIB, 5 * GIB);

    private int read(int index) {
        rtc.write(0, 0, 1, index);
        return (int) rtc.read(0, 1, 1);
    }

    private void write(int index, int v) {
        rtc.write(0, 0, 1, index);
        rtc.write(0, 1, 1, v);
    }

    @Test
    void readsTheInjectedTimeInBcd() {
        assertEquals(0x58, read(0x00));
        assertEquals(0x59, read(0x02));
        assertEquals(0x23, read(0x04));
        assertEquals(5, read(0x06), "Thursday, Sunday = 1");
        assertEquals(0x29, read(0x07));
        assertEquals(0x02, read(0x08));
        assertEquals(0x24, read(0x09));
        assertEquals(0x20, read(0x32));
        assertEquals(0x80, read(0x0d), "valid RAM and time");
    }

    @Test
    void binaryAnd12HourModesFollowRegisterB() {
        write(0x0b, 0x02 | 0x04);
        assertEquals(58, read(0x00));
        assertEquals(23, read(0x04));
        assertEquals(24, read(0x09));
        write(0x0b, 0x00); // BCD, 12-hour
        assertEquals(0x80 | 0x11, read(0x04), "11 PM");
    }

    @Test
    void timeRollsOverWithTheClock() {
        time.advance(2_000_000_000L);
        assertEquals(0x00, read(0x00));
        assertEquals(0x00, read(0x04));
        assertEquals(0x01, read(0x07));
        assertEquals(0x03, read(0x08), "March after a leap-day");
        assertEquals(6, read(0x06), "Friday");
    }

    @Test
    void guestSetsTheClockWithTheSetBit() {
        write(0x0b, 0x82); // SET, 24-hour, BCD
        write(0x09, 0x99);
        write(0x32, 0x19);
        write(0x08, 0x12);
        write(0x07, 0x31);
        write(0x04, 0x23);
        write(0x02, 0x59);
        write(0x00, 0x59);
        time.advance(5_000_000_000L);
        assertEquals(0x59, read(0x00), "frozen while SET");
        write(0x0b, 0x02);
        assertEquals(0x59, read(0x00));
        assertEquals(0x99, read(0x09));
        time.advance(1_000_000_000L);
        assertEquals(0x00, read(0x00));
        assertEquals(0x00, read(0x09));
        assertEquals(0x20, read(0x32));
        assertEquals(0x01, read(0x08));
        assertEquals(7, read(0x06), "2000-01-01 was a Saturday");
    }

    @Test
    void anImpossibleDateIsIgnored() {
        write(0x0b, 0x82);
        write(0x08, 0x13);
        write(0x0b, 0x02);
        assertEquals(0x02, read(0x08));
        assertEquals(0x58, read(0x00));
    }

    @Test
    void memorySizeBytes() {
        assertEquals(0x80, read(0x15));
        assertEquals(0x02, read(0x16), "640 KiB base memory");
        assertEquals(0xff, read(0x17));
        assertEquals(0xff, read(0x18), "extended memory capped at 65535 KiB");
        assertEquals(0xff, read(0x30));
        int above16m = read(0x34) | read(0x35) << 8;
        assertEquals((3 * GIB - 16 * MIB) / (64 * 1024), above16m);
        int above4g = read(0x5b) | read(0x5c) << 8 | read(0x5d) << 16;
        assertEquals(5 * GIB / (64 * 1024), above4g);
    }

    @Test
    void smallMachinesHaveNothingAbove16M() {
        CmosRtc small = new CmosRtc(wall, time, irq, 8 * MIB, 0);
        small.write(0, 0, 1, 0x34);
        assertEquals(0, small.read(0, 1, 1));
        small.write(0, 0, 1, 0x17);
        assertEquals((7 * 1024) & 0xff, small.read(0, 1, 1));
        assertThrows(DeviceException.class, () -> new CmosRtc(wall, time, irq, 5 * GIB, 0));
    }

    @Test
    void nvramKeepsBytesAndNmiMaskIsSeparate() {
        write(0x40, 0xa5);
        rtc.write(0, 0, 1, 0x80 | 0x40);
        assertEquals(0xa5, rtc.read(0, 1, 1));
        assertTrue(rtc.nmiMasked());
    }

    @Test
    void updateInterruptEachSecondUntilRegisterCIsRead() {
        write(0x0b, 0x02 | 0x10); // UIE
        assertFalse(irq.level);
        time.advance(1_000_000_000L);
        assertTrue(irq.level);
        // PF is set too: the periodic flag runs whether or not PIE enables its interrupt.
        assertEquals(0x80 | 0x40 | 0x10, read(0x0c));
        assertFalse(irq.level, "reading C clears IRQF");
        assertEquals(0, read(0x0c));
        time.advance(1_000_000_000L);
        assertEquals(2, irq.rises);
    }

    @Test
    void periodicInterruptAtTheRateOfRegisterA() {
        write(0x0b, 0x02 | 0x40); // PIE, rate 6 = 1024 Hz from the default register A
        time.advance(976_561); // 2^5 / 32768 s = 976562.5 ns, truncated
        assertFalse(irq.level);
        time.advance(1);
        assertTrue(irq.level);
        assertEquals(0x80 | 0x40, read(0x0c) & 0xc0);
        write(0x0b, 0x02);
        read(0x0c);
        time.advance(10_000_000);
        assertFalse(irq.level);
        assertEquals(0, time.armedTimers());
    }

    @Test
    void alarmMatchesWithDontCareFields() {
        write(0x01, 0x00); // seconds 00
        write(0x03, 0xc0); // any minute
        write(0x05, 0xc0); // any hour
        write(0x0b, 0x02 | 0x20); // AIE
        time.advance(1_000_000_000L); // 23:59:59: no match
        assertFalse(irq.level);
        time.advance(1_000_000_000L); // 00:00:00
        assertTrue(irq.level);
        assertEquals(0x20, read(0x0c) & 0x20);
    }
}
