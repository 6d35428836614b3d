package dev.dvmm.dsm.protocol;

import java.util.Arrays;

/**
 * A closed world for exhaustive checking: one real {@link ProtocolEngine} per node, FIFO channels per ordered node
 * pair, abstract memory (a page copy is one int: the last written value it holds, 0 for a zero page) with the
 * access rights the page actions set, and one vCPU per node that issues up to {@code opsPerNode} reads or writes
 * (any page, nondeterministically) and blocks on each fault like a real vCPU.
 *
 * <p>The world is decoded from a state encoding, one transition is applied, the invariants are checked and the
 * successor is encoded. Time is abstract: after decoding every hold timestamp is 0, and an event runs at now = 0
 * (the hold is still on) or now = holdNanos (it has passed); the checker explores both when it matters.
 */
final class CoherenceModel {
    static final byte NONE = 0;
    static final byte READ_ONLY = 1;
    static final byte WRITABLE = 2;

    /** How far a live version may lag or lead its page's directory version (checked in every state). */
    static final int VERSION_WINDOW = 2;

    static final int KIND_NEW_OP = 1;
    static final int KIND_RETRY_OP = 2;
    static final int KIND_DELIVER = 3;
    static final int KIND_TIMER = 4;
    static final int KIND_READ_DONE = 5;

    /** Which configuration to explore. */
    record Spec(int nodes, int pages, int opsPerNode, long holdNanos, int mutations, boolean oneSidedReads) {
        Spec(int nodes, int pages, int opsPerNode, long holdNanos, int mutations) {
            this(nodes, pages, opsPerNode, holdNanos, mutations, false);
        }

        Spec {
            if (pages > 255 || nodes > 15 || opsPerNode > 15) {
                throw new IllegalArgumentException("model bounds exceeded: " + this);
            }
        }

        @Override
        public String toString() {
            return nodes + " nodes x " + pages + " pages, " + opsPerNode + " ops/node, hold "
                + (holdNanos > 0 ? "on" : "off") + (oneSidedReads ? ", one-sided reads" : "")
                + (mutations != 0 ? ", mutation " + mutations : "");
        }
    }

    final Spec spec;
    final int nodes;
    final int pages;
    final ProtocolConfig config;
    final ProtocolEngine[] engines;
    final byte[][] rights;
    final int[][] value;
    final int[] latest;
    final int[] opsDone;
    final int[] curPage;
    final boolean[] curWrite;
    final boolean[] blocked;
    final long[][] channel;
    final int[] channelSize;
    /** One-sided reads in flight: the node read from, per reading node and page, or -1. */
    final int[][] readSource;

    private final StateWriter writer = new StateWriter();
    private final int[] versionShift;
    private final StateReader reader = new StateReader(new byte[0]);
    /** Value carried by the message being delivered, for installFromMessage. */
    private int deliveringValue = -1;
    private String violation;
    /** Non-null while replaying a trace: what the engines did. */
    private StringBuilder log;

    CoherenceModel(Spec spec) {
        this.spec = spec;
        nodes = spec.nodes();
        pages = spec.pages();
        // Stripe 1: consecutive pages have different homes, so multi-page configurations use several homes.
        config = new ProtocolConfig(nodes, pages, 1, spec.holdNanos(), nodes * pages, spec.oneSidedReads());
        engines = new ProtocolEngine[nodes];
        for (int n = 0; n < nodes; n++) {
            NodePort port = new NodePort(n);
            engines[n] = new ProtocolEngine(config, n, port, port, spec.mutations());
        }
        rights = new byte[nodes][pages];
        value = new int[nodes][pages];
        latest = new int[pages];
        opsDone = new int[nodes];
        curPage = new int[nodes];
        curWrite = new boolean[nodes];
        blocked = new boolean[nodes];
        channel = new long[nodes * nodes][8];
        channelSize = new int[nodes * nodes];
        readSource = new int[nodes][pages];
        versionShift = new int[pages];
    }

    // ---------------------------------------------------------------- state encoding

