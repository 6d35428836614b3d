package dev.dvmm.hv.irq;

import dev.dvmm.hv.bus.BusDevice;
import dev.dvmm.hv.devices.DeviceTimer;
import dev.dvmm.hv.devices.NanoClock;
import dev.dvmm.hv.devices.TimerService;

/**
 * One vCPU's local APIC in xAPIC mode: the 4 KiB register page at 0xFEE00000 (offsets only), interrupt
 * acceptance and priority, IPIs through an {@link IpiRouter}, and the APIC timer.
 *
 * <p>Facts used (Intel SDM vol. 3A, chapter 11 "Advanced Programmable Interrupt Controller"): register
 * offsets of table 11-1; version 0x14 with "max LVT entry" 5 in bits 23:16 (six LVTs: timer, thermal,
 * performance, LINT0, LINT1, error; no CMCI); the processor priority PPR = TPR if TPR[7:4] >= ISRV[7:4],
 * otherwise ISRV[7:4]:0 (11.8.3.1); an IRR vector is deliverable when its priority class is above
 * PPR[7:4] (11.8.4); accepting moves it from IRR to ISR; EOI clears the highest ISR bit and, if that
 * vector's TMR bit is set (level-triggered), is broadcast to the IOAPICs (11.8.5); ESR is write-then-read
 * (a write latches the errors gathered since the last write, 11.5.3); vectors 0-15 are illegal for fixed
 * delivery (send/receive illegal vector errors); software disable (SVR bit 8 clear) masks every LVT and
 * keeps them masked (11.4.7.2); INIT resets the APIC except its ID (11.4.7.3) and puts the CPU into
 * wait-for-SIPI; the first SIPI received while waiting is latched, later ones are ignored (INIT level
 * de-assert is ignored as on Pentium 4 and later). Timer: divide configuration bits 0, 1, 3; one-shot
 * and periodic modes (TSC-deadline is not offered, its CPUID bit is cleared); the timer counts at the
 * 1 GHz APIC bus frequency KVM also uses, divided.
 *
 * <p>Thread-safety: one monitor per LAPIC guards all of its state. The owning vCPU thread takes it for
 * MMIO and injection, other threads (IPIs from other vCPUs, the IOAPIC, the timer thread) to accept
 * interrupts. Nothing is called out while it is held: the router, the EOI listener and the wake hook are
 * invoked after release, so the lock order device -> IOAPIC -> LAPIC never reverses. Nothing is
 * allocated per access or per interrupt.
 *
 * <p>The vCPU run loop uses {@link #hasInjectableInterrupt()}, {@link #acceptInterrupt()},
 * {@link #takeNmi()}, {@link #takeSmi()}, {@link #takeInit()}, {@link #waitingForSipi()},
 * {@link #takeSipi()} and installs a {@link #setWakeHook wake hook} that kicks its thread whenever
 * something new arrives.
 */
public final class Lapic implements BusDevice {
    /** Physical base address of the xAPIC register page. */
    public static final long DEFAULT_BASE = 0xFEE0_0000L;
    public static final int PAGE_SIZE = 0x1000;

    public static final int VERSION = 0x0005_0014;
    /** Timer input frequency (APIC bus), before the divider. */
    public static final long BUS_HZ = 1_000_000_000L;

    // Register offsets (SDM table 11-1).
    static final int REG_ID = 0x020;
    static final int REG_VERSION = 0x030;
    static final int REG_TPR = 0x080;
    static final int REG_APR = 0x090;
    static final int REG_PPR = 0x0a0;
    static final int REG_EOI = 0x0b0;
    static final int REG_RRD = 0x0c0;
    static final int REG_LDR = 0x0d0;
    static final int REG_DFR = 0x0e0;
    static final int REG_SVR = 0x0f0;
    static final int REG_ISR = 0x100;
    static final int REG_TMR = 0x180;
    static final int REG_IRR = 0x200;
    static final int REG_ESR = 0x280;
    static final int REG_ICR_LOW = 0x300;
    static final int REG_ICR_HIGH = 0x310;
    static final int REG_LVT_TIMER = 0x320;
    static final int REG_LVT_THERMAL = 0x330;
    static final int REG_LVT_PERF = 0x340;
    static final int REG_LVT_LINT0 = 0x350;
    static final int REG_LVT_LINT1 = 0x360;
    static final int REG_LVT_ERROR = 0x370;
    static final int REG_TIMER_INITIAL = 0x380;
    static final int REG_TIMER_CURRENT = 0x390;
    static final int REG_TIMER_DIVIDE = 0x3e0;

