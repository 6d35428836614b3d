package dev.dvmm.boot.linux;

/**
 * A segment register's hidden state as KVM's struct kvm_segment holds it.
 *
 * @param selector GDT selector
 * @param base     linear base
 * @param limit    limit in bytes (already scaled by the granularity bit, as KVM wants it)
 * @param type     4-bit descriptor type
 * @param present  P bit
 * @param dpl      descriptor privilege level
 * @param db       D/B bit (default operand size 32)
 * @param s        S bit (code/data rather than system)
 * @param l        L bit (64-bit code)
 * @param g        G bit (4 KiB granularity)
 * @param avl      AVL bit
 * @param unusable whether the register holds no usable segment (KVM's "unusable")
 */
public record Segment(int selector, long base, long limit, int type, boolean present, int dpl,
                      boolean db, boolean s, boolean l, boolean g, boolean avl, boolean unusable) {

    /** The hidden state a descriptor loads; {@code high} is the upper quadword of a system descriptor. */
    public static Segment fromDescriptor(int selector, long descriptor, long high) {
        long rawLimit = (descriptor & 0xffff) | ((descriptor >>> 32) & 0xf_0000);
        long base = ((descriptor >>> 16) & 0xff_ffff) | ((descriptor >>> 32) & 0xff00_0000L);
        boolean s = ((descriptor >>> 44) & 1) != 0;
        if (!s) {
            base |= (high & 0xffff_ffffL) << 32;
        }
        boolean g = ((descriptor >>> 55) & 1) != 0;
        long limit = g ? (rawLimit << 12) | 0xfff : rawLimit;
        return new Segment(selector, base, limit, (int) ((descriptor >>> 40) & 0xf), ((descriptor >>> 47) & 1) != 0,
                (int) ((descriptor >>> 45) & 3), ((descriptor >>> 54) & 1) != 0, s, ((descriptor >>> 53) & 1) != 0,
                g, ((descriptor >>> 52) & 1) != 0, false);
    }

    /** A register that holds nothing (the LDTR at boot). */
    public static Segment unusableSegment() {
        return new Segment(0, 0, 0, 0, false, 0, false, false, false, false, false, true);
    }
}