    /** The initial state: fresh engines, no copies anywhere, no messages, no ops done. */
    byte[] initialState() {
        StateWriter fresh = new StateWriter();
        for (int n = 0; n < nodes; n++) {
            NodePort port = new NodePort(n);
            new ProtocolEngine(config, n, port, port, spec.mutations()).encode(fresh);
        }
        StateReader in = new StateReader(fresh.toByteArray());
        for (ProtocolEngine engine : engines) {
            engine.decode(in);
        }
        for (int n = 0; n < nodes; n++) {
            Arrays.fill(rights[n], NONE);
            Arrays.fill(value[n], -1);
            Arrays.fill(readSource[n], -1);
            opsDone[n] = 0;
            curPage[n] = -1;
            curWrite[n] = false;
            blocked[n] = false;
        }
        Arrays.fill(channelSize, 0);
        Arrays.fill(latest, 0);
        return encode().toByteArray();
    }

    void decode(byte[] state) {
        decode(state, state.length);
    }

    void decode(byte[] state, int length) {
        reader.reset(state, length);
        for (ProtocolEngine engine : engines) {
            engine.decode(reader);
        }
        for (int n = 0; n < nodes; n++) {
            for (int p = 0; p < pages; p++) {
                rights[n][p] = (byte) reader.readInt();
                value[n][p] = reader.readInt();
                readSource[n][p] = reader.readInt();
            }
            opsDone[n] = reader.readInt();
            curPage[n] = reader.readInt();
            curWrite[n] = reader.readInt() != 0;
            blocked[n] = reader.readInt() != 0;
        }
        for (int c = 0; c < nodes * nodes; c++) {
            channelSize[c] = reader.readInt();
            for (int i = 0; i < channelSize[c]; i++) {
                channel[c][i] = reader.readLong();
            }
        }
        for (int p = 0; p < pages; p++) {
            latest[p] = reader.readInt();
        }
        if (!reader.atEnd()) {
            throw new IllegalStateException("state encoding has trailing bytes");
        }
        violation = null;
    }

    /**
     * Encodes the current world into the shared writer; returns it for fingerprinting. Versions of a page are
     * written relative to its directory version D (as is while D <= VERSION_WINDOW + 1, so the engine's absolute
     * checks against 0 and 1, live only for the first grants, still see real values; else shifted by
     * D - VERSION_WINDOW - 1, which keeps every live version >= 1): without this, ownership ping-pong would
     * make the state space infinite. {@link #checkInvariants} checks the window this relies on.
     */
    StateWriter encode() {
        for (int p = 0; p < pages; p++) {
            versionShift[p] = Math.max(0, engines[config.homeOf(p)].directoryVersion(p) - VERSION_WINDOW - 1);
        }
        writer.reset();
        for (ProtocolEngine engine : engines) {
            engine.encode(writer, versionShift);
        }
        for (int n = 0; n < nodes; n++) {
            for (int p = 0; p < pages; p++) {
                writer.writeInt(rights[n][p]);
                writer.writeInt(value[n][p]);
                writer.writeInt(readSource[n][p]);
            }
            writer.writeInt(opsDone[n]);
            writer.writeInt(curPage[n]);
            writer.writeInt(curWrite[n] ? 1 : 0);
            writer.writeInt(blocked[n] ? 1 : 0);
        }
        for (int c = 0; c < nodes * nodes; c++) {
            writer.writeInt(channelSize[c]);
            for (int i = 0; i < channelSize[c]; i++) {
                long m = channel[c][i];
                int v = msgVersion(m);
                int shift = versionShift[msgPage(m)];
                writer.writeLong(shift == 0 || v == 0 ? m : message(msgType(m), msgPage(m), msgRequester(m), v - shift,
                    msgValue(m), msgAcks(m)));
            }
        }
        for (int p = 0; p < pages; p++) {
            writer.writeInt(latest[p]);
        }
        return writer;
    }

    // ---------------------------------------------------------------- transitions

    static int code(int kind, int a, int b, int c, int variant) {
        return kind << 28 | a << 20 | b << 12 | c << 4 | variant;
    }

