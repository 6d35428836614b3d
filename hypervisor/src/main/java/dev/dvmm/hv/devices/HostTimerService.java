package dev.dvmm.hv.devices;

import java.util.Arrays;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * Host timers on one daemon platform thread, driven by {@link System#nanoTime()}.
 *
 * <p>A node has a handful of device timers (PIT, RTC, one LAPIC timer per vCPU), so the thread scans
 * them all for the earliest deadline instead of keeping a heap: arming is a volatile store and an
 * unpark, and nothing is allocated per arming or per expiry. Expiry actions run on this thread and must
 * be short (set a flag, raise an IRQ, kick a vCPU).
 */
public final class HostTimerService implements TimerService, AutoCloseable {
    // Only errors are logged here: the holder keeps Log4j (hundreds of classes) out of every start-up
    // until one happens.
    private static final class Log {
        static final Logger LOG = LogManager.getLogger(HostTimerService.class);
    }
    private static final long DISARMED = Long.MAX_VALUE;

    private final Thread thread;
    private volatile Timer[] timers = new Timer[0];
    private volatile boolean closed;

    public HostTimerService(String name) {
        thread = Thread.ofPlatform().name(name).daemon(true).unstarted(this::run);
        thread.start();
    }

    @Override
    public NanoClock clock() {
        return NanoClock.SYSTEM;
    }

    @Override
    public synchronized DeviceTimer newTimer(String name, Runnable onExpiry) {
        if (closed) {
            throw new DeviceException("timer service is closed: cannot create timer " + name);
        }
        Timer t = new Timer(name, onExpiry);
        Timer[] ts = Arrays.copyOf(timers, timers.length + 1);
        ts[ts.length - 1] = t;
        timers = ts;
        return t;
    }

    private void run() {
        while (!closed) {
            long now = System.nanoTime();
            long next = DISARMED;
            for (Timer t : timers) {
                long d = t.deadline.get();
                if (d != DISARMED && d - now <= 0) {
                    // Clear before running so that a re-arm from inside the action is kept.
                    if (t.deadline.compareAndSet(d, DISARMED)) {
                        t.fire();
                    }
                } else if (d != DISARMED && (next == DISARMED || d - next < 0)) {
                    next = d;
                }
            }
            // A timer armed during the scan unparks us, so a stale 'next' only costs one extra loop.
            if (next == DISARMED) {
                LockSupport.park(this);
            } else {
                long wait = next - System.nanoTime();
                if (wait > 0) {
                    LockSupport.parkNanos(this, wait);
                }
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        LockSupport.unpark(thread);
    }

    private final class Timer implements DeviceTimer {
        private final String name;
        private final Runnable action;
        private final AtomicLong deadline = new AtomicLong(DISARMED);

        Timer(String name, Runnable action) {
            this.name = name;
            this.action = action;
        }

        @Override
        public void arm(long deadlineNanos) {
            // DISARMED is the sentinel; a deadline that far away never fires anyway.
            deadline.set(deadlineNanos == DISARMED ? DISARMED - 1 : deadlineNanos);
            LockSupport.unpark(thread);
        }

        @Override
        public void cancel() {
            deadline.set(DISARMED);
        }

        void fire() {
            try {
                action.run();
            } catch (RuntimeException e) {
                Log.LOG.error("timer {} expiry failed: {}", name, e.toString());
            }
        }
    }
}
