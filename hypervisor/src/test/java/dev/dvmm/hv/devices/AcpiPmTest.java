package dev.dvmm.hv.devices;

import dev.dvmm.hv.bus.IoBus;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AcpiPmTest {
    private final FakeTime time = new FakeTime();
    private final RecordingLine sci = new RecordingLine();
    private int powerOffs;
    private final AcpiPm pm = new AcpiPm(time, sci, () -> powerOffs++);
    private final IoBus pio = new IoBus("pio");

    AcpiPmTest() {
        pm.attach(pio);
    }

    @Test
    void s5SleepPowersOff() {
        assertEquals(0x0001, pio.read(0, 0x604, 2), "SCI_EN: already in ACPI mode");
        pio.write(0, 0x604, 2, 1 << 10 | 1 << 13 | 1); // S1 is not supported
        assertEquals(0, powerOffs);
        pio.write(0, 0x604, 2, 5 << 10 | 1);
        assertEquals(0, powerOffs, "SLP_TYP without SLP_EN");
        assertEquals(5 << 10 | 1, pio.read(0, 0x604, 2));
        pio.write(0, 0x604, 2, 5 << 10 | 1 << 13 | 1);
        assertEquals(1, powerOffs);
        assertEquals(0, pio.read(0, 0x604, 2) & 1 << 13, "SLP_EN reads as zero");
    }

    @Test
    void byteWritesToTheHighHalfCount() {
        pio.write(0, 0x605, 1, (5 << 10 | 1 << 13) >> 8);
        assertEquals(1, powerOffs);
    }

    @Test
    void configurableS5TypeAndPorts() {
        IoBus other = new IoBus("pio");
        int[] offs = new int[1];
        AcpiPm custom = new AcpiPm(time, sci, () -> offs[0]++, 7, false);
        custom.attach(other, 0xb000, 0xb004, 0xb008);
        other.write(0, 0xb004, 2, 5 << 10 | 1 << 13);
        assertEquals(0, offs[0]);
        other.write(0, 0xb004, 2, 7 << 10 | 1 << 13);
        assertEquals(1, offs[0]);
        assertThrows(DeviceException.class, () -> new AcpiPm(time, sci, () -> { }, 8, false));
    }

    @Test
    void pmTimerRunsAt3579545HzAndWrapsAt24Bits() {
        long t0 = pio.read(0, 0x608, 4);
        time.advance(1_000_000_000L);
        assertEquals(3_579_545L, (pio.read(0, 0x608, 4) - t0) & 0xff_ffff);
        time.advance(4_000_000_000L);
        assertEquals((5 * 3_579_545L) & 0xff_ffff, pio.read(0, 0x608, 4));
        AcpiPm wide = new AcpiPm(time, sci, () -> { }, 5, true);
        time.advance(10_000_000_000L);
        assertEquals(10 * 3_579_545L, wide.timerBlock().read(0, 0, 4));
    }

    @Test
    void timerStatusSetsWhenTheTopBitFlips() {
        assertEquals(0, pio.read(0, 0x600, 2) & 1);
        time.advance(2_400_000_000L); // 8.59 M ticks > 2^23
        assertEquals(1, pio.read(0, 0x600, 2) & 1);
        pio.write(0, 0x600, 2, 1);
        assertEquals(0, pio.read(0, 0x600, 2) & 1, "write 1 to clear");
    }

    @Test
    void powerButtonRaisesSciWhenEnabled() {
        pm.pressPowerButton();
        assertFalse(sci.level, "PWRBTN_EN clear");
        assertEquals(0x0100, pio.read(0, 0x600, 2) & 0x0100);
        pio.write(0, 0x602, 2, 0x0100);
        assertTrue(sci.level);
        assertEquals(0x0100, pio.read(0, 0x600, 4) >> 16, "PM1_EN read back through a dword read");
        pio.write(0, 0x600, 2, 0x0100);
        assertFalse(sci.level);
        assertEquals(0, pio.read(0, 0x600, 2) & 0x0100);
    }
}
