package dev.dvmm.hv.devices;

import dev.dvmm.hv.bus.IoBus;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class I8042Test {
    private int resets;
    private final RecordingLine kbd = new RecordingLine();
    private final RecordingLine aux = new RecordingLine();
    private final I8042 i8042 = new I8042(() -> resets++, kbd, aux);
    private final IoBus pio = new IoBus("pio");

    I8042Test() {
        i8042.attach(pio);
    }

    private int status() {
        return (int) pio.read(0, 0x64, 1);
    }

    private int data() {
        return (int) pio.read(0, 0x60, 1);
    }

    @Test
    void selfTestAndStatus() {
        assertEquals(0x14, status() & ~0x08, "system flag, not inhibited, output empty");
        pio.write(0, 0x64, 1, 0xaa);
        assertEquals(0x01, status() & 0x01);
        assertEquals(0x08, status() & 0x08, "last write was a command");
        assertEquals(0x55, data());
        assertEquals(0, status() & 0x01);
        pio.write(0, 0x64, 1, 0xab);
        assertEquals(0x00, data(), "keyboard interface test passed");
    }

    @Test
    void resetByPulseCommandAndByOutputPort() {
        pio.write(0, 0x64, 1, 0xff); // pulses nothing
        assertEquals(0, resets);
        pio.write(0, 0x64, 1, 0xfe);
        assertEquals(1, resets);
        pio.write(0, 0x64, 1, 0xd1);
        pio.write(0, 0x60, 1, 0x02); // bit 0 clear: CPU reset
        assertEquals(2, resets);
        assertEquals(2, i8042.resets());
    }

    @Test
    void commandByteReadsBackAndGatesTheKeyboardIrq() {
        pio.write(0, 0x64, 1, 0x60);
        pio.write(0, 0x60, 1, 0x44); // no interrupts
        pio.write(0, 0x64, 1, 0x20);
        assertEquals(0x44, data());
        assertEquals(0, kbd.rises);
        pio.write(0, 0x64, 1, 0x60);
        pio.write(0, 0x60, 1, 0x47);
        pio.write(0, 0x64, 1, 0x20);
        assertEquals(1, kbd.rises);
        assertEquals(0x47, data());
    }

    @Test
    void keyboardIdentifiesWithOneEdgePerByte() {
        pio.write(0, 0x60, 1, 0xf2);
        assertEquals(1, kbd.rises);
        assertEquals(0xfa, data());
        assertEquals(2, kbd.rises, "the next byte raises a fresh edge");
        assertEquals(0xab, data());
        assertEquals(0x83, data());
        assertEquals(3, kbd.rises);
        assertEquals(false, kbd.level);
    }

    @Test
    void auxLoopbackAndNoMouse() {
        pio.write(0, 0x64, 1, 0x60);
        pio.write(0, 0x60, 1, 0x47 | 0x02); // aux interrupts on
        pio.write(0, 0x64, 1, 0xd3);
        pio.write(0, 0x60, 1, 0x5a);
        assertEquals(0x21, status() & 0x21, "output full with aux data");
        assertEquals(1, aux.rises);
        assertEquals(0x5a, data());
        pio.write(0, 0x64, 1, 0xd4);
        pio.write(0, 0x60, 1, 0xf2);
        assertEquals(0xfe, data(), "no mouse: resend");
        assertEquals(0, kbd.rises);
    }
}
