package dev.dvmm.hv.devices;

import dev.dvmm.hv.bus.BusDevice;
import dev.dvmm.hv.bus.IoBus;

/**
 * The PC keyboard controller (8042) at ports 0x60 (data) and 0x64 (status / command), with a minimal
 * keyboard behind it and no mouse.
 *
 * <p>Enough for Linux's i8042 and atkbd drivers to probe quickly and for the guest to reset the machine:
 * controller commands 0x20/0x60 (read/write the command byte), 0xA7/0xA8 (aux disable/enable), 0xA9 and
 * 0xAB (port tests, 0x00 = pass), 0xAA (self-test, 0x55 = pass), 0xAD/0xAE (keyboard disable/enable),
 * 0xC0 (input port), 0xD0/0xD1 (output port; writing bit 0 = 0 resets the CPU), 0xD2/0xD3 (write the
 * keyboard / aux output buffer, used by Linux's loopback checks), 0xD4 (write to the aux device) and
 * 0xF0-0xFF (pulse output lines; bit 0 clear pulses the CPU reset line, so 0xFE is the classic reset).
 * Bytes written to port 0x60 without a pending command go to the keyboard, which acknowledges with 0xFA
 * and answers reset (0xFF: FA AA), identify (0xF2: FA AB 83) and echo (0xEE: EE). The aux device answers
 * everything with 0xFE (resend), which PS/2 drivers treat as "no mouse" without waiting for a timeout.
 *
 * <p>Status register bits (IBM PC/AT technical reference): 0 output buffer full, 1 input buffer full
 * (always 0: commands complete at once), 2 system flag, 3 last write was a command, 4 keyboard not
 * inhibited, 5 output buffer holds aux data. IRQ 1 and IRQ 12 follow "output buffer full with keyboard
 * (aux) data" when the command byte enables them. State is guarded by this object's monitor.
 */
public final class I8042 {
    public static final int DATA_PORT = 0x60;
    public static final int COMMAND_PORT = 0x64;
    public static final int KEYBOARD_IRQ = 1;
    public static final int AUX_IRQ = 12;

    /** Told when the guest pulses the CPU reset line. */
    @FunctionalInterface
    public interface ResetListener {
        void reset();
    }

    private static final int STATUS_OBF = 0x01;
    private static final int STATUS_SYS = 0x04;
    private static final int STATUS_CMD = 0x08;
    private static final int STATUS_NOT_INHIBITED = 0x10;
    private static final int STATUS_AUX_OBF = 0x20;

    private static final int CTR_KBD_INT = 0x01;
    private static final int CTR_AUX_INT = 0x02;
    private static final int CTR_SYS = 0x04;
    private static final int CTR_KBD_DISABLE = 0x10;
    private static final int CTR_AUX_DISABLE = 0x20;
    private static final int CTR_XLATE = 0x40;

    private static final int QUEUE = 16;

    private final ResetListener resetListener;
    private final IrqLine kbdIrq;
    private final IrqLine auxIrq;

    // Output queue: bytes for the guest with a flag saying whether each came from the aux port.
    private final byte[] queue = new byte[QUEUE];
    private final boolean[] queueAux = new boolean[QUEUE];
    private int head;
    private int count;

    private int commandByte = CTR_KBD_INT | CTR_SYS | CTR_XLATE;
    private int outputPort = 0x03; // reset line inactive (1), A20 enabled
    private int pendingCommand; // controller command waiting for its data byte, or 0
    private boolean lastWriteWasCommand;
    private boolean kbdLevel;
    private boolean auxLevel;
    private long resets;

    private final BusDevice dataPort = new BusDevice() {
        @Override
        public long read(int vcpu, long offset, int size) {
            return readData();
        }

        @Override
        public void write(int vcpu, long offset, int size, long value) {
            if (writeData((int) value & 0xff)) {
                resetListener.reset(); // outside the lock: the listener may stop and wait for vCPUs
            }
        }
    };

    private final BusDevice commandPort = new BusDevice() {
        @Override
        public long read(int vcpu, long offset, int size) {
            return readStatus();
        }

        @Override
        public void write(int vcpu, long offset, int size, long value) {
            if (writeCommand((int) value & 0xff)) {
                resetListener.reset();
            }
        }
    };

    public I8042(ResetListener resetListener, IrqLine kbdIrq, IrqLine auxIrq) {
        this.resetListener = resetListener;
        this.kbdIrq = kbdIrq;
        this.auxIrq = auxIrq;
    }

