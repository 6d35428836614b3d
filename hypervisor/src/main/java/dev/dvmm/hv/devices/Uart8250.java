package dev.dvmm.hv.devices;

import dev.dvmm.hv.bus.BusDevice;
import dev.dvmm.hv.bus.IoBus;
import java.io.IOException;
import java.io.OutputStream;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * A 16550A UART (8250 family) as found at COM1 (ports 0x3f8-0x3ff, ISA IRQ 4).
 *
 * <p>Register map and semantics follow the TI/National PC16550D datasheet: RBR/THR/DLL at 0, IER/DLM at
 * 1 (DLAB in LCR bit 7 selects the divisor latch), IIR (read) / FCR (write) at 2, LCR 3, MCR 4, LSR 5,
 * MSR 6, SCR 7. Interrupt identification uses the datasheet's priorities: receiver line status (0x6),
 * received data (0x4) or character timeout (0xC), transmitter holding register empty (0x2), modem status
 * (0x0); IIR bits 7:6 read 11 while the FIFOs are enabled, which is how Linux's 8250 autoconfig tells a
 * 16550A from older parts. Upper IER and MCR bits read as zero and IIR bit 5 stays clear, so the
 * autoconfig probes for the XScale, TI16750 and NS SuperIO variants fail as on a real 16550A.
 *
 * <p>Model choices: transmission is instantaneous (THRE and TEMT always read 1 and a THRE interrupt is
 * re-armed after every THR write, as QEMU does); the character timeout is treated as already elapsed,
 * so fewer bytes than the FIFO trigger level report IIR 0xC at once. The IRQ output is gated by MCR OUT2
 * and forced inactive in loopback, as on the PC, where OUT2 enables the ISA interrupt driver.
 *
 * <p>Host input does not overrun: {@link #receive} blocks the feeding thread until the guest has read
 * enough (backpressure), {@link #offer} takes what fits. Guest output goes to an OutputStream, flushed per
 * byte so that prompts without a newline show up. All state is guarded by this object's monitor; the IRQ
 * line is driven while holding it (lock order: device, then interrupt controller).
 */
public final class Uart8250 implements BusDevice {
    // Only errors are logged here: the holder keeps Log4j (hundreds of classes) out of every start-up
    // until one happens.
    private static final class Log {
        static final Logger LOG = LogManager.getLogger(Uart8250.class);
    }

    /** COM1's base port and ISA IRQ, for the machine's wiring. */
    public static final int COM1_BASE = 0x3f8;
    public static final int COM1_IRQ = 4;
    /** Number of ports the UART decodes. */
    public static final int PORT_COUNT = 8;

    static final int FIFO_SIZE = 16;

    // IER bits.
    static final int IER_RDI = 0x01;
    static final int IER_THRI = 0x02;
    static final int IER_RLSI = 0x04;
    static final int IER_MSI = 0x08;
    // IIR values.
    static final int IIR_NO_INT = 0x01;
    static final int IIR_MSI = 0x00;
    static final int IIR_THRI = 0x02;
    static final int IIR_RDI = 0x04;
    static final int IIR_RLSI = 0x06;
    static final int IIR_TIMEOUT = 0x0c;
    static final int IIR_FIFO_ENABLED = 0xc0;
    // FCR bits.
    static final int FCR_ENABLE = 0x01;
    static final int FCR_CLEAR_RX = 0x02;
    // LCR bits.
    static final int LCR_DLAB = 0x80;
    // MCR bits.
    static final int MCR_DTR = 0x01;
    static final int MCR_RTS = 0x02;
    static final int MCR_OUT1 = 0x04;
    static final int MCR_OUT2 = 0x08;
    static final int MCR_LOOP = 0x10;
    // LSR bits.
    static final int LSR_DR = 0x01;
    static final int LSR_OE = 0x02;
    static final int LSR_PE = 0x04;
    static final int LSR_FE = 0x08;
    static final int LSR_BI = 0x10;
    static final int LSR_THRE = 0x20;
    static final int LSR_TEMT = 0x40;
    static final int LSR_FIFO_ERROR = 0x80;
    static final int LSR_ERRORS = LSR_OE | LSR_PE | LSR_FE | LSR_BI;
    // MSR bits.
    static final int MSR_DCTS = 0x01;
    static final int MSR_DDSR = 0x02;
    static final int MSR_TERI = 0x04;
    static final int MSR_DDCD = 0x08;
    static final int MSR_CTS = 0x10;
    static final int MSR_DSR = 0x20;
    static final int MSR_RI = 0x40;
    static final int MSR_DCD = 0x80;
    /** What the modem lines read with nothing in loopback: a null-modem host that is always ready. */
    private static final int MSR_LINES_IDLE = MSR_CTS | MSR_DSR | MSR_DCD;

    private static final int[] TRIGGER_LEVELS = {1, 4, 8, 14};

    private final OutputStream out;
    private final IrqLine irq;

    private final byte[] rx = new byte[FIFO_SIZE];
    private int rxHead;
    private int rxCount;

    private int dll = 0x0c; // 9600 baud at 1.8432 MHz, a common firmware default
    private int dlm;
    private int ier;
    private int lcr;
    private int mcr;
    private int lsrErrors;
    private int msrLines = MSR_LINES_IDLE;
    private int msrDeltas;
    private int scr;
    private boolean fifoEnabled;
    private int triggerLevel = 1;
    private boolean thrInterrupt;
    private boolean irqLevel;

    private long transmitted;
    private long outputErrors;

    public Uart8250(OutputStream out, IrqLine irq) {
        this.out = out;
        this.irq = irq;
    }

    /** Registers the eight ports at {@code base} (COM1: {@link #COM1_BASE}). */
    public void attach(IoBus pio, String name, int base) {
        pio.register(name, base, PORT_COUNT, this);
    }

    @Override
    public synchronized long read(int vcpu, long offset, int size) {
        int v = switch ((int) offset) {
            case 0 -> (lcr & LCR_DLAB) != 0 ? dll : readRbr();
            case 1 -> (lcr & LCR_DLAB) != 0 ? dlm : ier;
            case 2 -> readIir();
            case 3 -> lcr;
            case 4 -> mcr;
            case 5 -> readLsr();
            case 6 -> readMsr();
            case 7 -> scr;
            default -> 0xff;
        };
        updateIrq();
        return v;
    }

    @Override
    public synchronized void write(int vcpu, long offset, int size, long value) {
        int v = (int) value & 0xff;
        switch ((int) offset) {
            case 0 -> {
                if ((lcr & LCR_DLAB) != 0) {
                    dll = v;
                } else {
                    transmit(v);
                }
            }
            case 1 -> {
                if ((lcr & LCR_DLAB) != 0) {
                    dlm = v;
                } else {
                    writeIer(v);
                }
            }
            case 2 -> writeFcr(v);
            case 3 -> lcr = v;
            case 4 -> writeMcr(v);
            case 7 -> scr = v;
            default -> { } // LSR and MSR are read-only (factory test writes are ignored)
        }
        updateIrq();
    }

    private int readRbr() {
        if (rxCount == 0) {
            return 0;
        }
        int v = rx[rxHead] & 0xff;
        rxHead = (rxHead + 1) % FIFO_SIZE;
        rxCount--;
        notifyAll(); // room for a blocked host-input feeder
        return v;
    }

    private int readIir() {
        int id = interruptId();
        if (id == IIR_THRI) {
            // Reading IIR while THRE is the top source clears that source (datasheet table 4).
            thrInterrupt = false;
        }
        return id | (fifoEnabled ? IIR_FIFO_ENABLED : 0);
    }

    private int readLsr() {
        int v = lsrErrors | LSR_THRE | LSR_TEMT | (rxCount > 0 ? LSR_DR : 0);
        if (fifoEnabled && lsrErrors != 0) {
            v |= LSR_FIFO_ERROR;
        }
        lsrErrors = 0;
        return v;
    }

    private int readMsr() {
        int v = msrLines | msrDeltas;
        msrDeltas = 0;
        return v;
    }

    private void writeIer(int v) {
        int old = ier;
        ier = v & 0x0f;
        if ((ier & IER_THRI) != 0 && (old & IER_THRI) == 0) {
            // Enabling THRE interrupts while the holding register is empty raises one at once; Linux's
            // startup test relies on this (it would otherwise mark the port UART_BUG_THRE).
            thrInterrupt = true;
        } else if ((ier & IER_THRI) == 0) {
            thrInterrupt = false;
        }
    }

    private void writeFcr(int v) {
        boolean enable = (v & FCR_ENABLE) != 0;
        if (enable != fifoEnabled) {
            clearRx();
        }
        fifoEnabled = enable;
        if (!enable) {
            return; // the other FCR bits are only programmed with FCR0 set
        }
        if ((v & FCR_CLEAR_RX) != 0) {
            clearRx();
        }
        triggerLevel = TRIGGER_LEVELS[(v >> 6) & 3];
    }

    private void writeMcr(int v) {
        mcr = v & 0x1f;
        int lines;
        if ((mcr & MCR_LOOP) != 0) {
            // Loopback wiring (datasheet MCR bit 4): RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD.
            lines = ((mcr & MCR_RTS) != 0 ? MSR_CTS : 0)
                    | ((mcr & MCR_DTR) != 0 ? MSR_DSR : 0)
                    | ((mcr & MCR_OUT1) != 0 ? MSR_RI : 0)
                    | ((mcr & MCR_OUT2) != 0 ? MSR_DCD : 0);
        } else {
            lines = MSR_LINES_IDLE;
        }
        int changed = lines ^ msrLines;
        if ((changed & MSR_CTS) != 0) {
            msrDeltas |= MSR_DCTS;
        }
        if ((changed & MSR_DSR) != 0) {
            msrDeltas |= MSR_DDSR;
        }
        if ((changed & MSR_RI) != 0 && (lines & MSR_RI) == 0) {
            msrDeltas |= MSR_TERI; // trailing edge of RI only
        }
        if ((changed & MSR_DCD) != 0) {
            msrDeltas |= MSR_DDCD;
        }
        msrLines = lines;
        notifyAll(); // leaving loopback lets a blocked host-input feeder continue
    }

    private void transmit(int v) {
        if ((mcr & MCR_LOOP) != 0) {
            if (!pushRx(v)) {
                lsrErrors |= LSR_OE;
            }
        } else if (out != null) {
            try {
                out.write(v);
                out.flush();
            } catch (IOException e) {
                if (outputErrors++ == 0) {
                    Log.LOG.warn("serial output failed, dropping guest output from now on: {}", e.toString());
                }
            }
        }
        transmitted++;
        // The byte leaves at once, so the holding register is empty again.
        thrInterrupt = (ier & IER_THRI) != 0;
    }

    private int rxCapacity() {
        return fifoEnabled ? FIFO_SIZE : 1;
    }

    private boolean pushRx(int v) {
        if (rxCount >= rxCapacity()) {
            return false;
        }
        rx[(rxHead + rxCount) % FIFO_SIZE] = (byte) v;
        rxCount++;
        return true;
    }

    private void clearRx() {
        rxHead = 0;
        rxCount = 0;
        notifyAll();
    }

    /** The highest-priority pending source as the IIR's low nibble, or {@link #IIR_NO_INT}. */
    private int interruptId() {
        if ((ier & IER_RLSI) != 0 && lsrErrors != 0) {
            return IIR_RLSI;
        }
        if ((ier & IER_RDI) != 0 && rxCount > 0) {
            return fifoEnabled && rxCount < triggerLevel ? IIR_TIMEOUT : IIR_RDI;
        }
        if ((ier & IER_THRI) != 0 && thrInterrupt) {
            return IIR_THRI;
        }
        if ((ier & IER_MSI) != 0 && msrDeltas != 0) {
            return IIR_MSI;
        }
        return IIR_NO_INT;
    }

    private void updateIrq() {
        boolean level = interruptId() != IIR_NO_INT && (mcr & (MCR_OUT2 | MCR_LOOP)) == MCR_OUT2;
        if (level != irqLevel) {
            irqLevel = level;
            irq.set(level);
        }
    }

    // ------------------------------------------------------------------ host side (any thread)

    /** Puts as many of the bytes as fit into the receiver; returns how many it took. Never blocks. */
    public synchronized int offer(byte[] b, int off, int len) {
        int n = 0;
        while (n < len && (mcr & MCR_LOOP) == 0 && pushRx(b[off + n])) {
            n++;
        }
        if (n > 0) {
            updateIrq();
        }
        return n;
    }

    /** Feeds host input (stdin) to the guest, waiting while the receiver is full. */
    public synchronized void receive(byte[] b, int off, int len) throws InterruptedException {
        int done = 0;
        while (done < len) {
            int n = offer(b, off + done, len - done);
            done += n;
            if (done < len) {
                wait();
            }
        }
    }

    /** Bytes the guest has written to the transmitter. */
    public synchronized long transmitted() {
        return transmitted;
    }

    /** Whether the IRQ line is asserted now. */
    public synchronized boolean irqAsserted() {
        return irqLevel;
    }
}