    static final int LVT_TIMER = 0;
    static final int LVT_THERMAL = 1;
    static final int LVT_PERF = 2;
    static final int LVT_LINT0 = 3;
    static final int LVT_LINT1 = 4;
    static final int LVT_ERROR = 5;
    /** Writable bits of each LVT, in LVT index order. */
    private static final int[] LVT_WRITABLE = {0x700ff, 0x107ff, 0x107ff, 0x1a7ff, 0x1a7ff, 0x100ff};

    static final int LVT_MASKED = 1 << 16;
    static final int LVT_LEVEL = 1 << 15;
    static final int TIMER_PERIODIC = 1 << 17;

    static final int SVR_ENABLE = 1 << 8;

    static final int ESR_SEND_ILLEGAL_VECTOR = 1 << 5;
    static final int ESR_RECEIVE_ILLEGAL_VECTOR = 1 << 6;
    static final int ESR_ILLEGAL_REGISTER = 1 << 7;

    private static final Runnable NO_WAKE = () -> { };

    private final int index;
    private final NanoClock clock;
    private final DeviceTimer timer;

    private volatile IpiRouter router;
    private volatile EoiListener eoiListener = EoiListener.NONE;
    private volatile Runnable wake = NO_WAKE;

    // Identity registers: written under the monitor, read without it by routers resolving destinations.
    private volatile int apicId;
    private volatile int logicalId;
    private volatile int model = ApicMessage.MODEL_FLAT;

    // Everything below is guarded by 'this'.
    private final int[] irr = new int[8];
    private final int[] isr = new int[8];
    private final int[] tmr = new int[8];
    private final int[] lvt = new int[6];
    private int tpr;
    private int svr;
    private int esrPending;
    private int esrLatched;
    private int icrLow;
    private int icrHigh;
    private int timerInitial;
    private int timerDivideConfig;
    private int timerShift; // log2 of the divisor
    private long timerStart;
    private long timerNextExpiry = Long.MAX_VALUE;
    private boolean nmiPending;
    private boolean smiPending;
    private boolean initPending;
    private boolean waitingForSipi;
    private int sipiVector = -1;
    private long accepted;
    private long timerFires;

    /**
     * @param index the vCPU index this LAPIC belongs to
     * @param apicId its initial APIC ID (what the MP table / MADT says)
     * @param bootstrap true for the BSP; application processors start in wait-for-SIPI
     * @param timers host timers for the APIC timer
     */
    public Lapic(int index, int apicId, boolean bootstrap, TimerService timers) {
        if (apicId < 0 || apicId > 0xfe) {
            throw new IllegalArgumentException("xAPIC IDs are 0..254 (0xFF is broadcast), not " + apicId);
        }
        this.index = index;
        this.clock = timers.clock();
        this.apicId = apicId;
        this.timer = timers.newTimer("lapic-timer-" + index, this::timerExpired);
        synchronized (this) {
            resetLocked();
            waitingForSipi = !bootstrap;
        }
    }

    public int index() { return index; }

    public int apicId() { return apicId; }

    /** LDR bits 31:24. */
    public int logicalId() { return logicalId; }

    /** DFR bits 31:28: {@link ApicMessage#MODEL_FLAT} or {@link ApicMessage#MODEL_CLUSTER}. */
    public int destinationModel() { return model; }

    /** Where ICR writes go. Must be set before the guest sends IPIs. */
    public void setRouter(IpiRouter router) { this.router = router; }

    /** Who hears EOIs of level-triggered vectors (the IOAPIC, or a forwarder to node 0). */
    public void setEoiListener(EoiListener listener) { this.eoiListener = listener; }

    /** Called (without locks held, from any thread) when an interrupt, NMI, SMI, INIT or SIPI arrives. */
    public void setWakeHook(Runnable hook) { this.wake = hook == null ? NO_WAKE : hook; }

    // ------------------------------------------------------------------ state reset