    static int kind(int code) {
        return code >>> 28;
    }

    static int argA(int code) {
        return (code >>> 20) & 0xFF;
    }

    static int argB(int code) {
        return (code >>> 12) & 0xFF;
    }

    static int argC(int code) {
        return (code >>> 4) & 0xFF;
    }

    static int variant(int code) {
        return code & 0xF;
    }

    /**
     * Enabled transitions of the decoded world, with variant 0 (hold still on). Returns the count written to
     * {@code out}.
     */
    int enabled(int[] out) {
        int count = 0;
        for (int n = 0; n < nodes; n++) {
            if (blocked[n]) {
                continue;
            }
            if (curPage[n] >= 0) {
                out[count++] = code(KIND_RETRY_OP, n, 0, 0, 0);
            } else if (opsDone[n] < spec.opsPerNode()) {
                for (int p = 0; p < pages; p++) {
                    out[count++] = code(KIND_NEW_OP, n, p, 0, 0);
                    out[count++] = code(KIND_NEW_OP, n, p, 1, 0);
                }
            }
        }
        for (int s = 0; s < nodes; s++) {
            for (int d = 0; d < nodes; d++) {
                if (channelSize[s * nodes + d] > 0) {
                    out[count++] = code(KIND_DELIVER, s, d, 0, 0);
                }
            }
        }
        for (int n = 0; n < nodes; n++) {
            for (int p = 0; p < pages; p++) {
                if (engines[n].deferredType(p) != 0) {
                    out[count++] = code(KIND_TIMER, n, p, 0, 0);
                }
                if (readSource[n][p] >= 0) {
                    out[count++] = code(KIND_READ_DONE, n, p, 0, 0);
                }
            }
        }
        return count;
    }

    int maxTransitions() {
        return nodes * pages * 2 + nodes * nodes + 2 * nodes * pages + 4;
    }

    /**
     * Applies one transition to the decoded world.
     *
     * @return the violation it caused, or null
     */
    String apply(int code) {
        violation = null;
        long now = variant(code) == 1 ? spec.holdNanos() : 0;
        int a = argA(code);
        try {
            switch (kind(code)) {
                case KIND_NEW_OP -> {
                    curPage[a] = argB(code);
                    curWrite[a] = argC(code) != 0;
                    access(a, now);
                }
                case KIND_RETRY_OP -> access(a, now);
                case KIND_DELIVER -> deliver(a, argB(code), now);
                case KIND_TIMER -> {
                    int page = argB(code);
                    if (!engines[a].retryDeferred(page, spec.holdNanos())) {
                        fail("timer for deferred page " + page + " at n" + a + " did nothing");
                    }
                }
                case KIND_READ_DONE -> readDone(a, argB(code), now);
                default -> throw new IllegalArgumentException("bad transition code " + code);
            }
        } catch (ProtocolException | IllegalStateException e) {
            fail("engine rejected an input: " + e.getMessage());
        }
        return violation;
    }

    private void access(int n, long now) {
        int p = curPage[n];
        boolean write = curWrite[n];
        byte r = rights[n][p];
        if (write ? r == WRITABLE : r != NONE) {
            if (write) {
                int v = n * spec.opsPerNode() + opsDone[n] + 1;
                value[n][p] = v;
                latest[p] = v;
                note("n" + n + " writes p" + p + " := " + v);
            } else {
                note("n" + n + " reads p" + p + " = " + value[n][p]);
                if (value[n][p] != latest[p]) {
                    fail("sequential consistency: n" + n + " read p" + p + " = " + value[n][p]
                        + " but the latest write stored " + latest[p]);
                }
            }
            opsDone[n]++;
            curPage[n] = -1;
            return;
        }
        note("n" + n + " " + (write ? "write" : "read") + " p" + p + " faults");
        blocked[n] = true;
        engines[n].onLocalFault(p, write, now);
    }

