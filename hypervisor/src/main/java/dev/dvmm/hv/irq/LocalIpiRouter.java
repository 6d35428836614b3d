package dev.dvmm.hv.irq;

import dev.dvmm.hv.devices.DeviceException;

/**
 * Routes interrupt messages among the LAPICs of this node: resolution ({@link #resolve}: which LAPICs a
 * message addresses, by {@link ApicDestination}) is separate from delivery ({@link #deliver}: what a
 * delivery mode does to one LAPIC), so that a cluster router can resolve the same way and send the remote
 * part as messages.
 *
 * <p>Delivery modes (Intel SDM vol. 3A, 11.6.1): fixed sets the vector in IRR (and TMR for level
 * trigger); lowest priority goes to the addressed LAPIC with the lowest arbitration priority (ties rotate);
 * NMI, SMI, INIT and startup set the target's pending state; INIT level de-assert does nothing (Pentium 4
 * and later ignore it); ExtINT from an IOAPIC is dropped because no 8259 supplies vectors here.
 * At most 64 LAPICs per router, so a resolved set is one {@code long} and nothing is allocated per message.
 */
public final class LocalIpiRouter implements IpiRouter {
    private final Lapic[] lapics;
    private int rotation; // racy on purpose: only spreads lowest-priority ties

    public LocalIpiRouter(Lapic[] lapics) {
        if (lapics.length > 64) {
            throw new DeviceException("a local IPI router serves at most 64 LAPICs, not " + lapics.length);
        }
        this.lapics = lapics.clone();
    }

    /** A router over {@code lapics} that every one of them uses for its ICR writes. */
    public static LocalIpiRouter connect(Lapic... lapics) {
        LocalIpiRouter r = new LocalIpiRouter(lapics);
        for (Lapic l : lapics) {
            l.setRouter(r);
        }
        return r;
    }

    /** The LAPICs this router serves, by position. */
    public Lapic lapic(int position) {
        return lapics[position];
    }

    public int size() {
        return lapics.length;
    }

    /** Bit i set = the LAPIC at position i is addressed by the message. */
    public long resolve(int sourceApicId, int shorthand, int destMode, int destination) {
        long set = 0;
        for (int i = 0; i < lapics.length; i++) {
            Lapic l = lapics[i];
            if (ApicDestination.matches(l.apicId(), l.logicalId(), l.destinationModel(), sourceApicId,
                    shorthand, destMode, destination)) {
                set |= 1L << i;
            }
        }
        return set;
    }

    @Override
    public void send(int sourceApicId, int shorthand, int destMode, int destination, int deliveryMode,
                     int vector, boolean levelTriggered, boolean assertion) {
        long targets = resolve(sourceApicId, shorthand, destMode, destination);
        if (targets == 0) {
            return;
        }
        if (deliveryMode == ApicMessage.LOWEST_PRIORITY) {
            deliver(lapics[lowestPriority(targets)], deliveryMode, vector, levelTriggered, assertion);
            return;
        }
        while (targets != 0) {
            int i = Long.numberOfTrailingZeros(targets);
            targets &= targets - 1;
            deliver(lapics[i], deliveryMode, vector, levelTriggered, assertion);
        }
    }

    private int lowestPriority(long targets) {
        int start = Math.floorMod(rotation++, lapics.length);
        int best = -1;
        int bestApr = Integer.MAX_VALUE;
        for (int k = 0; k < lapics.length; k++) {
            int i = (start + k) % lapics.length;
            if ((targets & (1L << i)) == 0) {
                continue;
            }
            int apr = lapics[i].arbitrationPriority();
            if (apr < bestApr) {
                bestApr = apr;
                best = i;
            }
        }
        return best;
    }

    /** What one delivery mode does to one LAPIC. */
    public static void deliver(Lapic target, int deliveryMode, int vector, boolean levelTriggered,
                               boolean assertion) {
        switch (deliveryMode) {
            case ApicMessage.FIXED, ApicMessage.LOWEST_PRIORITY -> target.acceptFixed(vector, levelTriggered);
            case ApicMessage.NMI -> target.raiseNmi();
            case ApicMessage.SMI -> target.raiseSmi();
            case ApicMessage.INIT -> {
                if (assertion || !levelTriggered) {
                    target.raiseInit();
                }
            }
            case ApicMessage.STARTUP -> target.raiseSipi(vector);
            default -> { } // ExtINT and reserved modes: no vector source here
        }
    }
}