    private void resetLocked() {
        java.util.Arrays.fill(irr, 0);
        java.util.Arrays.fill(isr, 0);
        java.util.Arrays.fill(tmr, 0);
        java.util.Arrays.fill(lvt, LVT_MASKED);
        tpr = 0;
        svr = 0xff;
        esrPending = 0;
        esrLatched = 0;
        icrLow = 0;
        icrHigh = 0;
        logicalId = 0;
        model = ApicMessage.MODEL_FLAT;
        timerInitial = 0;
        timerDivideConfig = 0;
        timerShift = 1;
        timerNextExpiry = Long.MAX_VALUE;
        timer.cancel();
        nmiPending = false;
        smiPending = false;
    }

    // ------------------------------------------------------------------ bit vectors

    private static int highest(int[] bits) {
        for (int i = 7; i >= 0; i--) {
            int w = bits[i];
            if (w != 0) {
                return i * 32 + 31 - Integer.numberOfLeadingZeros(w);
            }
        }
        return -1;
    }

    private static boolean test(int[] bits, int v) {
        return (bits[v >>> 5] & (1 << (v & 31))) != 0;
    }

    private static void set(int[] bits, int v) {
        bits[v >>> 5] |= 1 << (v & 31);
    }

    private static void clear(int[] bits, int v) {
        bits[v >>> 5] &= ~(1 << (v & 31));
    }

    private int pprLocked() {
        int isrv = Math.max(highest(isr), 0);
        return (tpr & 0xf0) >= (isrv & 0xf0) ? tpr & 0xff : isrv & 0xf0;
    }

    private int aprLocked() {
        int isrv = Math.max(highest(isr), 0);
        int irrv = Math.max(highest(irr), 0);
        if ((tpr & 0xf0) >= (irrv & 0xf0) && (tpr & 0xf0) > (isrv & 0xf0)) {
            return tpr & 0xff;
        }
        return Math.max(tpr & 0xf0, Math.max(isrv & 0xf0, irrv & 0xf0));
    }

    private boolean softwareEnabled() {
        return (svr & SVR_ENABLE) != 0;
    }

    // ------------------------------------------------------------------ run-loop interface (own vCPU thread)

    /** Whether the highest requested vector is above the processor priority, i.e. ready to inject. */
    public synchronized boolean hasInjectableInterrupt() {
        int v = highest(irr);
        return v >= 0 && (v & 0xf0) > (pprLocked() & 0xf0);
    }

    /**
     * Accepts the highest deliverable interrupt: moves it from IRR to ISR and returns its vector for
     * KVM_INTERRUPT, or returns -1 if nothing is deliverable (another thread may have changed TPR-relevant
     * state since {@link #hasInjectableInterrupt()}).
     */
    public synchronized int acceptInterrupt() {
        int v = highest(irr);
        if (v < 0 || (v & 0xf0) <= (pprLocked() & 0xf0)) {
            return -1;
        }
        clear(irr, v);
        set(isr, v);
        accepted++;
        return v;
    }

    /** Whether an NMI waits for injection. */
    public synchronized boolean nmiPending() { return nmiPending; }

    /** Consumes a pending NMI (inject it with KVM_NMI when true). */
    public synchronized boolean takeNmi() {
        boolean p = nmiPending;
        nmiPending = false;
        return p;
    }

    /** Consumes a pending SMI; KVM guests without SMM support may ignore it. */
    public synchronized boolean takeSmi() {
        boolean p = smiPending;
        smiPending = false;
        return p;
    }

    /** Whether an INIT is pending (without consuming it). */
    public synchronized boolean pendingInit() { return initPending; }

    /**
     * Consumes a received INIT: the vCPU must reset its registers to the INIT state and stay out of
     * KVM_RUN until {@link #takeSipi()} returns a vector. The APIC's own state is already reset.
     */
    public synchronized boolean takeInit() {
        boolean p = initPending;
        initPending = false;
        return p;
    }

    /** True while the CPU is in wait-for-SIPI (application processors from power-on, any CPU after INIT). */
    public synchronized boolean waitingForSipi() { return waitingForSipi; }

    /** The latched startup vector, or -1; does not consume it. */
    public synchronized int pendingSipiVector() { return sipiVector; }

    /**
     * Consumes a latched SIPI: returns its vector (start at CS = vector << 8, IP = 0, i.e. physical address
     * vector << 12) and leaves wait-for-SIPI, or returns -1 if none arrived.
     */
    public synchronized int takeSipi() {
        int v = sipiVector;
        if (v >= 0) {
            sipiVector = -1;
            waitingForSipi = false;
        }
        return v;
    }

