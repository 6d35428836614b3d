package dev.dvmm.hv.devices;

import dev.dvmm.hv.bus.BusDevice;
import dev.dvmm.hv.bus.IoBus;
import java.time.Clock;

/**
 * The MC146818 real-time clock and CMOS RAM at ports 0x70 (index; bit 7 is the NMI mask) and 0x71 (data).
 *
 * <p>Registers follow the Motorola MC146818A datasheet: 0x00-0x09 seconds, seconds alarm, minutes, minutes
 * alarm, hours, hours alarm, day of week (1 = Sunday), day of month, month, year; status A (0x0A: UIP,
 * divider, rate select), B (0x0B: SET, PIE, AIE, UIE, SQWE, DM = binary, 24/12, DSE), C (0x0C: IRQF, PF, AF,
 * UF; read-only, cleared by reading) and D (0x0D: VRT). Time and date read in BCD or binary and in 24- or
 * 12-hour form (bit 7 = PM) as register B says; the century is at 0x32 (the PC convention that the ACPI
 * FADT's CENTURY field points to). The guest sets the clock the usual way: SET, write the fields, clear
 * SET; the RTC then keeps an offset to the injected wall clock, which it reads as UTC. Invalid dates are
 * ignored.
 *
 * <p>Interrupts on ISA IRQ 8: periodic (rate from register A: 2^(rs-1)/32768 s, rs 1 and 2 as 8 and 9),
 * update-ended (each second) and alarm (hours/minutes/seconds alarm, 0xC0-0xFF = don't care) set their flag
 * in register C; IRQF and the line follow when the flag's enable bit is set, until the guest reads C. A
 * host timer runs only while an interrupt is enabled; with none enabled the flags are computed when C is
 * read. UIP always reads 0 (updates are instantaneous).
 *
 * <p>Memory size bytes, as the PC BIOS convention (and QEMU/SeaBIOS) define them: 0x15/0x16 base memory
 * in KiB (640), 0x17/0x18 and 0x30/0x31 extended memory above 1 MiB in KiB (capped at 65535), 0x34/0x35
 * memory between 16 MiB and 4 GiB in 64 KiB units, 0x5B-0x5D memory above 4 GiB in 64 KiB units.
 * State is guarded by this object's monitor.
 */
public final class CmosRtc implements BusDevice {
    public static final int BASE_PORT = 0x70;
    public static final int PORT_COUNT = 2;
    public static final int IRQ = 8;

    static final int REG_A = 0x0a;
    static final int REG_B = 0x0b;
    static final int REG_C = 0x0c;
    static final int REG_D = 0x0d;
    static final int REG_CENTURY = 0x32;

    static final int B_SET = 0x80;
    static final int B_PIE = 0x40;
    static final int B_AIE = 0x20;
    static final int B_UIE = 0x10;
    static final int B_BINARY = 0x04;
    static final int B_24H = 0x02;

    static final int C_IRQF = 0x80;
    static final int C_PF = 0x40;
    static final int C_AF = 0x20;
    static final int C_UF = 0x10;

    private static final long KIB = 1024;
    private static final long MIB = 1024 * KIB;
    private static final long GIB = 1024 * MIB;

    private final Clock wallClock;
    private final NanoClock clock;
    private final DeviceTimer timer;
    private final IrqLine irq;
    private final byte[] ram = new byte[128];

    private int index;
    private boolean nmiMasked;
    private long offsetMillis;
    /** Time fields (seconds, minutes, hours, weekday, day, month, year, century) as binary values while frozen. */
    private final int[] frozen = new int[8];
    private final int[] scratch = new int[8];
    private boolean isFrozen;
    private int regC;
    private boolean irqLevel;
    private long lastCReadMillis;
    private long lastCReadNanos;
    private long nextPeriodic = Long.MAX_VALUE;
    private long nextSecondNanos = Long.MAX_VALUE;

