package dev.dvmm.hv.devices;

import dev.dvmm.hv.bus.BusDevice;
import dev.dvmm.hv.bus.IoBus;

/**
 * The Intel 8254 programmable interval timer (ports 0x40-0x43) and the PC's system control port B
 * (0x61), which gates channel 2 and reads back its output.
 *
 * <p>Semantics follow the Intel 8254 datasheet (order no. 231164): control word at 0x43 (SC, RW, M, BCD),
 * counter latch command (RW = 00), read-back command (SC = 11: latch count and/or status of several
 * counters), lobyte/hibyte access with separate write and read flip-flops, counts of 0 meaning 65536
 * (10000 in BCD). Modes: 0 interrupt on terminal count, 1 hardware-retriggerable one-shot, 2 rate
 * generator, 3 square wave, 4 software-triggered strobe, 5 hardware-triggered strobe (6 and 7 alias 2
 * and 3). Gate low suspends counting in modes 0 and 4 and holds OUT high in modes 2 and 3; a rising gate
 * restarts modes 1, 2, 3 and 5. The input clock is 1.193182 MHz (Linux's PIT_TICK_RATE).
 *
 * <p>The counters are not stepped: every read computes the counter and OUT from the injected clock and
 * the time the count was loaded, so the value is exact at any moment and costs nothing while idle.
 * Channel 0 drives ISA IRQ 0: a {@link DeviceTimer} is armed for the next rising edge of OUT0 and the
 * expiry pulses the line; edges missed by a late host timer are merged into one interrupt. Simplifications:
 * a count takes effect when written (hardware loads it on the next clock pulse, and in modes 2 and 3 at
 * the end of the current period); an odd count in mode 3 reads as the next lower even value.
 *
 * <p>Port 0x61 (IBM PC/AT technical reference): bit 0 gate 2, bit 1 speaker data enable, bits 2-3 stored,
 * bit 4 refresh request toggling every 15.085 us, bit 5 OUT2. Linux's TSC calibration programs channel 2
 * in mode 0 and polls bit 5. All state is guarded by this object's monitor.
 */
public final class Pit8254 implements BusDevice {
    /** Input clock of the counters in Hz. */
    public static final long FREQUENCY_HZ = 1_193_182L;
    public static final int BASE_PORT = 0x40;
    public static final int PORT_COUNT = 4;
    public static final int PORT_B = 0x61;
    public static final int IRQ = 0;

    private static final long NS_PER_S = 1_000_000_000L;
    private static final long REFRESH_HALF_PERIOD_NS = 15_085;

    // RW field of the control word.
    private static final int RW_LATCH = 0;
    private static final int RW_LSB = 1;
    private static final int RW_MSB = 2;
    private static final int RW_WORD = 3;

    private final NanoClock clock;
    private final IrqLine irq0;
    private final DeviceTimer timer0;
    private final Channel[] channels = {new Channel(), new Channel(), new Channel()};
    private int portB;

    /** Counter state; the fields are guarded by the enclosing PIT's monitor. */
    private static final class Channel {
        int mode;
        int rw = RW_WORD;
        boolean bcd;
        int count = 0x10000; // N, decoded (1..65536 binary, 1..10000 BCD)
        boolean counting;
        boolean gate = true;
        /** Clock time from which the running part of the elapsed ticks is measured. */
        long runningSince;
        /** Ticks counted before runningSince (kept across a gate-low pause in modes 0 and 4). */
        long frozenTicks;
        boolean writeHigh; // next write of a word count is the MSB
        int pendingLsb;
        boolean readHigh; // next read of a word value returns the MSB
        int latchedValue = -1;
        boolean latchReadHigh;
        int latchedStatus = -1;
        boolean nullCount = true;
        boolean loaded; // a count was written since the last control word
        /** Elapsed tick count of the next IRQ edge (channel 0), or Long.MAX_VALUE. */
        long nextEdge = Long.MAX_VALUE;
    }

    public Pit8254(TimerService timers, IrqLine irq0) {
        this.clock = timers.clock();
        this.irq0 = irq0;
        this.timer0 = timers.newTimer("pit-ch0", this::expire);
        channels[2].gate = false; // port 0x61 bit 0 starts clear
    }

    /** Registers the counters at 0x40-0x43 and port B at 0x61. */
    public void attach(IoBus pio) {
        pio.register("pit", BASE_PORT, PORT_COUNT, this);
        pio.register("port-b", PORT_B, 1, portB());
    }

    /** System control port B (0x61) as its own bus device. */
    public BusDevice portB() {
        return portBDevice;
    }

    private final BusDevice portBDevice = new BusDevice() {
        @Override
        public long read(int vcpu, long offset, int size) {
            return readPortB();
        }

        @Override
        public void write(int vcpu, long offset, int size, long value) {
            writePortB((int) value);
        }
    };