    private void deliver(int src, int dst, long now) {
        int c = src * nodes + dst;
        long m = channel[c][0];
        System.arraycopy(channel[c], 1, channel[c], 0, channelSize[c] - 1);
        channelSize[c]--;
        deliveringValue = msgValue(m);
        note("deliver n" + src + "->n" + dst + " " + describe(m) + (now > 0 ? " (hold passed)" : ""));
        engines[dst].onMessage(src, msgType(m), msgPage(m), msgRequester(m), msgVersion(m), msgAcks(m), now);
        deliveringValue = -1;
    }

    /**
     * A one-sided read completes: it fetches what the source's memory holds now. Any moment between start and
     * completion is a possible completion time here, and {@link #checkInvariants} checks the source in every state
     * in between, so a torn read of a changing page would be caught too.
     */
    private void readDone(int n, int p, long now) {
        int source = readSource[n][p];
        readSource[n][p] = -1;
        if (rights[source][p] == NONE) {
            fail("one-sided read: n" + n + " read p" + p + " from n" + source + ", which holds no copy");
        }
        deliveringValue = value[source][p];
        note("n" + n + " finishes its one-sided read of p" + p + " from n" + source + ": " + deliveringValue);
        engines[n].onRemoteReadDone(p, now);
        deliveringValue = -1;
    }

    /** Whether applying {@code code} with the hold still on made some engine defer a yield. */
    boolean holdMattered(long deferralsBefore) {
        return deferralCount() != deferralsBefore;
    }

    long deferralCount() {
        long sum = 0;
        for (ProtocolEngine engine : engines) {
            sum += engine.deferrals();
        }
        return sum;
    }

    // ---------------------------------------------------------------- messages

    static long message(int type, int page, int requester, int version, int value, int acks) {
        if (version < 0 || version > 0xFFFF || value < -1 || value > 0xFFFE || acks < 0 || acks > 0x7F) {
            throw new IllegalStateException("model message field out of range");
        }
        return type | (long) page << 8 | (long) requester << 16 | (long) version << 24 | (long) (value + 1) << 40
            | (long) acks << 56;
    }

    static int msgAcks(long m) {
        return (int) ((m >>> 56) & 0x7F);
    }

    static int msgType(long m) {
        return (int) (m & 0xFF);
    }

    static int msgPage(long m) {
        return (int) ((m >>> 8) & 0xFF);
    }

    static int msgRequester(long m) {
        return (int) ((m >>> 16) & 0xFF);
    }

    static int msgVersion(long m) {
        return (int) ((m >>> 24) & 0xFFFF);
    }

    static int msgValue(long m) {
        return (int) ((m >>> 40) & 0xFFFF) - 1;
    }

    static String describe(long m) {
        String s = MessageType.name(msgType(m)) + "(p" + msgPage(m) + " req=n" + msgRequester(m) + " v"
            + msgVersion(m) + (msgAcks(m) > 0 ? " acks=" + msgAcks(m) : "");
        return MessageType.carriesPage(msgType(m)) ? s + " data=" + msgValue(m) + ")" : s + ")";
    }

    private void enqueue(int src, int dst, long m) {
        int c = src * nodes + dst;
        if (channelSize[c] == channel[c].length) {
            channel[c] = Arrays.copyOf(channel[c], channelSize[c] * 2);
        }
        channel[c][channelSize[c]++] = m;
    }

    // ---------------------------------------------------------------- invariants

