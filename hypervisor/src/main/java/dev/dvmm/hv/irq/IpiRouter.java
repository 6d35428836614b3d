package dev.dvmm.hv.irq;

/**
 * Carries an interrupt message from a LAPIC's ICR or an IOAPIC redirection entry to the APICs it addresses.
 *
 * <p>LAPICs never deliver to each other directly: every message goes through the router, which is where a
 * multi-node machine sees (and forwards) each IPI. Implementations must not allocate per message and must
 * not call back into the sender while holding a lock the sender holds (senders call without their lock).
 */
public interface IpiRouter {
    /**
     * @param sourceApicId the sender's APIC ID, or {@link ApicMessage#FROM_IOAPIC}
     * @param shorthand one of the {@link ApicMessage} shorthands ({@code NO_SHORTHAND} for IOAPIC messages)
     * @param destMode {@link ApicMessage#PHYSICAL} or {@link ApicMessage#LOGICAL}
     * @param destination 8-bit destination field
     * @param deliveryMode one of the {@link ApicMessage} delivery modes
     * @param vector interrupt vector (fixed, lowest priority) or startup page (SIPI)
     * @param levelTriggered trigger mode of the message (true = level)
     * @param assertion the level bit of an ICR write (false only for an INIT level de-assert)
     */
    void send(int sourceApicId, int shorthand, int destMode, int destination, int deliveryMode, int vector,
              boolean levelTriggered, boolean assertion);
}