    /** APR, used to pick the target of a lowest-priority message. */
    public synchronized int arbitrationPriority() { return aprLocked(); }

    /** PPR now (diagnostics and tests). */
    public synchronized int processorPriority() { return pprLocked(); }

    /** Interrupts accepted into ISR so far. */
    public synchronized long acceptedInterrupts() { return accepted; }

    /** APIC timer expiries so far (masked or not). */
    public synchronized long timerFires() { return timerFires; }

    // ------------------------------------------------------------------ message reception (any thread)

    /**
     * A fixed or lowest-priority interrupt arrives. Vectors below 16 are refused with a receive-illegal-
     * vector error; a software-disabled APIC drops it (as KVM does).
     */
    public void acceptFixed(int vector, boolean levelTriggered) {
        boolean wakeUp;
        synchronized (this) {
            wakeUp = requestLocked(vector & 0xff, levelTriggered);
        }
        if (wakeUp) {
            wake.run();
        }
    }

    private boolean requestLocked(int vector, boolean levelTriggered) {
        if (vector < 16) {
            return errorLocked(ESR_RECEIVE_ILLEGAL_VECTOR);
        }
        if (!softwareEnabled()) {
            return false;
        }
        set(irr, vector);
        if (levelTriggered) {
            set(tmr, vector);
        } else {
            clear(tmr, vector);
        }
        return true;
    }

    /** Records an APIC error; raises the error LVT's interrupt if it is unmasked. */
    private boolean errorLocked(int bits) {
        esrPending |= bits;
        int e = lvt[LVT_ERROR];
        if ((e & LVT_MASKED) == 0 && (e & 0xff) >= 16) {
            set(irr, e & 0xff);
            clear(tmr, e & 0xff);
            return true;
        }
        return false;
    }

    public void raiseNmi() {
        synchronized (this) {
            nmiPending = true;
        }
        wake.run();
    }

    public void raiseSmi() {
        synchronized (this) {
            smiPending = true;
        }
        wake.run();
    }

    /** INIT: reset the APIC (except its ID) and enter wait-for-SIPI. */
    public void raiseInit() {
        synchronized (this) {
            resetLocked();
            initPending = true;
            waitingForSipi = true;
            sipiVector = -1;
        }
        wake.run();
    }

    /** Startup IPI: latched only while waiting for SIPI and none is latched yet. */
    public void raiseSipi(int vector) {
        boolean latched;
        synchronized (this) {
            latched = waitingForSipi && sipiVector < 0;
            if (latched) {
                sipiVector = vector & 0xff;
            }
        }
        if (latched) {
            wake.run();
        }
    }

    /**
     * A level change on the LINT0/LINT1 pin, delivered as its LVT entry says (fixed or NMI; ExtINT needs a
     * PIC that supplies vectors and is not supported). Edge-triggered entries act on the rising edge.
     */
    public void setLint(int pin, boolean level) {
        if (!level) {
            return;
        }
        int mode;
        boolean wakeUp = false;
        synchronized (this) {
            int e = lvt[pin == 0 ? LVT_LINT0 : LVT_LINT1];
            if ((e & LVT_MASKED) != 0) {
                return;
            }
            mode = (e >> 8) & 7;
            if (mode == ApicMessage.FIXED) {
                wakeUp = requestLocked(e & 0xff, (e & LVT_LEVEL) != 0);
            } else if (mode == ApicMessage.NMI) {
                nmiPending = true;
                wakeUp = true;
            }
        }
        if (wakeUp) {
            wake.run();
        }
    }

    // ------------------------------------------------------------------ MMIO

    @Override
    public long read(int vcpu, long offset, int size) {
        if (offset < 0 || offset >= 0x400) {
            return 0; // nothing is defined above the divide configuration register
        }
        int reg = (int) offset & 0x3f0;
        int v;
        synchronized (this) {
            v = readRegister(reg);
        }
        int shift = 8 * ((int) offset & 3);
        long value = Integer.toUnsignedLong(v) >>> shift;
        return size >= 4 ? value : value & ((1L << (8 * size)) - 1);
    }