    /** Checks every state invariant of the current world; returns the first violation or null. */
    String checkInvariants() {
        for (int p = 0; p < pages; p++) {
            int writers = 0;
            int readers = 0;
            for (int n = 0; n < nodes; n++) {
                if (rights[n][p] == WRITABLE) {
                    writers++;
                } else if (rights[n][p] == READ_ONLY) {
                    readers++;
                }
                if (rights[n][p] != NONE && value[n][p] != latest[p]) {
                    return "coherence: n" + n + " can read p" + p + " = " + value[n][p] + " but the latest write stored "
                        + latest[p];
                }
                int state = engines[n].localState(p);
                byte expected = state == PageState.MODIFIED ? WRITABLE
                    : PageState.holdsCopy(state) ? READ_ONLY : NONE;
                if (rights[n][p] != expected) {
                    return "mapping: n" + n + " is " + PageState.name(state) + " on p" + p + " but its mapping is "
                        + rightsName(rights[n][p]);
                }
            }
            if (writers > 1 || (writers == 1 && readers > 0)) {
                return "single writer / multiple readers: p" + p + " has " + writers + " writable and " + readers
                    + " read-only copies";
            }
            for (int n = 0; n < nodes; n++) {
                int source = readSource[n][p];
                if (source >= 0 && (rights[source][p] == NONE || value[source][p] != latest[p])) {
                    return "one-sided read: n" + n + " is reading p" + p + " from n" + source + ", whose copy is "
                        + (rights[source][p] == NONE ? "gone" : "stale (" + value[source][p] + ", latest "
                        + latest[p] + ")");
                }
            }
            String window = checkVersionWindow(p);
            if (window != null) {
                return window;
            }
            String directory = checkDirectory(p);
            if (directory != null) {
                return directory;
            }
        }
        return null;
    }

    /** Every live non-zero version of a page lies within VERSION_WINDOW of its directory version (see {@link #encode}). */
    private String checkVersionWindow(int p) {
        int dir = engines[config.homeOf(p)].directoryVersion(p);
        for (int n = 0; n < nodes; n++) {
            int v = engines[n].localVersion(p);
            if (v != 0 && Math.abs(v - dir) > VERSION_WINDOW) {
                return "version window: n" + n + " holds p" + p + " version " + v + ", directory is at " + dir;
            }
        }
        for (int c = 0; c < nodes * nodes; c++) {
            for (int i = 0; i < channelSize[c]; i++) {
                long m = channel[c][i];
                if (msgPage(m) == p && msgVersion(m) != 0 && Math.abs(msgVersion(m) - dir) > VERSION_WINDOW) {
                    return "version window: in-flight " + describe(m) + ", directory is at " + dir;
                }
            }
        }
        return null;
    }

    private String checkDirectory(int p) {
        ProtocolEngine home = engines[config.homeOf(p)];
        boolean deferred = false;
        for (int n = 0; n < nodes; n++) {
            deferred |= engines[n].deferredType(p) != 0;
        }
        if (home.isBusy(p)) {
            return null;
        }
        if (deferred) {
            return "directory: p" + p + " is idle at its home while a yield of it is deferred";
        }
        for (int n = 0; n < nodes; n++) {
            if (readSource[n][p] >= 0) {
                return null; // in flight, like a message: the entry is not settled yet
            }
        }
        for (int c = 0; c < nodes * nodes; c++) {
            for (int i = 0; i < channelSize[c]; i++) {
                int type = msgType(channel[c][i]);
                if (msgPage(channel[c][i]) == p && type != MessageType.READ_REQUEST
                    && type != MessageType.WRITE_REQUEST) {
                    return null;
                }
            }
        }
        long holders = 0;
        for (int n = 0; n < nodes; n++) {
            if (rights[n][p] != NONE) {
                holders |= 1L << n;
                if (engines[n].localVersion(p) != home.directoryVersion(p)) {
                    return "directory: n" + n + " holds p" + p + " version " + engines[n].localVersion(p)
                        + ", directory says " + home.directoryVersion(p);
                }
            }
        }
        long copyset = home.directoryCopyset(p);
        int owner = home.directoryOwner(p);
        if (copyset != holders) {
            return "directory: p" + p + " copyset " + nodeSet(copyset) + " but holders are " + nodeSet(holders);
        }
        if (home.directoryModified(p)) {
            if (owner < 0 || copyset != 1L << owner || rights[owner][p] != WRITABLE) {
                return "directory: p" + p + " MODIFIED at owner n" + owner + " but copyset " + nodeSet(copyset);
            }
        } else if (home.directoryVersion(p) == 0 ? owner != -1 : owner < 0 || (copyset & 1L << owner) == 0) {
            return "directory: p" + p + " SHARED version " + home.directoryVersion(p) + " with owner n" + owner
                + " and copyset " + nodeSet(copyset);
        }
        return null;
    }

