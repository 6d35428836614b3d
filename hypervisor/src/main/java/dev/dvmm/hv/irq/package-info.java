/**
 * Userspace interrupt controllers: one xAPIC {@link dev.dvmm.hv.irq.Lapic} per vCPU, the
 * {@link dev.dvmm.hv.irq.IoApic}, IPI routing and a probe-only {@link dev.dvmm.hv.irq.Pic8259}.
 *
 * <p>dvmm creates no in-kernel irqchip, so every IPI passes through an {@link dev.dvmm.hv.irq.IpiRouter}
 * where a multi-node machine can forward it. Wiring on one node:
 * <pre>{@code
 * Lapic[] lapics = ...;                       // new Lapic(vcpu, apicId, vcpu == 0, timers)
 * LocalIpiRouter router = LocalIpiRouter.connect(lapics);
 * IoApic ioapic = new IoApic(ioapicId, router);
 * for (Lapic l : lapics) { l.setEoiListener(ioapic); l.setWakeHook(runner[l.index()]::kick); }
 * mmio.register("lapic", Lapic.DEFAULT_BASE, Lapic.PAGE_SIZE, new LapicPage(lapicsByVcpuIndex));
 * mmio.register("ioapic", IoApic.DEFAULT_BASE, IoApic.MMIO_SIZE, ioapic);
 * }</pre>
 * Devices get {@code ioapic.line(pin)}; the ISA IRQ to pin mapping is the one the MP table / MADT
 * declares (conventionally identity, except the PIT's IRQ 0 on pin 2 with an interrupt source override).
 *
 * <p>Locks: device -> IOAPIC -> LAPIC, never the other way; LAPICs call out (router, EOI listener, wake
 * hook) only after releasing their own lock.
 */
package dev.dvmm.hv.irq;
