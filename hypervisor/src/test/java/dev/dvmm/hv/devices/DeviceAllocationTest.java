package dev.dvmm.hv.devices;

import java.io.OutputStream;
import java.time.Instant;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** Guest accesses to the legacy devices allocate nothing once warm: they sit on the vCPU exit path. */
class DeviceAllocationTest {
    private final FakeTime time = new FakeTime();
    private final RecordingLine line = new RecordingLine();
    private final Uart8250 uart = new Uart8250(OutputStream.nullOutputStream(), line);
    private final Pit8254 pit = new Pit8254(time, line);
    private final CmosRtc rtc = new CmosRtc(new FollowingClock(time, Instant.parse("2030-01-01T00:00:00Z")),
            time, line, 1L << 30, 0);
    private final AcpiPm pm = new AcpiPm(time, line, () -> { });
    private final I8042 i8042 = new I8042(() -> { }, line, line);
    private long sink;

    @Test
    void deviceAccessesAllocateNothing() {
        uart.write(0, 4, 1, 0x08);
        uart.write(0, 1, 1, 0x02);
        pit.write(0, 3, 1, 0x34);
        pit.write(0, 0, 1, 0x00);
        pit.write(0, 0, 1, 0x10);
        rtc.write(0, 0, 1, 0x00);
        rounds(200_000);
        long small = allocated(1_000);
        long large = allocated(100_000);
        System.out.println("device access allocation: " + small + " bytes for 1,000 rounds, " + large
                + " for 100,000");
        assertTrue(large - small < 8192, "allocation grew by " + (large - small) + " bytes");
        assertTrue(line.changes > 0 && sink != 0);
    }

    private long allocated(int rounds) {
        com.sun.management.ThreadMXBean mx =
                (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        long before = mx.getCurrentThreadAllocatedBytes();
        rounds(rounds);
        return mx.getCurrentThreadAllocatedBytes() - before;
    }

    private void rounds(int n) {
        for (int i = 0; i < n; i++) {
            uart.write(0, 0, 1, 'a');
            sink += uart.read(0, 5, 1);
            sink += uart.read(0, 2, 1);
            pit.write(0, 3, 1, 0x00);
            sink += pit.read(0, 0, 1) + pit.read(0, 0, 1);
            sink += pit.portB().read(0, 0, 1);
            sink += rtc.read(0, 1, 1);
            sink += pm.timerBlock().read(0, 0, 4);
            i8042.commandPort().write(0, 0, 1, 0xaa);
            sink += i8042.dataPort().read(0, 0, 1);
            time.advance(1000);
        }
    }
}
