package dev.dvmm.hv.irq;

/**
 * Which APICs a message addresses: pure functions of the message and of one APIC's identity registers,
 * kept apart from delivery so that a cluster router can resolve local and remote targets alike.
 *
 * <p>Rules (Intel SDM vol. 3A, 11.6.2 "Determining IPI Destination"): physical mode matches the 8-bit APIC
 * ID, 0xFF addresses all; logical flat model (DFR = 0xF) matches when the destination bitmask and the
 * logical ID (LDR bits 31:24) share a bit; logical cluster model (DFR = 0x0) matches when the cluster
 * (high nibble) is equal or 0xF (all clusters) and the low nibbles share a bit. Shorthands override the
 * destination field: self, all including self, all excluding self.
 */
public final class ApicDestination {
    private ApicDestination() { }

    /**
     * @param apicId the candidate's APIC ID
     * @param logicalId the candidate's LDR bits 31:24
     * @param model the candidate's DFR model ({@link ApicMessage#MODEL_FLAT} or {@link ApicMessage#MODEL_CLUSTER})
     * @param sourceApicId the sender's APIC ID ({@link ApicMessage#FROM_IOAPIC} for an IOAPIC)
     */
    public static boolean matches(int apicId, int logicalId, int model, int sourceApicId,
                                  int shorthand, int destMode, int destination) {
        switch (shorthand) {
            case ApicMessage.SELF:
                return apicId == sourceApicId;
            case ApicMessage.ALL_INCLUDING_SELF:
                return true;
            case ApicMessage.ALL_EXCLUDING_SELF:
                return apicId != sourceApicId;
            default:
                break;
        }
        int dest = destination & 0xff;
        if (destMode == ApicMessage.PHYSICAL) {
            return dest == ApicMessage.BROADCAST || dest == apicId;
        }
        if (model == ApicMessage.MODEL_FLAT) {
            return (dest & logicalId) != 0;
        }
        int cluster = dest >> 4;
        return (cluster == 0xf || cluster == logicalId >> 4) && (dest & logicalId & 0xf) != 0;
    }
}