    // ------------------------------------------------------------------ time arithmetic

    static long ticksIn(long ns) {
        // floor(ns * F / 1e9) without overflowing for long uptimes
        return (ns / NS_PER_S) * FREQUENCY_HZ + (ns % NS_PER_S) * FREQUENCY_HZ / NS_PER_S;
    }

    static long nanosFor(long ticks) {
        // ceil(ticks * 1e9 / F): the first instant at which ticksIn() reaches 'ticks'
        long rem = (ticks % FREQUENCY_HZ) * NS_PER_S;
        return (ticks / FREQUENCY_HZ) * NS_PER_S + (rem + FREQUENCY_HZ - 1) / FREQUENCY_HZ;
    }

    private long elapsed(Channel c, long now) {
        if (!c.counting) {
            return 0;
        }
        // The gate only triggers modes 1 and 5; in the other modes a low gate stops the count.
        boolean running = c.gate || c.mode == 1 || c.mode == 5;
        return c.frozenTicks + (running ? ticksIn(now - c.runningSince) : 0);
    }

    private static int modulus(Channel c) {
        return c.bcd ? 10000 : 0x10000;
    }

    /** The counting element's value now. */
    private int value(Channel c, long now) {
        if (!c.counting) {
            return c.count % modulus(c);
        }
        long e = elapsed(c, now);
        int n = c.count;
        return switch (c.mode) {
            case 2 -> (int) (n - e % n) % modulus(c);
            case 3 -> {
                long pos = e % n;
                int high = (n + 1) / 2;
                long inHalf = pos < high ? pos : pos - high;
                yield (int) ((n & ~1) - 2 * inHalf) % modulus(c);
            }
            default -> (int) Math.floorMod(n - e, (long) modulus(c));
        };
    }

    private boolean out(Channel c, long now) {
        if (!c.counting) {
            return c.mode != 0; // after the control word mode 0 starts low, the others high
        }
        long e = elapsed(c, now);
        int n = c.count;
        return switch (c.mode) {
            case 0, 1 -> e >= n;
            case 2 -> !c.gate || e % n != n - 1;
            case 3 -> !c.gate || e % n < (n + 1) / 2;
            default -> e != n; // modes 4 and 5: one clock low at terminal count
        };
    }

    // ------------------------------------------------------------------ bus access

    @Override
    public synchronized long read(int vcpu, long offset, int size) {
        if (offset >= 3) {
            return 0xff; // the control word register cannot be read on an 8254
        }
        Channel c = channels[(int) offset];
        if (c.latchedStatus >= 0) {
            int s = c.latchedStatus;
            c.latchedStatus = -1;
            return s;
        }
        if (c.latchedValue >= 0) {
            int v = c.latchedValue;
            if (c.rw == RW_WORD && !c.latchReadHigh) {
                c.latchReadHigh = true;
                return encode(c, v) & 0xff;
            }
            c.latchedValue = -1;
            c.latchReadHigh = false;
            return c.rw == RW_LSB ? encode(c, v) & 0xff : (encode(c, v) >> 8) & 0xff;
        }
        int v = encode(c, value(c, clock.nanoTime()));
        return switch (c.rw) {
            case RW_LSB -> v & 0xff;
            case RW_MSB -> (v >> 8) & 0xff;
            default -> {
                boolean high = c.readHigh;
                c.readHigh = !high;
                yield high ? (v >> 8) & 0xff : v & 0xff;
            }
        };
    }

    @Override
    public synchronized void write(int vcpu, long offset, int size, long value) {
        int v = (int) value & 0xff;
        if (offset == 3) {
            writeControl(v);
            return;
        }
        if (offset > 3) {
            return;
        }
        Channel c = channels[(int) offset];
        switch (c.rw) {
            case RW_LSB -> load((int) offset, v);
            case RW_MSB -> load((int) offset, v << 8);
            default -> {
                if (!c.writeHigh) {
                    c.pendingLsb = v;
                    c.writeHigh = true;
                    if (c.mode == 0) {
                        // Datasheet: in mode 0 writing the first byte stops the count and OUT goes low.
                        c.counting = false;
                        c.nullCount = true;
                        if (offset == 0) {
                            c.nextEdge = Long.MAX_VALUE;
                            timer0.cancel();
                        }
                    }
                } else {
                    c.writeHigh = false;
                    load((int) offset, c.pendingLsb | v << 8);
                }
            }
        }
    }