    private int readRegister(int reg) {
        if (reg >= REG_ISR && reg < REG_ISR + 0x80) {
            return isr[(reg - REG_ISR) >> 4];
        }
        if (reg >= REG_TMR && reg < REG_TMR + 0x80) {
            return tmr[(reg - REG_TMR) >> 4];
        }
        if (reg >= REG_IRR && reg < REG_IRR + 0x80) {
            return irr[(reg - REG_IRR) >> 4];
        }
        return switch (reg) {
            case REG_ID -> apicId << 24;
            case REG_VERSION -> VERSION;
            case REG_TPR -> tpr;
            case REG_APR -> aprLocked();
            case REG_PPR -> pprLocked();
            case REG_LDR -> logicalId << 24;
            case REG_DFR -> model << 28 | 0x0fff_ffff;
            case REG_SVR -> svr;
            case REG_ESR -> esrLatched;
            case REG_ICR_LOW -> icrLow; // delivery status (bit 12) always idle: sending is synchronous
            case REG_ICR_HIGH -> icrHigh;
            case REG_LVT_TIMER -> lvt[LVT_TIMER];
            case REG_LVT_THERMAL -> lvt[LVT_THERMAL];
            case REG_LVT_PERF -> lvt[LVT_PERF];
            case REG_LVT_LINT0 -> lvt[LVT_LINT0];
            case REG_LVT_LINT1 -> lvt[LVT_LINT1];
            case REG_LVT_ERROR -> lvt[LVT_ERROR];
            case REG_TIMER_INITIAL -> timerInitial;
            case REG_TIMER_CURRENT -> currentCountLocked(clock.nanoTime());
            case REG_TIMER_DIVIDE -> timerDivideConfig;
            default -> 0; // EOI, RRD and reserved registers read as zero
        };
    }

    @Override
    public void write(int vcpu, long offset, int size, long value) {
        if (size != 4 || (offset & 0xf) != 0) {
            return; // xAPIC registers are 32 bits wide and 16-byte aligned; other accesses are dropped
        }
        int reg = (int) offset;
        int v = (int) value;
        int eoiVector = -1;
        boolean send = false;
        boolean wakeUp = false;
        synchronized (this) {
            switch (reg) {
                case REG_ID -> apicId = v >>> 24 == 0xff ? apicId : v >>> 24;
                case REG_TPR -> tpr = v & 0xff;
                case REG_EOI -> eoiVector = eoiLocked();
                case REG_LDR -> logicalId = v >>> 24;
                case REG_DFR -> model = (v >>> 28) == ApicMessage.MODEL_CLUSTER ? ApicMessage.MODEL_CLUSTER
                        : ApicMessage.MODEL_FLAT;
                case REG_SVR -> writeSvr(v);
                case REG_ESR -> {
                    esrLatched = esrPending;
                    esrPending = 0;
                }
                case REG_ICR_LOW -> {
                    icrLow = v & 0x000c_cfff;
                    send = true;
                }
                case REG_ICR_HIGH -> icrHigh = v & 0xff00_0000;
                case REG_LVT_TIMER -> writeLvt(LVT_TIMER, v);
                case REG_LVT_THERMAL -> writeLvt(LVT_THERMAL, v);
                case REG_LVT_PERF -> writeLvt(LVT_PERF, v);
                case REG_LVT_LINT0 -> writeLvt(LVT_LINT0, v);
                case REG_LVT_LINT1 -> writeLvt(LVT_LINT1, v);
                case REG_LVT_ERROR -> writeLvt(LVT_ERROR, v);
                case REG_TIMER_INITIAL -> writeTimerInitial(v);
                case REG_TIMER_DIVIDE -> writeTimerDivide(v);
                case REG_VERSION, REG_APR, REG_PPR, REG_RRD, REG_TIMER_CURRENT -> { } // read-only
                default -> {
                    if (reg < REG_ISR || reg >= REG_IRR + 0x80) {
                        wakeUp = errorLocked(ESR_ILLEGAL_REGISTER);
                    } // ISR, TMR and IRR are read-only
                }
            }
        }
        if (wakeUp) {
            wake.run();
        }
        if (eoiVector >= 0) {
            eoiListener.eoi(eoiVector);
        }
        if (send) {
            sendIpi();
        }
    }

    /** Clears the highest ISR bit; returns its vector if it was level-triggered (to broadcast), else -1. */
    private int eoiLocked() {
        int v = highest(isr);
        if (v < 0) {
            return -1;
        }
        clear(isr, v);
        return test(tmr, v) ? v : -1;
    }