    /** For a state without enabled transitions: null if it is the proper end, else why it is a deadlock. */
    String checkQuiescent() {
        for (int n = 0; n < nodes; n++) {
            if (blocked[n]) {
                return "deadlock: n" + n + " vCPU still blocked on p" + curPage[n];
            }
            if (opsDone[n] != spec.opsPerNode()) {
                return "deadlock: n" + n + " vCPU finished " + opsDone[n] + " of " + spec.opsPerNode() + " ops";
            }
            for (int p = 0; p < pages; p++) {
                int state = engines[n].localState(p);
                if (state >= PageState.READ_PENDING) {
                    return "deadlock: n" + n + " left " + PageState.name(state) + " on p" + p;
                }
                if (engines[n].isHome(p) && engines[n].isBusy(p)) {
                    return "deadlock: home n" + n + " still busy on p" + p;
                }
            }
            if (engines[n].queuedRequests() != 0) {
                return "deadlock: home n" + n + " still has " + engines[n].queuedRequests() + " queued requests";
            }
        }
        return null;
    }

    // ---------------------------------------------------------------- tracing

    void startLog() {
        log = new StringBuilder();
    }

    String takeLog() {
        String s = log.toString();
        log.setLength(0);
        return s;
    }

    private void note(String what) {
        if (log != null) {
            if (!log.isEmpty()) {
                log.append("; ");
            }
            log.append(what);
        }
    }

    private void fail(String what) {
        if (violation == null) {
            violation = what;
        }
    }

    /** A readable dump of the decoded world. */
    String dump() {
        StringBuilder sb = new StringBuilder();
        for (int n = 0; n < nodes; n++) {
            sb.append("  n").append(n).append(": vCPU ops ").append(opsDone[n]).append('/').append(spec.opsPerNode());
            if (curPage[n] >= 0) {
                sb.append(blocked[n] ? ", blocked on " : ", retrying ").append(curWrite[n] ? "write p" : "read p")
                    .append(curPage[n]);
            }
            for (int p = 0; p < pages; p++) {
                sb.append(" | p").append(p).append(' ').append(PageState.name(engines[n].localState(p)))
                    .append(" v").append(engines[n].localVersion(p)).append(' ').append(rightsName(rights[n][p]));
                if (rights[n][p] != NONE) {
                    sb.append(" =").append(value[n][p]);
                }
                if (engines[n].deferredType(p) != 0) {
                    sb.append(" deferred ").append(MessageType.name(engines[n].deferredType(p)));
                }
                if (readSource[n][p] >= 0) {
                    sb.append(" reading from n").append(readSource[n][p]);
                }
                if (engines[n].isHome(p)) {
                    sb.append(" [home: owner n").append(engines[n].directoryOwner(p)).append(" copyset ")
                        .append(nodeSet(engines[n].directoryCopyset(p))).append(" v")
                        .append(engines[n].directoryVersion(p))
                        .append(engines[n].directoryModified(p) ? " MODIFIED" : " SHARED")
                        .append(engines[n].isBusy(p) ? " busy" : "").append(']');
                }
            }
            sb.append('\n');
        }
        for (int s = 0; s < nodes; s++) {
            for (int d = 0; d < nodes; d++) {
                int c = s * nodes + d;
                if (channelSize[c] > 0) {
                    sb.append("  channel n").append(s).append("->n").append(d).append(':');
                    for (int i = 0; i < channelSize[c]; i++) {
                        sb.append(' ').append(describe(channel[c][i]));
                    }
                    sb.append('\n');
                }
            }
        }
        return sb.toString();
    }

    static String rightsName(byte r) {
        return r == WRITABLE ? "RW" : r == READ_ONLY ? "RO" : "--";
    }

    static String nodeSet(long set) {
        StringBuilder sb = new StringBuilder("{");
        for (long rest = set; rest != 0; rest &= rest - 1) {
            if (sb.length() > 1) {
                sb.append(',');
            }
            sb.append('n').append(Long.numberOfTrailingZeros(rest));
        }
        return sb.append('}').toString();
    }

