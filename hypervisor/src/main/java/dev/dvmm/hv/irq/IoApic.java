package dev.dvmm.hv.irq;

import dev.dvmm.hv.bus.BusDevice;
import dev.dvmm.hv.devices.DeviceException;
import dev.dvmm.hv.devices.IrqLine;

/**
 * An Intel 82093AA I/O APIC with 24 inputs at 0xFEC00000 (offsets only): IOREGSEL at 0x00, IOWIN at 0x10.
 *
 * <p>Facts used (82093AA datasheet, section 3): registers 0x00 IOAPICID (bits 27:24), 0x01 IOAPICVER
 * (version 0x11, maximum redirection entry 23 in bits 23:16), 0x02 IOAPICARB (bits 27:24), 0x10-0x3F the
 * redirection table, entry n at 0x10+2n (low) and 0x11+2n (high). Entry bits: 7:0 vector, 10:8 delivery
 * mode, 11 destination mode, 12 delivery status (RO, always idle here: delivery is synchronous), 13 polarity,
 * 14 remote IRR (RO), 15 trigger mode, 16 mask, 63:56 destination. Entries reset masked.
 *
 * <p>Inputs: {@link #setIrq} takes whether the device asserts its request (the board's wiring is assumed
 * to match the polarity the guest programmed, as in QEMU and KVM; the polarity bit is stored and read
 * back). Edge-triggered: a rising assertion on an unmasked entry sends one message; edges on a masked
 * entry are lost (datasheet: "not delivered or held pending"). Level-triggered: while asserted, unmasked
 * and remote IRR clear, a message is sent and remote IRR set; the LAPIC's EOI for that vector
 * ({@link #eoi}) clears remote IRR and, if the line is still asserted, sends again. Unmasking an asserted
 * level entry sends at once. Messages go through the same {@link IpiRouter} as IPIs, source
 * {@link ApicMessage#FROM_IOAPIC}, so physical and logical destinations resolve as for the LAPICs.
 *
 * <p>State is guarded by this object's monitor; messages are sent while holding it (lock order:
 * device -> IOAPIC -> LAPIC; LAPICs call {@link #eoi} without their own lock). No allocation per interrupt.
 */
public final class IoApic implements BusDevice, EoiListener {
    public static final long DEFAULT_BASE = 0xFEC0_0000L;
    public static final int MMIO_SIZE = 0x1000;
    public static final int PINS = 24;
    public static final int VERSION = 0x11 | (PINS - 1) << 16;

    static final long RTE_MASKED = 1L << 16;
    static final long RTE_LEVEL = 1L << 15;
    static final long RTE_REMOTE_IRR = 1L << 14;
    static final long RTE_POLARITY_LOW = 1L << 13;
    static final long RTE_DELIVERY_STATUS = 1L << 12;
    /** Bits the guest can write: everything but delivery status and remote IRR. */
    private static final long RTE_WRITABLE = 0xff00_0000_0001_afffL;

    private final IpiRouter router;
    private final long[] table = new long[PINS];
    private final boolean[] asserted = new boolean[PINS];
    private final IrqLine[] lines = new IrqLine[PINS];
    private final long[] delivered = new long[PINS];
    private int select;
    private int id;

    public IoApic(int id, IpiRouter router) {
        this.id = id & 0xf;
        this.router = router;
        for (int i = 0; i < PINS; i++) {
            table[i] = RTE_MASKED;
            final int pin = i;
            lines[i] = level -> setIrq(pin, level);
        }
    }

    /** The wire into input {@code pin}, created once; devices keep it. */
    public IrqLine line(int pin) {
        if (pin < 0 || pin >= PINS) {
            throw new DeviceException("IOAPIC has inputs 0.." + (PINS - 1) + ", not " + pin);
        }
        return lines[pin];
    }

