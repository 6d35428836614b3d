package dev.dvmm.hv.irq;

/**
 * Field values of an interrupt message on the (x)APIC bus, as the LAPIC ICR and the IOAPIC redirection
 * entries encode them (Intel SDM vol. 3A, 11.6.1 "Interrupt Command Register"; 82093AA datasheet 3.2.4).
 */
public final class ApicMessage {
    private ApicMessage() { }

    // Delivery modes (ICR / redirection entry bits 10:8).
    public static final int FIXED = 0;
    public static final int LOWEST_PRIORITY = 1;
    public static final int SMI = 2;
    public static final int NMI = 4;
    public static final int INIT = 5;
    public static final int STARTUP = 6;
    public static final int EXTINT = 7;

    // Destination modes (bit 11).
    public static final int PHYSICAL = 0;
    public static final int LOGICAL = 1;

    // Destination shorthands (ICR bits 19:18).
    public static final int NO_SHORTHAND = 0;
    public static final int SELF = 1;
    public static final int ALL_INCLUDING_SELF = 2;
    public static final int ALL_EXCLUDING_SELF = 3;

    /** Physical destination that addresses every xAPIC. */
    public static final int BROADCAST = 0xff;

    /** Source id of messages that come from an IOAPIC rather than a LAPIC. */
    public static final int FROM_IOAPIC = -1;

    // Destination format register models (DFR bits 31:28).
    public static final int MODEL_FLAT = 0xf;
    public static final int MODEL_CLUSTER = 0x0;

    /** A readable name of a delivery mode, for diagnostics. */
    public static String deliveryModeName(int mode) {
        return switch (mode) {
            case FIXED -> "fixed";
            case LOWEST_PRIORITY -> "lowest-priority";
            case SMI -> "SMI";
            case NMI -> "NMI";
            case INIT -> "INIT";
            case STARTUP -> "startup";
            case EXTINT -> "ExtINT";
            default -> "reserved(" + mode + ")";
        };
    }
}