    /**
     * @param wallClock the host's wall clock (the guest sees it as UTC)
     * @param timers host timers, whose clock drives the periodic interrupt
     * @param irq the IRQ 8 line
     * @param ramBelow4G guest RAM below 4 GiB in bytes
     * @param ramAbove4G guest RAM at and above 4 GiB in bytes
     */
    public CmosRtc(Clock wallClock, TimerService timers, IrqLine irq, long ramBelow4G, long ramAbove4G) {
        if (ramBelow4G < MIB || ramBelow4G > 4 * GIB || ramAbove4G < 0) {
            throw new DeviceException("CMOS: impossible RAM layout: " + ramBelow4G + " bytes below 4 GiB, "
                    + ramAbove4G + " above");
        }
        this.wallClock = wallClock;
        this.clock = timers.clock();
        this.timer = timers.newTimer("rtc", this::expire);
        this.irq = irq;
        ram[REG_A] = 0x26; // 32.768 kHz time base, 1024 Hz periodic rate
        ram[REG_B] = B_24H;
        ram[REG_D] = (byte) 0x80; // valid RAM and time
        int base = 640;
        ram[0x15] = (byte) base;
        ram[0x16] = (byte) (base >> 8);
        long ext = Math.min((ramBelow4G - MIB) / KIB, 0xffff);
        ram[0x17] = ram[0x30] = (byte) ext;
        ram[0x18] = ram[0x31] = (byte) (ext >> 8);
        long above16m = ramBelow4G > 16 * MIB ? Math.min((ramBelow4G - 16 * MIB) / (64 * KIB), 0xffff) : 0;
        ram[0x34] = (byte) above16m;
        ram[0x35] = (byte) (above16m >> 8);
        long above4g = Math.min(ramAbove4G / (64 * KIB), 0xff_ffff);
        ram[0x5b] = (byte) above4g;
        ram[0x5c] = (byte) (above4g >> 8);
        ram[0x5d] = (byte) (above4g >> 16);
        lastCReadMillis = wallClock.millis();
        lastCReadNanos = clock.nanoTime();
    }

    /** Registers ports 0x70-0x71. */
    public void attach(IoBus pio) {
        pio.register("cmos-rtc", BASE_PORT, PORT_COUNT, this);
    }

    @Override
    public synchronized long read(int vcpu, long offset, int size) {
        if (offset == 0) {
            return 0xff; // the index register is write-only
        }
        return switch (index) {
            case 0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, REG_CENTURY -> readTime(index);
            case REG_A -> ram[REG_A] & 0x7f; // UIP stays 0
            case REG_C -> readC();
            default -> ram[index] & 0xff;
        };
    }

    @Override
    public synchronized void write(int vcpu, long offset, int size, long value) {
        int v = (int) value & 0xff;
        if (offset == 0) {
            index = v & 0x7f;
            nmiMasked = (v & 0x80) != 0;
            return;
        }
        switch (index) {
            case 0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, REG_CENTURY -> writeTime(index, v);
            case REG_A -> {
                ram[REG_A] = (byte) (v & 0x7f);
                reschedule();
            }
            case REG_B -> writeB(v);
            case REG_C, REG_D -> { } // read-only
            default -> ram[index] = (byte) v;
        }
    }

    /** Whether the guest has masked NMIs through bit 7 of port 0x70. */
    public synchronized boolean nmiMasked() {
        return nmiMasked;
    }

    // ------------------------------------------------------------------ time fields

    private static int slot(int reg) {
        return switch (reg) {
            case 0x00 -> 0;
            case 0x02 -> 1;
            case 0x04 -> 2;
            case 0x06 -> 3;
            case 0x07 -> 4;
            case 0x08 -> 5;
            case 0x09 -> 6;
            default -> 7; // century
        };
    }