    /** A device asserts ({@code true}) or releases its request on input {@code pin}. */
    public synchronized void setIrq(int pin, boolean level) {
        if (pin < 0 || pin >= PINS) {
            return;
        }
        boolean was = asserted[pin];
        asserted[pin] = level;
        long e = table[pin];
        if (!level || (e & RTE_MASKED) != 0) {
            return;
        }
        if ((e & RTE_LEVEL) != 0) {
            if ((e & RTE_REMOTE_IRR) == 0) {
                sendLocked(pin);
            }
        } else if (!was) {
            sendLocked(pin);
        }
    }

    private void sendLocked(int pin) {
        long e = table[pin];
        boolean level = (e & RTE_LEVEL) != 0;
        if (level) {
            table[pin] = e | RTE_REMOTE_IRR;
        }
        delivered[pin]++;
        router.send(ApicMessage.FROM_IOAPIC, ApicMessage.NO_SHORTHAND, (int) (e >> 11) & 1, (int) (e >>> 56),
                (int) (e >> 8) & 7, (int) e & 0xff, level, true);
    }

    /** EOI broadcast from a LAPIC: ends the level-triggered entries with this vector. */
    @Override
    public synchronized void eoi(int vector) {
        for (int pin = 0; pin < PINS; pin++) {
            long e = table[pin];
            if ((e & RTE_REMOTE_IRR) != 0 && (e & 0xff) == vector) {
                table[pin] = e & ~RTE_REMOTE_IRR;
                if (asserted[pin] && (e & RTE_MASKED) == 0 && (e & RTE_LEVEL) != 0) {
                    sendLocked(pin); // still asserted: the device wants service again
                }
            }
        }
    }

    @Override
    public synchronized long read(int vcpu, long offset, int size) {
        long v = switch ((int) offset) {
            case 0x00 -> select;
            case 0x10 -> readRegister(select);
            default -> 0;
        };
        return size >= 4 ? v & 0xffff_ffffL : v & ((1L << (8 * size)) - 1);
    }

    private long readRegister(int reg) {
        if (reg >= 0x10 && reg < 0x10 + 2 * PINS) {
            long e = table[(reg - 0x10) >> 1];
            return (reg & 1) == 0 ? e & 0xffff_ffffL : e >>> 32;
        }
        return switch (reg) {
            case 0x00, 0x02 -> (long) id << 24;
            case 0x01 -> VERSION;
            default -> 0;
        };
    }

    @Override
    public synchronized void write(int vcpu, long offset, int size, long value) {
        switch ((int) offset) {
            case 0x00 -> select = (int) value & 0xff;
            case 0x10 -> writeRegister(select, value & 0xffff_ffffL);
            default -> { }
        }
    }

    private void writeRegister(int reg, long v) {
        if (reg == 0x00) {
            id = (int) (v >> 24) & 0xf;
            return;
        }
        if (reg < 0x10 || reg >= 0x10 + 2 * PINS) {
            return; // version and arbitration are read-only, the rest is reserved
        }
        int pin = (reg - 0x10) >> 1;
        long old = table[pin];
        long next = (reg & 1) == 0 ? (old & 0xffff_ffff_0000_0000L) | v : (old & 0xffff_ffffL) | v << 32;
        next = (next & RTE_WRITABLE) | (old & RTE_REMOTE_IRR);
        if ((next & RTE_LEVEL) == 0) {
            next &= ~RTE_REMOTE_IRR; // remote IRR is undefined for edge entries; keep it clear
        }
        table[pin] = next;
        boolean unmasked = (old & RTE_MASKED) != 0 && (next & RTE_MASKED) == 0;
        if (unmasked && asserted[pin] && (next & RTE_LEVEL) != 0 && (next & RTE_REMOTE_IRR) == 0) {
            sendLocked(pin);
        }
    }

    /** The 64-bit redirection entry of a pin (tests and diagnostics). */
    public synchronized long entry(int pin) {
        return table[pin];
    }

    /** Messages sent for a pin so far. */
    public synchronized long deliveries(int pin) {
        return delivered[pin];
    }
}
