package dev.dvmm.hv.devices;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class Uart8250Test {
    private static final int RX = 0, TX = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, EFR = 2, LCR = 3,
            MCR = 4, LSR = 5, MSR = 6, SCR = 7;

    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final RecordingLine irq = new RecordingLine();
    private final Uart8250 uart = new Uart8250(out, irq);

    private int in(int reg) {
        return (int) uart.read(0, reg, 1);
    }

    private void out(int reg, int v) {
        uart.write(0, reg, 1, v);
    }

    /**
     * The decisions of Linux's drivers/tty/serial/8250/8250_port.c autoconfig() and autoconfig_16550a()
     * (6.1), replayed against the device: the name of the port type Linux would settle on.
     */
    private String linuxAutoconfig() {
        // IER probe: a UART holds the low nibble it is given.
        int scratch = in(IER);
        out(IER, 0);
        int scratch2 = in(IER) & 0x0f;
        out(IER, 0x0f);
        int scratch3 = in(IER) & 0x0f;
        out(IER, scratch);
        if (scratch2 != 0 || scratch3 != 0x0f) {
            return "none (IER test)";
        }
        int saveMcr = in(MCR);
        int saveLcr = in(LCR);
        // Loopback test: RTS and OUT2 come back as CTS and DCD.
        out(MCR, 0x10 | 0x0a);
        int status1 = in(MSR) & 0xf0;
        out(MCR, saveMcr);
        if (status1 != 0x90) {
            return "none (loopback test)";
        }
        out(LCR, 0xbf);
        out(EFR, 0);
        out(LCR, 0);
        out(FCR, 0x01);
        int iirFifo = in(IIR) >> 6;
        String type;
        switch (iirFifo) {
            case 0 -> type = "8250/16450";
            case 1 -> type = "unknown";
            case 2 -> type = "16550";
            default -> type = autoconfig16550a();
        }
        out(LCR, saveLcr);
        out(MCR, saveMcr);
        out(FCR, 0x07); // serial8250_clear_fifos
        out(FCR, 0);
        in(RX);
        return type;
    }

    private String autoconfig16550a() {
        out(LCR, 0x80); // UART_LCR_CONF_MODE_A
        if (in(EFR) == 0) {
            out(EFR, 0xa8);
            if (in(EFR) != 0) {
                return "16650";
            }
            return "16650V2";
        }
        out(LCR, 0xbf); // UART_LCR_CONF_MODE_B
        if (in(EFR) == 0) {
            return "16650V2 (EFR)";
        }
        out(LCR, 0);
        int status1 = in(MCR);
        out(LCR, 0xe0);
        int status2 = in(0x02);
        if (((status2 ^ status1) & 0x10) == 0) {
            out(LCR, 0);
            out(MCR, status1 ^ 0x10);
            out(LCR, 0xe0);
            status2 = in(0x02);
            out(LCR, 0);
            out(MCR, status1);
            if (((status2 ^ status1) & 0x10) != 0) {
                return "NS16550A";
            }
        }
        out(LCR, 0);
        out(FCR, 0x01 | 0x20);
        status1 = in(IIR) >> 5;
        out(FCR, 0x01);
        out(LCR, 0x80);
        out(FCR, 0x01 | 0x20);
        status2 = in(IIR) >> 5;
        out(FCR, 0x01);
        out(LCR, 0);
        if (status1 == 6 && status2 == 7) {
            return "16750";
        }
        int iersave = in(IER);
        out(IER, iersave & ~0x40);
        if ((in(IER) & 0x40) == 0) {
            out(IER, iersave | 0x40);
            if ((in(IER) & 0x40) != 0) {
                return "XScale";
            }
            out(IER, iersave);
        }
        return "16550A";
    }

    @Test
    void linuxAutoconfigFindsA16550A() {
        assertEquals("16550A", linuxAutoconfig());
        // The probe leaves nothing behind: no interrupt, no output, no stray received byte.
        assertEquals(0x01, in(IIR));
        assertEquals(0, out.size());
        assertEquals(0x60, in(LSR));
    }

    @Test
    void thrInterruptIsReassertedEachTimeItIsEnabled() {
        // Linux's serial8250_do_startup THRE test: a real 16550 raises THRE again after IER is rewritten.
        out(MCR, 0x08);
        out(IER, 0x02);
        int iir1 = in(IIR);
        assertEquals(0x02, iir1 & 0x0f);
        assertEquals(0x01, in(IIR) & 0x0f, "reading IIR cleared the THRE source");
        out(IER, 0);
        out(IER, 0x02);
        assertEquals(0x02, in(IIR) & 0x0f);
        // Writing THR also re-arms it, since the byte leaves at once.
        in(IIR);
        out(TX, 'x');
        assertEquals(0x02, in(IIR) & 0x0f);
    }

    @Test
    void interruptIdentificationFollowsThePriorities() {
        out(FCR, 0x01 | 0xc0); // FIFO, trigger level 14
        out(IER, 0x0f);
        out(MCR, 0x10 | 0x02); // loopback: DSR and DCD drop (no DTR, no OUT2), a modem status change
        for (int i = 0; i < 17; i++) {
            out(TX, 'a' + i); // 17 bytes into a 16-byte FIFO: an overrun
        }
        assertEquals(0xc6, in(IIR), "line status first");
        int lsr = in(LSR);
        assertEquals(0x02, lsr & 0x02, "overrun reported");
        assertEquals(0x01, lsr & 0x01);
        assertEquals(0xc4, in(IIR), "16 bytes >= trigger level 14: received data available");
        for (int i = 0; i < 3; i++) {
            assertEquals('a' + i, in(RX));
        }
        assertEquals(0xcc, in(IIR), "13 bytes below the trigger level: character timeout");
        for (int i = 3; i < 16; i++) {
            assertEquals('a' + i, in(RX));
        }
        assertEquals(0, in(LSR) & 0x01, "the seventeenth byte was lost");
        assertEquals(0xc2, in(IIR), "then THRE");
        assertEquals(0xc0, in(IIR), "then modem status (THRE was cleared by the previous read)");
        int msr = in(MSR);
        assertEquals(0x10 | 0x02 | 0x08, msr, "CTS held by RTS; DSR and DCD fell");
        assertEquals(0xc1, in(IIR), "nothing pending");
    }

    @Test
    void loopbackEchoesTransmittedBytesAndMapsModemLines() {
        out(MCR, 0x10);
        out(TX, 'Z');
        assertEquals(0, out.size(), "loopback keeps bytes off the line");
        assertEquals(0x61, in(LSR));
        assertEquals('Z', in(RX));
        out(MCR, 0x10 | 0x01 | 0x04); // DTR -> DSR, OUT1 -> RI
        assertEquals(0x20 | 0x40, in(MSR) & 0xf0);
        out(MCR, 0x10);
        assertEquals(0x04, in(MSR) & 0x04, "RI trailing edge");
        out(MCR, 0);
        assertEquals(0xb0, in(MSR) & 0xf0, "outside loopback the host side is always ready");
    }

    @Test
    void transmitsToTheOutputAndKeepsDivisorAndScratch() {
        out(LCR, 0x83);
        out(DLL, 0x01);
        out(DLM, 0x02);
        out(LCR, 0x03);
        out(SCR, 0x5a);
        for (byte b : "hi\n".getBytes(StandardCharsets.US_ASCII)) {
            out(TX, b);
        }
        assertEquals("hi\n", out.toString(StandardCharsets.US_ASCII));
        assertEquals(3, uart.transmitted());
        out(LCR, 0x83);
        assertEquals(0x01, in(DLL));
        assertEquals(0x02, in(DLM));
        out(LCR, 0x03);
        assertEquals(0x5a, in(SCR));
        assertEquals(0x03, in(LCR));
    }

    @Test
    void hostInputRaisesTheIrqOnlyWithOut2() {
        out(FCR, 0x01 | 0x80); // trigger level 8
        out(IER, 0x01);
        byte[] in = "hello".getBytes(StandardCharsets.US_ASCII);
        assertEquals(5, uart.offer(in, 0, 5));
        assertFalse(irq.level, "OUT2 clear: the ISA interrupt driver is off");
        out(MCR, 0x08);
        assertTrue(irq.level);
        assertEquals(0xcc, in(IIR));
        StringBuilder got = new StringBuilder();
        while ((in(LSR) & 0x01) != 0) {
            got.append((char) in(RX));
        }
        assertEquals("hello", got.toString());
        assertFalse(irq.level, "drained");
        assertEquals(0x01, in(IIR) & 0x0f);
    }

    @Test
    void theReceiverHoldsSixteenBytesWithFifoAndOneWithout() {
        byte[] data = new byte[20];
        assertEquals(1, uart.offer(data, 0, 20), "FIFO disabled after reset");
        out(FCR, 0x01);
        assertEquals(16, uart.offer(data, 0, 20), "enabling the FIFO cleared it");
        out(FCR, 0x01 | 0x02);
        assertEquals(0, in(LSR) & 0x01, "FCR bit 1 cleared the receiver");
    }

    @Test
    void blockedHostInputContinuesAsTheGuestReads() throws Exception {
        out(FCR, 0x01);
        byte[] data = new byte[100];
        for (int i = 0; i < data.length; i++) {
            data[i] = (byte) i;
        }
        Thread feeder = Thread.ofPlatform().start(() -> {
            try {
                uart.receive(data, 0, data.length);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        int next = 0;
        while (next < data.length) {
            if ((in(LSR) & 0x01) != 0) {
                assertEquals(next, in(RX), "bytes arrive in order, none lost");
                next++;
            } else {
                Thread.onSpinWait();
            }
        }
        feeder.join();
        assertEquals(0, in(LSR) & 0x01);
    }
}
