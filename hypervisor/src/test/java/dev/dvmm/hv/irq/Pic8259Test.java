package dev.dvmm.hv.irq;

import dev.dvmm.hv.bus.IoBus;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class Pic8259Test {
    private final Pic8259 pic = new Pic8259();
    private final IoBus pio = new IoBus("pio");

    Pic8259Test() {
        pic.attach(pio);
    }

    @Test
    void linuxProbeReadsBackTheMask() {
        // arch/x86/kernel/i8259.c probe_8259A()
        pio.write(0, 0xa1, 1, 0xff);
        pio.write(0, 0x21, 1, 0xfb);
        assertEquals(0xfb, pio.read(0, 0x21, 1));
        assertEquals(0xff, pio.read(0, 0xa1, 1));
    }

    @Test
    void initialisationSequenceThenMask() {
        pio.write(0, 0x20, 1, 0x11); // ICW1: edge, cascade, ICW4 needed
        pio.write(0, 0x21, 1, 0x30); // ICW2: vectors 0x30-0x37
        pio.write(0, 0x21, 1, 0x04); // ICW3: slave on IR2
        pio.write(0, 0x21, 1, 0x01); // ICW4: 8086 mode
        assertEquals(0x30, pic.masterVectorBase());
        assertEquals(0x00, pio.read(0, 0x21, 1), "ICW1 cleared the mask");
        pio.write(0, 0x21, 1, 0xff); // OCW1
        assertEquals(0xff, pic.masterMask());
        pio.write(0, 0x20, 1, 0x0b); // OCW3: read ISR
        assertEquals(0x00, pio.read(0, 0x20, 1));
        pio.write(0, 0x20, 1, 0x20); // OCW2: non-specific EOI, harmless
        assertEquals(0xff, pio.read(0, 0x21, 1));
    }

    @Test
    void elcrKeepsOnlyConfigurableBits() {
        pio.write(0, 0x4d0, 1, 0xff);
        pio.write(0, 0x4d1, 1, 0xff);
        assertEquals(0xf8, pio.read(0, 0x4d0, 1));
        assertEquals(0xde, pio.read(0, 0x4d1, 1));
    }
}
