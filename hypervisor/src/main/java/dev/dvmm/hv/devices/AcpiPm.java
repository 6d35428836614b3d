package dev.dvmm.hv.devices;

import dev.dvmm.hv.bus.BusDevice;
import dev.dvmm.hv.bus.IoBus;

/**
 * ACPI fixed-hardware power management registers in I/O space: the PM1a event block (PM1_STS, PM1_EN),
 * the PM1a control block (PM1_CNT) and the power management timer (ACPI specification 6.x, section 4.8).
 *
 * <p>Default ports, which the FADT written by guest-boot must name: PM1a_EVT_BLK at {@link #DEFAULT_EVENT_BASE}
 * (0x600, 4 bytes: PM1_STS at +0, PM1_EN at +2), PM1a_CNT_BLK at {@link #DEFAULT_CONTROL_BASE} (0x604, 2
 * bytes), PM_TMR_BLK at {@link #DEFAULT_TIMER_BASE} (0x608, 4 bytes); FADT PM1_EVT_LEN = 4, PM1_CNT_LEN = 2,
 * PM_TMR_LEN = 4, SMI_CMD = 0 (the machine starts in ACPI mode: SCI_EN reads 1). The DSDT's \_S5 package
 * must carry {@link #DEFAULT_S5_TYPE} as SLP_TYPa (or pass the value used to the constructor).
 *
 * <p>PM1_STS bits are write-1-to-clear: TMR_STS (0, set when the timer's top bit changes), PWRBTN_STS (8),
 * WAK_STS (15). PM1_EN: TMR_EN (0), PWRBTN_EN (8). The SCI line is asserted while a status bit and its
 * enable bit are both set (level, active high on the ISA IRQ named by the FADT's SCI_INT, usually 9).
 * PM1_CNT: SCI_EN (0), SLP_TYPx (bits 12:10), SLP_EN (13, write-only). Writing SLP_EN with SLP_TYPx equal to
 * the S5 type calls the {@link PowerOffListener}; other sleep states are not supported and are ignored.
 * The timer counts at 3.579545 MHz from the injected clock, 24 bits wide unless built 32 bits wide (then
 * the FADT must set TMR_VAL_EXT). TMR_STS is computed when PM1_STS is read; TMR_EN raises no SCI by itself.
 * State is guarded by this object's monitor.
 */
public final class AcpiPm {
    // The ports and lengths the FADT written by guest-boot names (one definition for both sides).
    public static final int DEFAULT_EVENT_BASE = dev.dvmm.boot.Layout.PM1A_EVT_PORT;
    public static final int DEFAULT_CONTROL_BASE = dev.dvmm.boot.Layout.PM1A_CNT_PORT;
    public static final int DEFAULT_TIMER_BASE = dev.dvmm.boot.Layout.PM_TMR_PORT;
    public static final int EVENT_LENGTH = dev.dvmm.boot.Layout.PM1A_EVT_LEN;
    public static final int CONTROL_LENGTH = dev.dvmm.boot.Layout.PM1A_CNT_LEN;
    public static final int TIMER_LENGTH = dev.dvmm.boot.Layout.PM_TMR_LEN;
    public static final int DEFAULT_SCI_IRQ = dev.dvmm.boot.Layout.SCI_IRQ;
    public static final int DEFAULT_S5_TYPE = 5;
    public static final long TIMER_HZ = 3_579_545L;

    static final int STS_TMR = 0x0001;
    static final int STS_PWRBTN = 0x0100;
    static final int STS_WAK = 0x8000;
    static final int CNT_SCI_EN = 0x0001;
    static final int CNT_SLP_EN = 0x2000;

    /** Told when the guest enters S5 (soft off). */
    @FunctionalInterface
    public interface PowerOffListener {
        void powerOff();
    }

    private final NanoClock clock;
    private final IrqLine sci;
    private final PowerOffListener powerOff;
    private final int s5Type;
    private final boolean timer32;
    private final long startNanos;

    private int status;
    private int enable;
    private int control = CNT_SCI_EN;
    private long tmrStsTicks; // timer value when TMR_STS was last cleared
    private boolean sciLevel;

    private final BusDevice eventBlock = new BusDevice() {
        @Override
        public long read(int vcpu, long offset, int size) {
            return readEvent((int) offset, size);
        }

        @Override
        public void write(int vcpu, long offset, int size, long value) {
            writeEvent((int) offset, size, value);
        }
    };

    private final BusDevice controlBlock = new BusDevice() {
        @Override
        public long read(int vcpu, long offset, int size) {
            return readControl((int) offset, size);
        }

        @Override
        public void write(int vcpu, long offset, int size, long value) {
            writeControl((int) offset, size, value);
        }
    };

