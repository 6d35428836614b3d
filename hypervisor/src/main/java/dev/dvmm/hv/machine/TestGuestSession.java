package dev.dvmm.hv.machine;

import dev.dvmm.boot.testguest.TestGuest;
import dev.dvmm.hv.arch.X86Setup;
import dev.dvmm.hv.devices.ConsolePort;
import dev.dvmm.hv.devices.CountingPort;
import dev.dvmm.hv.devices.DebugExit;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.time.Duration;

/**
 * A machine running one of the hand-written test guests: image loaded, console, debug-exit and
 * benchmark ports on the bus, every vCPU entered at the guest's entry with its index.
 */
public final class TestGuestSession implements AutoCloseable {
    private final Machine machine;
    private final ConsolePort console;
    private final CountingPort benchPort = new CountingPort();

    private TestGuestSession(Machine machine, OutputStream consoleOut) {
        this.machine = machine;
        this.console = new ConsolePort(consoleOut);
        machine.pio().register("console", TestGuest.CONSOLE_PORT, 8, console);
        DebugExit exit = new DebugExit((vcpu, status) -> machine.runner(vcpu).requestStop(status));
        machine.pio().register("debug-exit", TestGuest.EXIT_PORT, 4, exit);
        machine.mmio().register("debug-exit", TestGuest.MMIO_EXIT, 4, exit);
        machine.pio().register("bench", TestGuest.BENCH_PORT, 1, benchPort);
    }

    /** Real-mode guest on one vCPU. */
    public static TestGuestSession realMode(long memoryBytes, OutputStream consoleOut) {
        Machine m = Machine.create(1, memoryBytes);
        try {
            TestGuestSession s = new TestGuestSession(m, consoleOut);
            s.load(TestGuest.REAL_MODE);
            X86Setup.enterRealMode(m.runner(0).vcpu(), TestGuest.REAL_MODE.loadAddress());
            return s;
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
    }

    /** Long-mode guest: every vCPU runs test {@code testId} with {@code param}. */
    public static TestGuestSession longMode(int vcpus, long memoryBytes, int testId, long param, OutputStream consoleOut) {
        Machine m = Machine.create(vcpus, memoryBytes);
        try {
            TestGuestSession s = new TestGuestSession(m, consoleOut);
            s.load(TestGuest.LONG_MODE);
            X86Setup.writeLongModeTables(m.memory());
            for (int i = 0; i < vcpus; i++) {
                X86Setup.enterLongMode(m.runner(i).vcpu(), TestGuest.LONG_MODE.loadAddress(),
                        TestGuest.KSTACK_TOP - i * 0x1000L, testId, i, param);
            }
            return s;
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
    }

    /**
     * Long-mode guest with nothing written to guest memory yet: call {@link #loadAndConfigure()} once
     * whatever must see the loader's writes (a userfaultfd, for example) is in place.
     */
    public static TestGuestSession longModeDeferred(int vcpus, long memoryBytes, int testId, long param,
                                                    OutputStream consoleOut) {
        Machine m = Machine.create(vcpus, memoryBytes);
        try {
            TestGuestSession s = new TestGuestSession(m, consoleOut);
            s.deferred = new long[] {testId, param};
            return s;
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
    }

    private long[] deferred;

    /** Loads the long-mode image and tables and enters every vCPU (for {@link #longModeDeferred}). */
    public void loadAndConfigure() {
        if (deferred == null) {
            throw new IllegalStateException("this session was already configured");
        }
        load(TestGuest.LONG_MODE);
        X86Setup.writeLongModeTables(machine.memory());
        for (int i = 0; i < machine.runners().size(); i++) {
            X86Setup.enterLongMode(machine.runner(i).vcpu(), TestGuest.LONG_MODE.loadAddress(),
                    TestGuest.KSTACK_TOP - i * 0x1000L, deferred[0], i, deferred[1]);
        }
        deferred = null;
    }

    private void load(TestGuest g) {
        byte[] image = g.image();
        MemorySegment.copy(MemorySegment.ofArray(image), 0, machine.memory().guestMapping(), g.loadAddress(), image.length);
    }

    public Machine machine() { return machine; }

    public ConsolePort console() { return console; }

    public CountingPort benchPort() { return benchPort; }

    /** Runs every vCPU to its debug exit and returns their statuses. */
    public int[] run(Duration timeout) throws InterruptedException {
        machine.start();
        return machine.awaitCompletion(timeout);
    }

    @Override
    public void close() {
        machine.close();
    }
}
