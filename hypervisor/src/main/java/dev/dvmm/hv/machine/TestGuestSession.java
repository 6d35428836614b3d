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
                        TestGuest.KSTACK_TOP - i * 0x1000L, testId, i, param, vcpus);
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
        int[] all = new int[vcpus];
        for (int i = 0; i < vcpus; i++) {
            all[i] = i;
        }
        return forNode(all, memoryBytes, testId, param, consoleOut);
    }

    /**
     * One node's share of a long-mode guest: only the vCPUs {@code vcpuIndices}. Nothing is written to
     * memory until {@link #loadImage()} (one node) and {@link #enterVcpus()} (every node).
     */
    public static TestGuestSession forNode(int[] vcpuIndices, long memoryBytes, int testId, long param,
                                           OutputStream consoleOut) {
        int max = 0;
        for (int v : vcpuIndices) {
            max = Math.max(max, v + 1);
        }
        return forNode(vcpuIndices, max, memoryBytes, testId, param, consoleOut);
    }

    /** As above, for a guest of {@code totalVcpus} vCPUs of which this node runs {@code vcpuIndices}. */
    public static TestGuestSession forNode(int[] vcpuIndices, int totalVcpus, long memoryBytes, int testId, long param,
                                           OutputStream consoleOut) {
        Machine m = Machine.create(vcpuIndices, memoryBytes);
        try {
            TestGuestSession s = new TestGuestSession(m, consoleOut);
            s.testId = testId;
            s.param = param;
            s.totalVcpus = totalVcpus;
            return s;
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
    }

    private int testId = -1;
    private long param;
    private int totalVcpus;

    /** Writes the long-mode image and its tables into guest memory (through the guest mapping). */
    public void loadImage() {
        load(TestGuest.LONG_MODE);
        X86Setup.writeLongModeTables(machine.memory());
    }

    /** Puts every vCPU of this machine at the long-mode entry with its global index. */
    public void enterVcpus() {
        if (testId < 0) {
            throw new IllegalStateException("not a deferred long-mode session");
        }
        for (var r : machine.runners()) {
            int i = r.vcpu().index();
            X86Setup.enterLongMode(r.vcpu(), TestGuest.LONG_MODE.loadAddress(), TestGuest.KSTACK_TOP - i * 0x1000L,
                    testId, i, param, totalVcpus);
        }
    }

    /** {@link #loadImage()} then {@link #enterVcpus()}. */
    public void loadAndConfigure() {
        loadImage();
        enterVcpus();
    }

    private void load(TestGuest g) {
        byte[] image = g.image();
        // Through a native copy: guest memory may be userfaultfd-backed (DSM), see Posix.copyNative.
        try (java.lang.foreign.Arena a = java.lang.foreign.Arena.ofConfined()) {
            MemorySegment buf = a.allocate(image.length);
            MemorySegment.copy(MemorySegment.ofArray(image), 0, buf, 0, image.length);
            dev.dvmm.bindings.Posix.copyNative(buf, 0, machine.memory().guestMapping(), g.loadAddress(), image.length);
        }
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
