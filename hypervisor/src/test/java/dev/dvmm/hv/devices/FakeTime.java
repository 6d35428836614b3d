package dev.dvmm.hv.devices;

import java.util.ArrayList;
import java.util.List;

/**
 * Test time: a clock that moves only when told, and timers that fire, in deadline order, as it passes
 * their deadlines. Single-threaded: expiry actions run inside {@link #advance}.
 */
public final class FakeTime implements TimerService, NanoClock {
    private long now = 1_000_000_000L; // not zero, so that code that confuses 0 with "unset" shows up
    private final List<FakeTimer> timers = new ArrayList<>();

    @Override
    public NanoClock clock() {
        return this;
    }

    @Override
    public long nanoTime() {
        return now;
    }

    @Override
    public DeviceTimer newTimer(String name, Runnable onExpiry) {
        FakeTimer t = new FakeTimer(onExpiry);
        timers.add(t);
        return t;
    }

    /** Moves time forward by {@code ns}, firing every timer whose deadline is passed, each at its deadline. */
    public void advance(long ns) {
        long end = now + ns;
        while (true) {
            FakeTimer next = null;
            for (int i = 0; i < timers.size(); i++) { // indexed: the allocation test runs through here
                FakeTimer t = timers.get(i);
                if (t.armed && t.deadline <= end && (next == null || t.deadline < next.deadline)) {
                    next = t;
                }
            }
            if (next == null) {
                break;
            }
            now = Math.max(now, next.deadline);
            next.armed = false;
            next.fires++;
            next.action.run();
        }
        now = end;
    }

    /** Jumps time forward without running timers (a host that was late). */
    public void jump(long ns) {
        now += ns;
    }

    /** Runs every armed timer whose deadline has passed (after a {@link #jump}). */
    public void fireDue() {
        advance(0);
    }

    /** Number of armed timers (to check that idle devices keep no host timer running). */
    public int armedTimers() {
        int n = 0;
        for (FakeTimer t : timers) {
            if (t.armed) {
                n++;
            }
        }
        return n;
    }

    private static final class FakeTimer implements DeviceTimer {
        final Runnable action;
        boolean armed;
        long deadline;
        int fires;

        FakeTimer(Runnable action) {
            this.action = action;
        }

        @Override
        public void arm(long deadlineNanos) {
            armed = true;
            deadline = deadlineNanos;
        }

        @Override
        public void cancel() {
            armed = false;
        }
    }
}
