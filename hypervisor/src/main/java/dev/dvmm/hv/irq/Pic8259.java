package dev.dvmm.hv.irq;

import dev.dvmm.hv.bus.BusDevice;
import dev.dvmm.hv.bus.IoBus;

/**
 * A pair of 8259A PICs (master 0x20-0x21, slave 0xA0-0xA1) plus the edge/level control registers
 * (ELCR, 0x4D0-0x4D1), present only so that the guest's probes and initialisation succeed; it never
 * raises an interrupt. dvmm delivers every device IRQ through the IOAPIC, and Linux masks the 8259s once
 * it switches to APIC mode.
 *
 * <p>Facts used (Intel 8259A datasheet): a write to port 0 with bit 4 set is ICW1 and starts the
 * initialisation sequence ICW2 (vector base), ICW3 (cascade) and, if ICW1 bit 0 asked for it, ICW4 on
 * port 1; otherwise port-1 writes set the interrupt mask (OCW1), port-0 writes with bit 3 set are OCW3
 * (bits 1:0 = 10 read IRR, 11 read ISR) and with bits 4:3 clear are OCW2 (EOI commands, accepted and
 * ignored). Reads: port 0 returns IRR or ISR as OCW3 selected (both always 0), port 1 the mask. Linux's
 * probe writes a mask and expects to read it back; a missing PIC would read 0xFF. State is guarded by
 * this object's monitor.
 */
public final class Pic8259 {
    public static final int MASTER_BASE = 0x20;
    public static final int SLAVE_BASE = 0xa0;
    public static final int ELCR_BASE = 0x4d0;

    private final Chip master = new Chip();
    private final Chip slave = new Chip();
    private final int[] elcr = new int[2];

    private final BusDevice elcrPorts = new BusDevice() {
        @Override
        public long read(int vcpu, long offset, int size) {
            synchronized (Pic8259.this) {
                return elcr[(int) offset & 1];
            }
        }

        @Override
        public void write(int vcpu, long offset, int size, long value) {
            synchronized (Pic8259.this) {
                // IRQs 0, 1, 2, 8 and 13 are always edge-triggered: their ELCR bits are reserved.
                elcr[(int) offset & 1] = (int) value & (offset == 0 ? 0xf8 : 0xde);
            }
        }
    };

    /** One 8259A; fields guarded by the enclosing Pic8259's monitor. */
    private final class Chip implements BusDevice {
        int imr = 0xff;
        int vectorBase;
        int icwStep; // 0 = ready, 2..4 = next expected ICW
        boolean icw4Needed;
        boolean readIsr;

        @Override
        public long read(int vcpu, long offset, int size) {
            synchronized (Pic8259.this) {
                return offset == 0 ? 0 : imr; // IRR and ISR stay empty: nothing is ever requested here
            }
        }

        @Override
        public void write(int vcpu, long offset, int size, long value) {
            int v = (int) value & 0xff;
            synchronized (Pic8259.this) {
                if (offset == 0) {
                    if ((v & 0x10) != 0) {
                        icwStep = 2; // ICW1
                        icw4Needed = (v & 1) != 0;
                        imr = 0;
                        readIsr = false;
                    } else if ((v & 0x08) != 0 && (v & 0x02) != 0) {
                        readIsr = (v & 1) != 0; // OCW3 read-register select
                    }
                    return; // OCW2 (EOI, rotation) has nothing to act on
                }
                switch (icwStep) {
                    case 2 -> {
                        vectorBase = v & 0xf8;
                        icwStep = 3;
                    }
                    case 3 -> icwStep = icw4Needed ? 4 : 0;
                    case 4 -> icwStep = 0;
                    default -> imr = v;
                }
            }
        }
    }

    /** Registers both chips and the ELCR. */
    public void attach(IoBus pio) {
        pio.register("pic-master", MASTER_BASE, 2, master);
        pio.register("pic-slave", SLAVE_BASE, 2, slave);
        pio.register("elcr", ELCR_BASE, 2, elcrPorts);
    }

    public BusDevice masterPorts() { return master; }

    public BusDevice slavePorts() { return slave; }

    public BusDevice elcrPorts() { return elcrPorts; }

    /** The vector base the guest programmed into the master (diagnostics). */
    public synchronized int masterVectorBase() { return master.vectorBase; }

    /** The master's mask register. */
    public synchronized int masterMask() { return master.imr; }
}