    /** Registers port 0x60 and port 0x64 (0x61 between them belongs to the PIT's port B). */
    public void attach(IoBus pio) {
        pio.register("i8042-data", DATA_PORT, 1, dataPort);
        pio.register("i8042-command", COMMAND_PORT, 1, commandPort);
    }

    public BusDevice dataPort() { return dataPort; }

    public BusDevice commandPort() { return commandPort; }

    /** Times the guest pulsed the reset line. */
    public synchronized long resets() { return resets; }

    private synchronized int readStatus() {
        int s = STATUS_SYS | STATUS_NOT_INHIBITED | (lastWriteWasCommand ? STATUS_CMD : 0);
        if (count > 0) {
            s |= STATUS_OBF | (queueAux[head] ? STATUS_AUX_OBF : 0);
        }
        return s;
    }

    private synchronized int readData() {
        if (count == 0) {
            return 0; // real controllers return the last byte again; Linux never reads an empty buffer on purpose
        }
        int v = queue[head] & 0xff;
        head = (head + 1) % QUEUE;
        count--;
        // Reading empties the output buffer, so the line drops; the next byte raises a fresh edge.
        if (kbdLevel) {
            kbdLevel = false;
            kbdIrq.set(false);
        }
        if (auxLevel) {
            auxLevel = false;
            auxIrq.set(false);
        }
        updateIrqs();
        return v;
    }

    /** Returns true when the command pulsed the reset line. */
    private synchronized boolean writeCommand(int cmd) {
        boolean reset = false;
        lastWriteWasCommand = true;
        pendingCommand = 0;
        switch (cmd) {
            case 0x20 -> push(commandByte, false);
            case 0x60, 0xd1, 0xd2, 0xd3, 0xd4 -> pendingCommand = cmd;
            case 0xa7 -> commandByte |= CTR_AUX_DISABLE;
            case 0xa8 -> commandByte &= ~CTR_AUX_DISABLE;
            case 0xa9, 0xab -> push(0x00, false); // interface test passed
            case 0xaa -> {
                push(0x55, false); // self-test passed
                commandByte |= CTR_SYS;
            }
            case 0xad -> commandByte |= CTR_KBD_DISABLE;
            case 0xae -> commandByte &= ~CTR_KBD_DISABLE;
            case 0xc0 -> push(0x80, false); // input port: keyboard not inhibited
            case 0xd0 -> push(outputPort, false);
            default -> {
                if (cmd >= 0xf0 && (cmd & 1) == 0) {
                    reset = true; // 0xF0-0xFF pulse the output lines whose bit is 0; bit 0 is CPU reset
                    resets++;
                }
            }
        }
        updateIrqs();
        return reset;
    }

    /** Returns true when the byte pulsed the reset line (through the output port). */
    private synchronized boolean writeData(int v) {
        boolean reset = false;
        lastWriteWasCommand = false;
        int cmd = pendingCommand;
        pendingCommand = 0;
        switch (cmd) {
            case 0x60 -> commandByte = v;
            case 0xd1 -> {
                outputPort = v;
                if ((v & 1) == 0) {
                    reset = true;
                    resets++;
                }
            }
            case 0xd2 -> push(v, false);
            case 0xd3 -> push(v, true);
            case 0xd4 -> push(0xfe, true); // no mouse: ask for a resend, the driver gives up at once
            default -> keyboard(v);
        }
        updateIrqs();
        return reset;
    }

    private void keyboard(int v) {
        switch (v) {
            case 0xee -> push(0xee, false);
            case 0xf2 -> {
                push(0xfa, false);
                push(0xab, false); // MF2 keyboard
                push(0x83, false);
            }
            case 0xff -> {
                push(0xfa, false);
                push(0xaa, false); // basic assurance test passed
            }
            default -> push(0xfa, false);
        }
    }

    private void push(int v, boolean aux) {
        if (count == QUEUE) {
            return; // the guest stopped reading; drop like a full controller would
        }
        int tail = (head + count) % QUEUE;
        queue[tail] = (byte) v;
        queueAux[tail] = aux;
        count++;
    }

    private void updateIrqs() {
        boolean kbd = count > 0 && !queueAux[head] && (commandByte & CTR_KBD_INT) != 0;
        boolean aux = count > 0 && queueAux[head] && (commandByte & CTR_AUX_INT) != 0;
        if (kbd != kbdLevel) {
            kbdLevel = kbd;
            kbdIrq.set(kbd);
        }
        if (aux != auxLevel) {
            auxLevel = aux;
            auxIrq.set(aux);
        }
    }
}
