/**
 * Legacy PC devices, each a {@link dev.dvmm.hv.bus.BusDevice} that sees offsets only and is tested
 * without KVM. Time comes from an injected {@link dev.dvmm.hv.devices.NanoClock} and
 * {@link dev.dvmm.hv.devices.TimerService} ({@link dev.dvmm.hv.devices.HostTimerService} in the VMM, a
 * fake clock in tests); interrupts leave through {@link dev.dvmm.hv.devices.IrqLine}s.
 *
 * <p>Port map (ISA IRQ in brackets): PIT 0x40-0x43 [0] and port B 0x61, i8042 0x60 and 0x64 [1, 12],
 * CMOS/RTC 0x70-0x71 [8], COM1 0x3F8-0x3FF [4], ACPI PM1a event 0x600-0x603, PM1a control 0x604-0x605,
 * PM timer 0x608-0x60B (SCI [9]); the 8259 stub (package irq) at 0x20-0x21, 0xA0-0xA1, 0x4D0-0x4D1.
 */
package dev.dvmm.hv.devices;