    /** Fills {@code f} with the current guest time as binary fields. */
    private void currentFields(int[] f) {
        long ms = wallClock.millis() + offsetMillis;
        long secs = Math.floorDiv(ms, 1000);
        long days = Math.floorDiv(secs, 86400);
        int sod = Math.floorMod(secs, 86400);
        f[0] = sod % 60;
        f[1] = sod / 60 % 60;
        f[2] = sod / 3600;
        f[3] = Math.floorMod(days + 4, 7) + 1; // 1970-01-01 was a Thursday; Sunday = 1
        // Civil date from days since the epoch (proleptic Gregorian, eras of 400 years).
        long z = days + 719468;
        long era = Math.floorDiv(z, 146097);
        long doe = z - era * 146097;
        long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        long mp = (5 * doy + 2) / 153;
        int day = (int) (doy - (153 * mp + 2) / 5 + 1);
        int month = (int) (mp < 10 ? mp + 3 : mp - 9);
        long year = yoe + era * 400 + (month <= 2 ? 1 : 0);
        f[4] = day;
        f[5] = month;
        f[6] = Math.floorMod(year, 100);
        f[7] = (int) Math.floorDiv(year, 100);
    }

    private static long daysFromCivil(long y, int m, int d) {
        y -= m <= 2 ? 1 : 0;
        long era = Math.floorDiv(y, 400);
        long yoe = y - era * 400;
        long doy = (153L * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
        long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
    }

    private int readTime(int reg) {
        int s = slot(reg);
        int v;
        if (isFrozen) {
            v = frozen[s];
        } else {
            currentFields(frozen);
            v = frozen[s];
        }
        int b = ram[REG_B];
        if (s == 2 && (b & B_24H) == 0) {
            int h12 = v % 12 == 0 ? 12 : v % 12;
            return encode(h12, b) | (v >= 12 ? 0x80 : 0);
        }
        return encode(v, b);
    }

    private void writeTime(int reg, int raw) {
        if (!isFrozen) {
            currentFields(frozen);
        }
        int b = ram[REG_B];
        int s = slot(reg);
        int v;
        if (s == 2 && (b & B_24H) == 0) {
            int h = decode(raw & 0x7f, b) % 12;
            v = (raw & 0x80) != 0 ? h + 12 : h;
        } else {
            v = decode(raw, b);
        }
        frozen[s] = v;
        isFrozen = true;
        if ((b & B_SET) == 0) {
            commit();
        }
    }

    private void writeB(int v) {
        int old = ram[REG_B];
        if ((v & B_SET) != 0) {
            v &= ~B_UIE; // datasheet: setting SET clears UIE
            if ((old & B_SET) == 0 && !isFrozen) {
                currentFields(frozen);
                isFrozen = true;
            }
        }
        ram[REG_B] = (byte) v;
        if ((v & B_SET) == 0 && isFrozen) {
            commit();
        }
        updateIrq();
        reschedule();
    }

    /** Turns the frozen fields into the new guest time; impossible dates leave the clock unchanged. */
    private void commit() {
        isFrozen = false;
        int[] f = frozen;
        if (f[0] > 59 || f[1] > 59 || f[2] > 23 || f[5] < 1 || f[5] > 12 || f[4] < 1 || f[4] > 31 || f[6] > 99) {
            return;
        }
        long year = f[7] * 100L + f[6];
        long days = daysFromCivil(year, f[5], f[4]);
        long secs = days * 86400 + f[2] * 3600L + f[1] * 60L + f[0];
        long now = wallClock.millis();
        offsetMillis = secs * 1000 + Math.floorMod(now, 1000) - now;
    }

    private static int encode(int v, int regB) {
        return (regB & B_BINARY) != 0 ? v : (v / 10) << 4 | v % 10;
    }

    private static int decode(int raw, int regB) {
        return (regB & B_BINARY) != 0 ? raw : (raw >> 4) * 10 + (raw & 0xf);
    }

    // ------------------------------------------------------------------ interrupts

    private long periodNanos() {
        int rs = ram[REG_A] & 0x0f;
        if (rs == 0) {
            return 0;
        }
        if (rs < 3) {
            rs += 7;
        }
        return (1L << (rs - 1)) * 1_000_000_000L / 32768;
    }

    private int readC() {
        // Flags for events since the last read, for guests that poll with interrupts disabled.
        long nowNanos = clock.nanoTime();
        long nowMillis = wallClock.millis() + offsetMillis;
        long period = periodNanos();
        if (period > 0 && nowNanos - lastCReadNanos >= period) {
            regC |= C_PF;
        }
        if (Math.floorDiv(nowMillis, 1000) != Math.floorDiv(lastCReadMillis, 1000) && !isFrozen) {
            regC |= C_UF;
            if (alarmMatches()) {
                regC |= C_AF;
            }
        }
        lastCReadNanos = nowNanos;
        lastCReadMillis = nowMillis;
        int v = regC | (irqLevel ? C_IRQF : 0);
        regC = 0;
        updateIrq();
        return v;
    }

    private boolean alarmMatches() {
        int b = ram[REG_B];
        currentFields(scratch);
        return alarmField(ram[0x01] & 0xff, scratch[0], b, false)
                && alarmField(ram[0x03] & 0xff, scratch[1], b, false)
                && alarmField(ram[0x05] & 0xff, scratch[2], b, true);
    }

    private static boolean alarmField(int raw, int value, int regB, boolean hours) {
        if (raw >= 0xc0) {
            return true; // don't care
        }
        if (hours && (regB & B_24H) == 0) {
            int h = decode(raw & 0x7f, regB) % 12;
            return ((raw & 0x80) != 0 ? h + 12 : h) == value;
        }
        return decode(raw, regB) == value;
    }

    private void updateIrq() {
        int b = ram[REG_B];
        boolean level = (regC & C_PF) != 0 && (b & B_PIE) != 0
                || (regC & C_AF) != 0 && (b & B_AIE) != 0
                || (regC & C_UF) != 0 && (b & B_UIE) != 0;
        if (level != irqLevel) {
            irqLevel = level;
            irq.set(level);
        }
    }

    private void reschedule() {
        int b = ram[REG_B];
        long now = clock.nanoTime();
        long period = periodNanos();
        nextPeriodic = (b & B_PIE) != 0 && period > 0 ? now + period : Long.MAX_VALUE;
        if ((b & (B_UIE | B_AIE)) != 0 && (b & B_SET) == 0) {
            long ms = wallClock.millis() + offsetMillis;
            nextSecondNanos = now + (1000 - Math.floorMod(ms, 1000)) * 1_000_000L;
        } else {
            nextSecondNanos = Long.MAX_VALUE;
        }
        arm();
    }

    private void arm() {
        long next = Math.min(nextPeriodic, nextSecondNanos);
        if (next == Long.MAX_VALUE) {
            timer.cancel();
        } else {
            timer.arm(next);
        }
    }

    private synchronized void expire() {
        long now = clock.nanoTime();
        int b = ram[REG_B];
        if (now - nextPeriodic >= 0) {
            regC |= C_PF;
            long period = periodNanos();
            // Skip periods a late host timer missed: one interrupt stands for them.
            nextPeriodic = period > 0 && (b & B_PIE) != 0
                    ? nextPeriodic + ((now - nextPeriodic) / period + 1) * period : Long.MAX_VALUE;
        }
        if (now - nextSecondNanos >= 0) {
            regC |= C_UF;
            if (alarmMatches()) {
                regC |= C_AF;
            }
            lastCReadMillis = wallClock.millis() + offsetMillis; // this second's flags are delivered
            nextSecondNanos = (b & (B_UIE | B_AIE)) != 0 ? now + 1_000_000_000L
                    - Math.floorMod(wallClock.millis() + offsetMillis, 1000) * 1_000_000L : Long.MAX_VALUE;
        }
        updateIrq();
        arm();
    }
}