    private void writeSvr(int v) {
        svr = v & 0x3ff;
        if (!softwareEnabled()) {
            for (int i = 0; i < lvt.length; i++) {
                lvt[i] |= LVT_MASKED;
            }
        }
    }

    private void writeLvt(int which, int v) {
        int val = v & LVT_WRITABLE[which];
        if (!softwareEnabled()) {
            val |= LVT_MASKED;
        }
        lvt[which] = val;
        if (which == LVT_TIMER) {
            scheduleTimerLocked(clock.nanoTime());
        }
    }

    // ------------------------------------------------------------------ IPIs

    private void sendIpi() {
        int low;
        int high;
        int self;
        boolean illegal = false;
        boolean wakeUp = false;
        synchronized (this) {
            low = icrLow;
            high = icrHigh;
            self = apicId;
            int mode = (low >> 8) & 7;
            if ((mode == ApicMessage.FIXED || mode == ApicMessage.LOWEST_PRIORITY) && (low & 0xff) < 16) {
                illegal = true; // not sent (SDM 11.5.3: send illegal vector)
                wakeUp = errorLocked(ESR_SEND_ILLEGAL_VECTOR);
            }
        }
        if (illegal) {
            if (wakeUp) {
                wake.run();
            }
            return;
        }
        IpiRouter r = router;
        if (r == null) {
            return; // not wired yet: nothing to deliver to
        }
        r.send(self, (low >> 18) & 3, (low >> 11) & 1, high >>> 24, (low >> 8) & 7, low & 0xff,
                (low & (1 << 15)) != 0, (low & (1 << 14)) != 0);
    }

    // ------------------------------------------------------------------ timer

    private long divisor() {
        return 1L << timerShift;
    }

    private void writeTimerDivide(int v) {
        long now = clock.nanoTime();
        timerDivideConfig = v & 0xb;
        int code = (v & 3) | ((v & 8) >> 1);
        timerShift = code == 7 ? 0 : code + 1;
        scheduleTimerLocked(now);
    }

    private void writeTimerInitial(int v) {
        timerInitial = v;
        timerStart = clock.nanoTime();
        scheduleTimerLocked(timerStart);
    }

    private boolean periodic() {
        return (lvt[LVT_TIMER] & TIMER_PERIODIC) != 0;
    }

    private long periodNanos() {
        // 1 GHz bus: one tick per nanosecond before the divider.
        return Integer.toUnsignedLong(timerInitial) << timerShift;
    }

    private int currentCountLocked(long now) {
        if (timerInitial == 0) {
            return 0;
        }
        long ticks = (now - timerStart) >>> timerShift;
        long initial = Integer.toUnsignedLong(timerInitial);
        if (periodic()) {
            return (int) (initial - ticks % initial);
        }
        return ticks >= initial ? 0 : (int) (initial - ticks);
    }

    /** Arms the host timer for the next expiry after {@code now}, or cancels it. */
    private void scheduleTimerLocked(long now) {
        if (timerInitial == 0) {
            timerNextExpiry = Long.MAX_VALUE;
            timer.cancel();
            return;
        }
        long period = periodNanos();
        long elapsed = now - timerStart;
        if (periodic()) {
            timerNextExpiry = timerStart + (elapsed / period + 1) * period;
        } else {
            timerNextExpiry = elapsed < period ? timerStart + period : Long.MAX_VALUE;
        }
        if (timerNextExpiry == Long.MAX_VALUE) {
            timer.cancel();
        } else {
            timer.arm(timerNextExpiry);
        }
    }

    private void timerExpired() {
        boolean wakeUp = false;
        synchronized (this) {
            if (timerNextExpiry == Long.MAX_VALUE) {
                return;
            }
            long now = clock.nanoTime();
            if (now - timerNextExpiry < 0) {
                timer.arm(timerNextExpiry); // early wake-up
                return;
            }
            timerFires++;
            int e = lvt[LVT_TIMER];
            if ((e & LVT_MASKED) == 0) {
                wakeUp = requestLocked(e & 0xff, false);
            }
            if (periodic()) {
                // Periods a late host timer missed are merged into this one interrupt.
                scheduleTimerLocked(now);
            } else {
                timerNextExpiry = Long.MAX_VALUE;
            }
        }
        if (wakeUp) {
            wake.run();
        }
    }

    @Override
    public String toString() {
        return "LAPIC " + apicId + " (vCPU " + index + ")";
    }
}