    // ---------------------------------------------------------------- the engines' ports

    /** One node's outbox and memory, feeding the world's channels and copies. */
    private final class NodePort implements Outbox, PageActions {
        private final int node;

        NodePort(int node) {
            this.node = node;
        }

        @Override
        public void send(int dstNode, int type, int page, int requester, int version, int acks) {
            checkDestination(dstNode, type);
            note("n" + node + " sends " + MessageType.name(type) + " to n" + dstNode);
            enqueue(node, dstNode, message(type, page, requester, version, -1, acks));
        }

        @Override
        public void sendWithPage(int dstNode, int type, int page, int requester, int version, int acks) {
            checkDestination(dstNode, type);
            if (rights[node][page] == NONE) {
                fail("n" + node + " sends page data of p" + page + " it does not hold");
            }
            note("n" + node + " sends " + MessageType.name(type) + " with data " + value[node][page] + " to n"
                + dstNode);
            enqueue(node, dstNode, message(type, page, requester, version, value[node][page], acks));
        }

        private void checkDestination(int dstNode, int type) {
            if (dstNode == node || dstNode < 0 || dstNode >= nodes) {
                fail("n" + node + " sends " + MessageType.name(type) + " to bad destination " + dstNode);
            }
        }

        @Override
        public void installZero(int page, boolean writable) {
            install(page, writable, 0, "zero page");
        }

        @Override
        public void installFromMessage(int page, boolean writable) {
            if (deliveringValue < 0) {
                fail("n" + node + " installs p" + page + " from a message that carries no data");
            }
            install(page, writable, deliveringValue, "data " + deliveringValue);
        }

        private void install(int page, boolean writable, int v, String what) {
            if (rights[node][page] != NONE) {
                fail("n" + node + " installs p" + page + " over a present copy");
            }
            rights[node][page] = writable ? WRITABLE : READ_ONLY;
            value[node][page] = v;
            note("n" + node + " installs p" + page + " " + what + (writable ? " RW" : " RO"));
        }

        @Override
        public void readRemote(int page, int source) {
            if (source == node || source < 0 || source >= nodes) {
                fail("n" + node + " starts a one-sided read of p" + page + " from bad node " + source);
            } else if (readSource[node][page] >= 0) {
                fail("n" + node + " starts a second one-sided read of p" + page);
            } else {
                readSource[node][page] = source;
                note("n" + node + " starts a one-sided read of p" + page + " from n" + source);
            }
        }

        @Override
        public void installFromRemoteRead(int page) {
            if (deliveringValue < 0) {
                fail("n" + node + " installs p" + page + " from a one-sided read that did not finish");
            }
            install(page, false, deliveringValue, "read " + deliveringValue);
        }

        @Override
        public void makeWritable(int page) {
            if (rights[node][page] != READ_ONLY) {
                fail("n" + node + " makes p" + page + " writable from " + rightsName(rights[node][page]));
            }
            rights[node][page] = WRITABLE;
            note("n" + node + " upgrades p" + page + " to RW");
        }

        @Override
        public void makeReadOnly(int page) {
            if (rights[node][page] != WRITABLE) {
                fail("n" + node + " makes p" + page + " read-only from " + rightsName(rights[node][page]));
            }
            rights[node][page] = READ_ONLY;
            note("n" + node + " downgrades p" + page + " to RO");
        }

        @Override
        public void invalidate(int page) {
            if (rights[node][page] == NONE) {
                fail("n" + node + " invalidates p" + page + " it does not hold");
            }
            rights[node][page] = NONE;
            value[node][page] = -1;
            note("n" + node + " invalidates p" + page);
        }

        @Override
        public void faultResolved(int page) {
            if (!blocked[node] || curPage[node] != page) {
                fail("n" + node + " resolves a fault on p" + page + " that its vCPU is not waiting for");
            }
            blocked[node] = false;
            note("n" + node + " wakes its vCPU");
        }
    }
}
