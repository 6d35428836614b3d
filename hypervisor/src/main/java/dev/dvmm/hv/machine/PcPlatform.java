package dev.dvmm.hv.machine;

import dev.dvmm.boot.testguest.TestGuest;
import dev.dvmm.hv.devices.AcpiPm;
import dev.dvmm.hv.devices.CmosRtc;
import dev.dvmm.hv.devices.DebugExit;
import dev.dvmm.hv.devices.HostTimerService;
import dev.dvmm.hv.devices.I8042;
import dev.dvmm.hv.devices.IrqLine;
import dev.dvmm.hv.devices.NanoClock;
import dev.dvmm.hv.devices.Pit8254;
import dev.dvmm.hv.devices.Uart8250;
import dev.dvmm.hv.irq.IoApic;
import dev.dvmm.hv.irq.Lapic;
import dev.dvmm.hv.irq.LapicPage;
import dev.dvmm.hv.irq.LocalIpiRouter;
import dev.dvmm.hv.irq.Pic8259;
import dev.dvmm.hv.vcpu.VcpuRunner;
import dev.dvmm.hv.vstate.GuestMemory;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Clock;

/**
 * The PC a Linux guest (or the test kernel) expects on one node: a userspace LAPIC per vCPU and an
 * IOAPIC, COM1, the i8042 (for reset), the PIT, the CMOS RTC, ACPI PM (power off), the probe-only 8259s
 * and the debug-exit port. ISA IRQs reach the IOAPIC pins the MP table and MADT declare (IRQ 0 on pin 2).
 */
public final class PcPlatform implements AutoCloseable {
    /** How the guest ended, when it ended by itself. */
    public enum Ending { RUNNING, POWER_OFF, RESET, DEBUG_EXIT, HALT }

    private final Machine machine;
    private final HostTimerService timers = new HostTimerService("dvmm-timers");
    private final Lapic[] lapics;
    private final IoApic ioapic;
    private final Uart8250 uart;
    private final ByteArrayOutputStream console = new ByteArrayOutputStream();
    private volatile Ending ending = Ending.RUNNING;
    private volatile long lastConsoleNanos = System.nanoTime();

    public PcPlatform(Machine machine, int ioapicId, OutputStream consoleOut) {
        this.machine = machine;
        int n = machine.runners().size();
        lapics = new Lapic[n];
        for (VcpuRunner r : machine.runners()) {
            int i = r.vcpu().index();
            lapics[i] = new Lapic(i, i, i == 0, timers);
        }
        LocalIpiRouter router = LocalIpiRouter.connect(lapics);
        ioapic = new IoApic(ioapicId, router);
        for (VcpuRunner r : machine.runners()) {
            Lapic l = lapics[r.vcpu().index()];
            l.setEoiListener(ioapic);
            l.setWakeHook(r::kick);
            r.attachLapic(l);
            r.setHaltListener(this::onHalt);
        }
        machine.mmio().register("lapic", Lapic.DEFAULT_BASE, Lapic.PAGE_SIZE, new LapicPage(lapics));
        machine.mmio().register("ioapic", IoApic.DEFAULT_BASE, IoApic.MMIO_SIZE, ioapic);

        OutputStream tee = new OutputStream() {
            @Override
            public void write(int b) throws IOException {
                synchronized (console) {
                    console.write(b);
                }
                lastConsoleNanos = System.nanoTime();
                if (consoleOut != null) {
                    consoleOut.write(b);
                    if (b == '\n') {
                        consoleOut.flush();
                    }
                }
            }
        };
        uart = new Uart8250(tee, ioapic.line(Uart8250.COM1_IRQ));
        uart.attach(machine.pio(), "com1", Uart8250.COM1_BASE);
        new I8042(() -> end(Ending.RESET, 0), IrqLine.NONE, IrqLine.NONE).attach(machine.pio());
        new Pit8254(timers, ioapic.line(2)).attach(machine.pio());
        GuestMemory mem = machine.memory();
        long below = Math.min(mem.size(), GuestMemory.MMIO_HOLE_START);
        new CmosRtc(Clock.systemUTC(), timers, ioapic.line(8), below, mem.size() - below).attach(machine.pio());
        new AcpiPm(NanoClock.SYSTEM, ioapic.line(9), () -> end(Ending.POWER_OFF, 0)).attach(machine.pio());
        new Pic8259().attach(machine.pio());
        machine.pio().register("debug-exit", TestGuest.EXIT_PORT, 4, new DebugExit((vcpu, status) -> end(Ending.DEBUG_EXIT, status)));
    }

    /** The guest asked to stop (power off, reset or debug exit): every vCPU stops with {@code status}. */
    private void end(Ending how, int status) {
        if (ending == Ending.RUNNING) {
            ending = how;
        }
        for (VcpuRunner r : machine.runners()) {
            r.requestStop(status);
        }
    }

    public Ending ending() { return ending; }

    private final java.util.Set<Integer> halted = java.util.concurrent.ConcurrentHashMap.newKeySet();

    /** Every vCPU halted with interrupts off (Linux's "System halted" after poweroff without ACPI). */
    private void onHalt(int vcpu) {
        halted.add(vcpu);
        if (halted.size() == machine.runners().size()) {
            end(Ending.HALT, 0);
        }
    }

    public Lapic lapic(int vcpu) { return lapics[vcpu]; }

    public IoApic ioapic() { return ioapic; }

    public Uart8250 uart() { return uart; }

    /** {@link System#nanoTime} of the guest's last console byte (of the platform's creation before any). */
    public long lastConsoleNanos() { return lastConsoleNanos; }

    /** Everything the guest wrote to COM1. */
    public String consoleText() {
        synchronized (console) {
            return console.toString(StandardCharsets.ISO_8859_1);
        }
    }

    @Override
    public void close() {
        timers.close();
    }
}