    private void writeControl(int v) {
        int sc = v >> 6;
        if (sc == 3) {
            readBack(v);
            return;
        }
        Channel c = channels[sc];
        int rw = (v >> 4) & 3;
        if (rw == RW_LATCH) {
            if (c.latchedValue < 0) {
                c.latchedValue = value(c, clock.nanoTime());
                c.latchReadHigh = false;
            }
            return;
        }
        c.rw = rw;
        int mode = (v >> 1) & 7;
        c.mode = mode > 5 ? mode - 4 : mode;
        c.bcd = (v & 1) != 0;
        c.counting = false;
        c.loaded = false;
        c.nullCount = true;
        c.writeHigh = false;
        c.readHigh = false;
        c.latchedValue = -1;
        c.latchedStatus = -1;
        if (sc == 0) {
            c.nextEdge = Long.MAX_VALUE;
            timer0.cancel();
        }
    }

    private void readBack(int v) {
        long now = clock.nanoTime();
        for (int i = 0; i < 3; i++) {
            if ((v & (2 << i)) == 0) {
                continue;
            }
            Channel c = channels[i];
            if ((v & 0x20) == 0 && c.latchedValue < 0) {
                c.latchedValue = value(c, now);
                c.latchReadHigh = false;
            }
            if ((v & 0x10) == 0 && c.latchedStatus < 0) {
                c.latchedStatus = (out(c, now) ? 0x80 : 0) | (c.nullCount ? 0x40 : 0)
                        | c.rw << 4 | c.mode << 1 | (c.bcd ? 1 : 0);
            }
        }
    }

    private void load(int index, int raw) {
        Channel c = channels[index];
        int n = c.bcd ? decodeBcd(raw) : raw;
        c.count = n == 0 ? modulus(c) : n;
        c.frozenTicks = 0;
        c.runningSince = clock.nanoTime();
        c.loaded = true;
        // Modes 1 and 5 wait for a gate trigger; the others count at once.
        c.counting = c.mode != 1 && c.mode != 5;
        c.nullCount = !c.counting;
        if (index == 0) {
            scheduleFirstEdge(c);
        }
    }

    private static int decodeBcd(int raw) {
        return (raw >> 12 & 0xf) * 1000 + (raw >> 8 & 0xf) * 100 + (raw >> 4 & 0xf) * 10 + (raw & 0xf);
    }

    private static int encode(Channel c, int v) {
        if (!c.bcd) {
            return v;
        }
        return (v / 1000 % 10) << 12 | (v / 100 % 10) << 8 | (v / 10 % 10) << 4 | v % 10;
    }

    // ------------------------------------------------------------------ port B and gate 2

    private synchronized int readPortB() {
        long now = clock.nanoTime();
        int refresh = (int) ((now / REFRESH_HALF_PERIOD_NS) & 1) << 4;
        return (portB & 0x0f) | refresh | (out(channels[2], now) ? 0x20 : 0);
    }

    private synchronized void writePortB(int v) {
        portB = v & 0x0f;
        setGate(channels[2], (v & 1) != 0);
    }

    private void setGate(Channel c, boolean gate) {
        if (gate == c.gate) {
            return;
        }
        long now = clock.nanoTime();
        if (!gate) {
            if (c.mode != 1 && c.mode != 5) {
                c.frozenTicks = elapsed(c, now); // the count stops where it is
            }
            c.gate = false;
            return;
        }
        c.gate = true;
        if (c.mode == 0 || c.mode == 4) {
            c.runningSince = now; // resume where the count stopped
        } else if (c.loaded) {
            // A rising gate triggers modes 1 and 5 and reloads modes 2 and 3.
            c.counting = true;
            c.nullCount = false;
            c.frozenTicks = 0;
            c.runningSince = now;
        }
    }

    // ------------------------------------------------------------------ channel 0 interrupt

    private void scheduleFirstEdge(Channel c) {
        long first = switch (c.mode) {
            case 0 -> c.count;
            case 2, 3 -> c.count;
            case 4 -> c.count + 1L;
            default -> Long.MAX_VALUE;
        };
        c.nextEdge = c.counting ? first : Long.MAX_VALUE;
        armTimer0(c);
    }

    private void armTimer0(Channel c) {
        if (c.nextEdge == Long.MAX_VALUE) {
            timer0.cancel();
        } else {
            timer0.arm(c.runningSince + nanosFor(c.nextEdge));
        }
    }

    private void expire() {
        synchronized (this) {
            Channel c = channels[0];
            if (!c.counting || c.nextEdge == Long.MAX_VALUE) {
                return;
            }
            long e = elapsed(c, clock.nanoTime());
            if (e < c.nextEdge) {
                armTimer0(c); // woke early: wait for the edge
                return;
            }
            // Rising edge of OUT0: mode 0 at terminal count, 4 one clock later, 2 and 3 each period.
            irq0.pulse();
            c.nextEdge = (c.mode == 2 || c.mode == 3) ? (e / c.count + 1) * c.count : Long.MAX_VALUE;
            armTimer0(c);
        }
    }

    /** OUT of a channel now (for tests and diagnostics). */
    public synchronized boolean output(int channel) {
        return out(channels[channel], clock.nanoTime());
    }
}
