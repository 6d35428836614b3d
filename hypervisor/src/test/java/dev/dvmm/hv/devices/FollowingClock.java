package dev.dvmm.hv.devices;

import java.time.Clock;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;

/** A wall clock that starts at a given instant and moves with a {@link FakeTime}. */
public final class FollowingClock extends Clock {
    private final FakeTime time;
    private final long baseMillis;
    private final long baseNanos;

    public FollowingClock(FakeTime time, Instant start) {
        this.time = time;
        this.baseMillis = start.toEpochMilli();
        this.baseNanos = time.nanoTime();
    }

    @Override
    public long millis() {
        return baseMillis + (time.nanoTime() - baseNanos) / 1_000_000L;
    }

    @Override
    public Instant instant() {
        return Instant.ofEpochMilli(millis());
    }

    @Override
    public ZoneId getZone() {
        return ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(ZoneId zone) {
        throw new UnsupportedOperationException("UTC only");
    }
}