    private final BusDevice timerBlock = new BusDevice() {
        @Override
        public long read(int vcpu, long offset, int size) {
            long v = timerValue();
            return offset == 0 ? v & mask(size) : (v >>> (8 * offset)) & mask(size);
        }

        @Override
        public void write(int vcpu, long offset, int size, long value) {
            // PM_TMR is read-only.
        }
    };

    /** The defaults: 24-bit timer, S5 type {@link #DEFAULT_S5_TYPE}. */
    public AcpiPm(NanoClock clock, IrqLine sci, PowerOffListener powerOff) {
        this(clock, sci, powerOff, DEFAULT_S5_TYPE, false);
    }

    public AcpiPm(NanoClock clock, IrqLine sci, PowerOffListener powerOff, int s5Type, boolean timer32) {
        if (s5Type < 0 || s5Type > 7) {
            throw new DeviceException("ACPI PM: SLP_TYP for S5 must be 0..7, not " + s5Type);
        }
        this.clock = clock;
        this.sci = sci;
        this.powerOff = powerOff;
        this.s5Type = s5Type;
        this.timer32 = timer32;
        this.startNanos = clock.nanoTime();
    }

    /** Registers the three blocks at their default ports. */
    public void attach(IoBus pio) {
        attach(pio, DEFAULT_EVENT_BASE, DEFAULT_CONTROL_BASE, DEFAULT_TIMER_BASE);
    }

    public void attach(IoBus pio, int eventBase, int controlBase, int timerBase) {
        pio.register("acpi-pm1a-evt", eventBase, EVENT_LENGTH, eventBlock);
        pio.register("acpi-pm1a-cnt", controlBase, CONTROL_LENGTH, controlBlock);
        pio.register("acpi-pm-tmr", timerBase, TIMER_LENGTH, timerBlock);
    }

    public BusDevice eventBlock() { return eventBlock; }

    public BusDevice controlBlock() { return controlBlock; }

    public BusDevice timerBlock() { return timerBlock; }

    private static long mask(int size) {
        return size >= 8 ? -1L : (1L << (8 * size)) - 1;
    }

    /** Timer ticks since start, truncated to the timer's width. */
    private long timerValue() {
        return rawTicks() & (timer32 ? 0xffff_ffffL : 0xff_ffffL);
    }

    private long rawTicks() {
        long ns = clock.nanoTime() - startNanos;
        return (ns / 1_000_000_000L) * TIMER_HZ + (ns % 1_000_000_000L) * TIMER_HZ / 1_000_000_000L;
    }

    private synchronized long readEvent(int offset, int size) {
        // TMR_STS: the timer's most significant bit changed since the guest last cleared the flag.
        int msb = timer32 ? 31 : 23;
        if ((rawTicks() >>> msb) != (tmrStsTicks >>> msb)) {
            status |= STS_TMR;
        }
        long both = (status & 0xffff) | (long) (enable & 0xffff) << 16;
        return (both >>> (8 * offset)) & mask(size);
    }

    private synchronized void writeEvent(int offset, int size, long value) {
        long shifted = (value & mask(size)) << (8 * offset);
        long writeMask = mask(size) << (8 * offset);
        int sts = (int) (shifted & 0xffff);
        if ((sts & STS_TMR) != 0) {
            tmrStsTicks = rawTicks();
        }
        status &= ~sts; // write 1 to clear
        if ((writeMask & 0xffff_0000L) != 0) {
            int enMask = (int) ((writeMask >>> 16) & 0xffff);
            enable = (enable & ~enMask) | (int) ((shifted >>> 16) & enMask);
        }
        updateSci();
    }

    private synchronized long readControl(int offset, int size) {
        return ((control & ~CNT_SLP_EN) >>> (8 * offset)) & mask(size);
    }

    private void writeControl(int offset, int size, long value) {
        boolean off;
        synchronized (this) {
            long shifted = (value & mask(size)) << (8 * offset);
            int writeMask = (int) (mask(size) << (8 * offset)) & 0xffff;
            int v = (control & ~writeMask) | ((int) shifted & writeMask);
            control = v & ~CNT_SLP_EN;
            off = (v & CNT_SLP_EN) != 0 && ((v >> 10) & 7) == s5Type;
        }
        if (off) {
            powerOff.powerOff(); // outside the lock: the listener may stop vCPUs that wait for this device
        }
    }

    /** The host's power button: sets PWRBTN_STS, which raises an SCI if the guest enabled it. */
    public synchronized void pressPowerButton() {
        status |= STS_PWRBTN;
        updateSci();
    }

    private void updateSci() {
        boolean level = (status & enable & STS_PWRBTN) != 0;
        if (level != sciLevel) {
            sciLevel = level;
            sci.set(level);
        }
    }

    /** Whether the SCI line is asserted now. */
    public synchronized boolean sciAsserted() {
        return sciLevel;
    }
}
