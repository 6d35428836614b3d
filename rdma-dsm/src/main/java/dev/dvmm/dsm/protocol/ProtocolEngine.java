package dev.dvmm.dsm.protocol;

import java.util.Arrays;

/**
 * One node's side of the home-based single-writer / multiple-reader page coherence protocol (rdma-dsm/PROTOCOL.md):
 * the directory entries of the pages homed here and the local state of every page.
 *
 * <p>Deterministic and single-threaded: no threads, clocks or I/O. The runtime funnels local faults, incoming
 * messages and timer ticks into one agent thread that calls this class; the exhaustive state-space test drives the
 * very same class. Messages this node sends to itself (it is the home of a page it faults on, or owns) are delivered
 * through an internal FIFO before the call returns. All state is in primitive arrays; no call allocates unless it
 * throws.
 */
public final class ProtocolEngine {
    /** Test-only fault injection: the home waits for one invalidation acknowledgement fewer than it must. */
    static final int MUTATE_FORGET_ONE_ACK = 1;
    /** Test-only fault injection: an owner serving a read keeps its copy writable. */
    static final int MUTATE_SKIP_DOWNGRADE = 2;
    /** Test-only fault injection: the home serves a read of a shared, already written page as a zero page. */
    static final int MUTATE_STALE_ZERO_FILL = 4;
    /** Test-only fault injection: a requester sends DONE when it starts a one-sided read, not when it has finished. */
    static final int MUTATE_DONE_BEFORE_READ = 8;
    /** Test-only fault injection: a writer is told to collect one invalidation ack fewer than the sharers send. */
    static final int MUTATE_FORGET_ONE_DIRECT_ACK = 16;

    private static final byte IDLE = 0;
    private static final byte AWAIT_ACKS = 1;
    private static final byte AWAIT_DONE = 2;
    private static final String[] PHASES = {"idle", "awaiting invalidation acks", "awaiting DONE"};

    private final ProtocolConfig config;
    private final int self;
    private final int nodes;
    private final int pages;
    private final int stripe;
    private final long holdNanos;
    private final Outbox outbox;
    private final PageActions actions;
    private final int mutations;

    // Holder side, indexed by page.
    private final byte[] local;
    private final int[] localVersion;
    private final long[] acquiredAt;
    private final byte[] deferredType;
    private final int[] deferredRequester;
    private final int[] deferredVersion;
    private final int[] deferredAcks;
    private final int[] deferredNext;
    // Requester side of a write: invalidation acks come straight from the sharers, in any order with the grant.
    private final int[] acksExpected;
    private final int[] acksReceived;
    private int deferredHead = -1;

    // Home side, indexed by home slot (only pages homed here).
    private final int homeSlots;
    private final int[] slotPage;
    private final int[] dirOwner;
    private final long[] dirCopyset;
    private final int[] dirVersion;
    private final boolean[] dirModified;
    private final byte[] phase;
    private final int[] txnRequester;
    private final boolean[] txnWrite;
    private final long[] awaitingAcks;
    // Acks the requester of the current write collects itself (sharers other than the home).
    private final int[] directAcks;
    // Nodes with a queued or active request per page: duplicates are rejected, so a page queues at most nodeCount.
    private final long[] requested;
    private final int[] queueHead;
    private final int[] queueTail;
    private final int[] slotRequester;
    private final boolean[] slotWrite;
    private final int[] slotNext;
    private int freeSlot;
    private int queuedRequests;

    // Loopback FIFO for messages to this node.
    private final int[] loopType;
    private final int[] loopPage;
    private final int[] loopRequester;
    private final int[] loopVersion;
    private final int[] loopAcks;
    private int loopHead;
    private int loopSize;

    private long deferrals;

    public ProtocolEngine(ProtocolConfig config, int self, Outbox outbox, PageActions actions) {
        this(config, self, outbox, actions, 0);
    }

    ProtocolEngine(ProtocolConfig config, int self, Outbox outbox, PageActions actions, int mutations) {
        if (self < 0 || self >= config.nodeCount()) {
            throw new ProtocolException("node id " + self + " is out of range 0.." + (config.nodeCount() - 1));
        }
        if (outbox == null || actions == null) {
            throw new ProtocolException("an engine needs an outbox and page actions");
        }
        this.config = config;
        this.self = self;
        this.nodes = config.nodeCount();
        this.pages = config.pageCount();
        this.stripe = config.stripePages();
        this.holdNanos = config.holdNanos();
        this.outbox = outbox;
        this.actions = actions;
        this.mutations = mutations;

        local = new byte[pages];
        localVersion = new int[pages];
        acquiredAt = new long[pages];
        deferredType = new byte[pages];
        deferredRequester = new int[pages];
        deferredVersion = new int[pages];
        deferredAcks = new int[pages];
        deferredNext = new int[pages];
        acksExpected = new int[pages];
        acksReceived = new int[pages];

        int count = 0;
        for (int p = 0; p < pages; p++) {
            if (config.homeOf(p) == self) {
                count++;
            }
        }
        homeSlots = count;
        slotPage = new int[count];
        for (int p = 0; p < pages; p++) {
            if (config.homeOf(p) == self) {
                slotPage[homeSlot(p)] = p;
            }
        }
        dirOwner = new int[count];
        dirCopyset = new long[count];
        dirVersion = new int[count];
        dirModified = new boolean[count];
        phase = new byte[count];
        txnRequester = new int[count];
        txnWrite = new boolean[count];
        awaitingAcks = new long[count];
        directAcks = new int[count];
        requested = new long[count];
        queueHead = new int[count];
        queueTail = new int[count];
        Arrays.fill(dirOwner, -1);
        Arrays.fill(txnRequester, -1);
        Arrays.fill(queueHead, -1);
        Arrays.fill(queueTail, -1);

        int capacity = config.requestQueueCapacity();
        slotRequester = new int[capacity];
        slotWrite = new boolean[capacity];
        slotNext = new int[capacity];
        resetQueuePool();

        // Each handled message sends at most one message to self; a home serving its queue can add one per node.
        int loopCapacity = 2 * nodes + 8;
        loopType = new int[loopCapacity];
        loopPage = new int[loopCapacity];
        loopRequester = new int[loopCapacity];
        loopVersion = new int[loopCapacity];
        loopAcks = new int[loopCapacity];
    }

    public ProtocolConfig config() {
        return config;
    }

    public int nodeId() {
        return self;
    }

    // ---------------------------------------------------------------- inputs

    /**
     * A local access to {@code page} faulted (the node lacks the rights). Starts a request, or resolves at once if
     * the rights arrived meanwhile, or waits for the request already outstanding for this page.
     */
    public void onLocalFault(int page, boolean write, long nowNanos) {
        if (page < 0 || page >= pages) {
            throw new ProtocolException("node " + self + ": local fault on page " + page
                + " out of range 0.." + (pages - 1));
        }
        try {
            switch (local[page]) {
                case PageState.INVALID -> {
                    local[page] = write ? PageState.WRITE_PENDING : PageState.READ_PENDING;
                    send(config.homeOf(page), write ? MessageType.WRITE_REQUEST : MessageType.READ_REQUEST,
                        page, self, 0);
                }
                case PageState.SHARED -> {
                    if (write) {
                        local[page] = PageState.UPGRADE_PENDING;
                        send(config.homeOf(page), MessageType.WRITE_REQUEST, page, self, 0);
                    } else {
                        actions.faultResolved(page);
                    }
                }
                case PageState.MODIFIED -> actions.faultResolved(page);
                case PageState.UPGRADE_PENDING, PageState.ACKS_PENDING -> {
                    if (!write) {
                        actions.faultResolved(page);
                    }
                }
                default -> {
                    // READ_PENDING / WRITE_PENDING: the outstanding request's completion wakes every waiter,
                    // and a writer woken by a read grant faults again and upgrades.
                }
            }
            drainLoopback(nowNanos);
        } catch (RuntimeException e) {
            loopSize = 0;
            throw e;
        }
    }

    /** A message that carries no ack count (every type but the write grants, FORWARD_WRITE and DATA_WRITE). */
    public void onMessage(int src, int type, int page, int requester, int version, long nowNanos) {
        onMessage(src, type, page, requester, version, 0, nowNanos);
    }

    /**
     * A message from another node; {@code acks} is the number of invalidation acks the requester of a write must
     * collect itself (write grants, FORWARD_WRITE, DATA_WRITE), else 0. Throws {@link ProtocolException}, changing
     * nothing, if it is impossible here.
     */
    public void onMessage(int src, int type, int page, int requester, int version, int acks, long nowNanos) {
        if (src < 0 || src >= nodes) {
            throw new ProtocolException("node " + self + ": message from node " + src
                + " out of range 0.." + (nodes - 1));
        }
        if (src == self) {
            throw new ProtocolException("node " + self + ": message from itself (self messages are internal)");
        }
        if (!MessageType.isValid(type)) {
            throw new ProtocolException("node " + self + ": " + MessageType.name(type) + " from node " + src);
        }
        if (page < 0 || page >= pages) {
            throw new ProtocolException("node " + self + ": " + MessageType.name(type) + " from node " + src
                + " for page " + page + " out of range 0.." + (pages - 1));
        }
        if (requester < 0 || requester >= nodes) {
            throw new ProtocolException("node " + self + ": " + MessageType.name(type) + " from node " + src
                + " for page " + page + " names requester " + requester + " out of range 0.." + (nodes - 1));
        }
        if (acks < 0 || acks >= nodes || (acks != 0 && !MessageType.carriesAckCount(type))) {
            throw new ProtocolException("node " + self + ": " + MessageType.name(type) + " from node " + src
                + " for page " + page + " carries an impossible ack count " + acks);
        }
        try {
            dispatch(src, type, page, requester, version, acks, nowNanos);
            drainLoopback(nowNanos);
        } catch (RuntimeException e) {
            loopSize = 0;
            throw e;
        }
    }

    /**
     * The one-sided read of {@code page} started by {@link PageActions#readRemote} has finished: install it, wake the
     * faulters, end the transaction. Throws {@link ProtocolException}, changing nothing, if no read was in flight.
     */
    public void onRemoteReadDone(int page, long nowNanos) {
        if (page < 0 || page >= pages) {
            throw new ProtocolException("node " + self + ": one-sided read done for page " + page
                + " out of range 0.." + (pages - 1));
        }
        if (local[page] != PageState.READ_FETCHING) {
            throw new ProtocolException("node " + self + ": one-sided read done for page " + page + " in local state "
                + PageState.name(local[page]));
        }
        try {
            int version = localVersion[page];
            actions.installFromRemoteRead(page);
            acquire(page, PageState.SHARED, version, nowNanos);
            actions.faultResolved(page);
            if ((mutations & MUTATE_DONE_BEFORE_READ) == 0) {
                send(config.homeOf(page), MessageType.DONE, page, self, version);
            }
            drainLoopback(nowNanos);
        } catch (RuntimeException e) {
            loopSize = 0;
            throw e;
        }
    }

    /** Retries every deferred yield whose hold time has passed at {@code nowNanos}. */
    public void onTimer(long nowNanos) {
        int page = deferredHead;
        while (page != -1) {
            int next = deferredNext[page];
            retryDeferred(page, nowNanos);
            page = next;
        }
    }

    /**
     * Retries the yield of {@code page} deferred by the hold-time guard, if its hold has passed at {@code nowNanos}.
     *
     * @return whether the deferred request was served
     */
    public boolean retryDeferred(int page, long nowNanos) {
        if (page < 0 || page >= pages) {
            throw new ProtocolException("node " + self + ": retry of page " + page + " out of range");
        }
        if (deferredType[page] == 0 || mustHold(page, nowNanos)) {
            return false;
        }
        int type = deferredType[page];
        int acks = deferredAcks[page];
        unlinkDeferred(page);
        try {
            yieldPage(type, page, deferredRequester[page], deferredVersion[page], acks);
            drainLoopback(nowNanos);
        } catch (RuntimeException e) {
            loopSize = 0;
            throw e;
        }
        return true;
    }

    /** When {@link #onTimer} next has work: the earliest hold expiry of a deferred yield, or Long.MAX_VALUE. */
    public long nextDeadline() {
        long earliest = Long.MAX_VALUE;
        for (int page = deferredHead; page != -1; page = deferredNext[page]) {
            long deadline = acquiredAt[page] + holdNanos;
            // A huge hold must not wrap into the past, or the runtime would spin on the timer.
            earliest = Math.min(earliest, deadline < acquiredAt[page] ? Long.MAX_VALUE : deadline);
        }
        return earliest;
    }

    // ---------------------------------------------------------------- dispatch

    private void dispatch(int src, int type, int page, int requester, int version, int acks, long now) {
        switch (type) {
            case MessageType.READ_REQUEST, MessageType.WRITE_REQUEST -> homeRequest(src, type, page, requester);
            // The home acks its own invalidation to itself; every other sharer acks the writer directly.
            case MessageType.INVALIDATE_ACK -> {
                if (src == self) {
                    homeAck(src, page, version);
                } else {
                    requesterAck(src, page, requester, now);
                }
            }
            case MessageType.DONE -> homeDone(src, page, requester, version);
            case MessageType.INVALIDATE, MessageType.FORWARD_READ, MessageType.FORWARD_WRITE ->
                holderRequest(src, type, page, requester, version, acks, now);
            case MessageType.GRANT_READ_ZERO, MessageType.GRANT_WRITE_ZERO, MessageType.GRANT_UPGRADE ->
                grant(src, type, page, requester, version, acks, now);
            case MessageType.GRANT_READ_REMOTE -> grantRemoteRead(src, page, requester, version);
            case MessageType.DATA_READ, MessageType.DATA_WRITE -> data(src, type, page, requester, version, acks, now);
            default -> throw reject(src, type, page, "unknown type");
        }
    }

    private void drainLoopback(long now) {
        while (loopSize > 0) {
            int i = loopHead;
            loopHead = (loopHead + 1) % loopType.length;
            loopSize--;
            dispatch(self, loopType[i], loopPage[i], loopRequester[i], loopVersion[i], loopAcks[i], now);
        }
    }

    private void send(int dst, int type, int page, int requester, int version) {
        send(dst, type, page, requester, version, 0);
    }

    private void send(int dst, int type, int page, int requester, int version, int acks) {
        if (dst != self) {
            outbox.send(dst, type, page, requester, version, acks);
            return;
        }
        if (loopSize == loopType.length) {
            throw new IllegalStateException("node " + self + ": loopback queue overflow (engine bug)");
        }
        int i = (loopHead + loopSize) % loopType.length;
        loopType[i] = type;
        loopPage[i] = page;
        loopRequester[i] = requester;
        loopVersion[i] = version;
        loopAcks[i] = acks;
        loopSize++;
    }

    // ---------------------------------------------------------------- home side

    private void homeRequest(int src, int type, int page, int requester) {
        int slot = requireHome(src, type, page);
        if (requester != src) {
            throw reject(src, type, page, "names requester " + requester + ", not its sender");
        }
        long bit = 1L << requester;
        if ((requested[slot] & bit) != 0) {
            throw reject(src, type, page, "duplicates a request of that node still in progress");
        }
        boolean write = type == MessageType.WRITE_REQUEST;
        if (phase[slot] == IDLE) {
            // An idle entry has an empty queue: serveQueue runs whenever a transaction ends.
            requested[slot] |= bit;
            begin(slot, page, requester, write);
            serveQueue(slot, page);
            return;
        }
        if (freeSlot == -1) {
            throw reject(src, type, page, "cannot be queued: home request queue full ("
                + slotNext.length + " requests; raise requestQueueCapacity)");
        }
        int s = freeSlot;
        freeSlot = slotNext[s];
        slotRequester[s] = requester;
        slotWrite[s] = write;
        slotNext[s] = -1;
        if (queueTail[slot] == -1) {
            queueHead[slot] = s;
        } else {
            slotNext[queueTail[slot]] = s;
        }
        queueTail[slot] = s;
        queuedRequests++;
        requested[slot] |= bit;
    }

    private void serveQueue(int slot, int page) {
        // A bad queued request is dropped and reported after the rest of the queue is served, so that an idle
        // entry never keeps a non-empty queue.
        ProtocolException bad = null;
        while (phase[slot] == IDLE && queueHead[slot] != -1) {
            int s = queueHead[slot];
            queueHead[slot] = slotNext[s];
            if (queueHead[slot] == -1) {
                queueTail[slot] = -1;
            }
            int requester = slotRequester[s];
            boolean write = slotWrite[s];
            slotNext[s] = freeSlot;
            freeSlot = s;
            queuedRequests--;
            try {
                begin(slot, page, requester, write);
            } catch (ProtocolException e) {
                if (bad == null) {
                    bad = e;
                }
            }
        }
        if (bad != null) {
            throw bad;
        }
    }

    /** Starts a transaction on an idle entry; the requester's bit in {@code requested} is set. */
    private void begin(int slot, int page, int requester, boolean write) {
        long bit = 1L << requester;
        long copyset = dirCopyset[slot];
        int version = dirVersion[slot];
        if (!write && (copyset & bit) != 0) {
            requested[slot] &= ~bit;
            throw new ProtocolException("node " + self + ": READ_REQUEST from node " + requester + " for page "
                + page + ", which the directory says it already holds");
        }
        if (write && dirModified[slot] && dirOwner[slot] == requester) {
            requested[slot] &= ~bit;
            throw new ProtocolException("node " + self + ": WRITE_REQUEST from node " + requester + " for page "
                + page + ", which the directory says it already holds writable");
        }
        txnRequester[slot] = requester;
        txnWrite[slot] = write;
        if (!write) {
            dirCopyset[slot] = copyset | bit;
            if (version == 0 || ((mutations & MUTATE_STALE_ZERO_FILL) != 0 && !dirModified[slot])) {
                finish(slot);
                send(requester, MessageType.GRANT_READ_ZERO, page, requester, 0);
            } else if (!dirModified[slot] && local[page] == PageState.SHARED) {
                // The home's own read-only copy is current: it answers at once (two hops, not three, and no DONE).
                finish(slot);
                sendWithPage(requester, MessageType.DATA_READ, page, version, 0);
            } else if (config.oneSidedReads() && !dirModified[slot] && dirOwner[slot] != self) {
                // The owner's clean copy stays put until the requester's DONE (this transaction blocks any change):
                // the requester reads it from the owner's memory, the owner's CPU takes no part.
                phase[slot] = AWAIT_DONE;
                send(requester, MessageType.GRANT_READ_REMOTE, page, dirOwner[slot], version);
            } else {
                dirModified[slot] = false;
                phase[slot] = AWAIT_DONE;
                send(dirOwner[slot], MessageType.FORWARD_READ, page, requester, version);
            }
            return;
        }
        long invalidate = copyset & ~bit;
        if (version != 0 && (copyset & bit) == 0) {
            // The owner supplies the data, and drops its copy, in FORWARD_WRITE once the others are gone.
            invalidate &= ~(1L << dirOwner[slot]);
        }
        // The home's own copy is dropped at once (loopback) and acked to the home; the other sharers ack the
        // requester directly, which learns how many to expect from its grant: 1.5 round trips, not 2.
        long selfBit = 1L << self;
        long awaiting = invalidate & selfBit;
        int direct = Long.bitCount(invalidate & ~selfBit);
        if ((mutations & MUTATE_FORGET_ONE_DIRECT_ACK) != 0 && direct > 0) {
            direct--;
        }
        if ((mutations & MUTATE_FORGET_ONE_ACK) != 0) {
            if (direct > 0) {
                direct--;
            } else {
                awaiting = 0;
            }
        }
        awaitingAcks[slot] = awaiting;
        directAcks[slot] = direct;
        phase[slot] = AWAIT_ACKS;
        for (long rest = invalidate; rest != 0; rest &= rest - 1) {
            send(Long.numberOfTrailingZeros(rest), MessageType.INVALIDATE, page, requester, version);
        }
        if (awaiting == 0) {
            grantWrite(slot, page);
        }
    }

    /** Every other copy is gone: hand write ownership to the requester. */
    private void grantWrite(int slot, int page) {
        int requester = txnRequester[slot];
        long bit = 1L << requester;
        boolean hasCopy = (dirCopyset[slot] & bit) != 0;
        int oldOwner = dirOwner[slot];
        int oldVersion = dirVersion[slot];
        int newVersion = nextVersion(oldVersion);
        dirOwner[slot] = requester;
        dirCopyset[slot] = bit;
        dirModified[slot] = true;
        dirVersion[slot] = newVersion;
        awaitingAcks[slot] = 0;
        int acks = directAcks[slot];
        directAcks[slot] = 0;
        if (hasCopy || oldVersion == 0) {
            // With acks still to come over other channels the requester ends the transaction with DONE.
            if (acks == 0) {
                finish(slot);
            } else {
                phase[slot] = AWAIT_DONE;
            }
            send(requester, hasCopy ? MessageType.GRANT_UPGRADE : MessageType.GRANT_WRITE_ZERO, page, requester,
                newVersion, acks);
        } else {
            phase[slot] = AWAIT_DONE;
            send(oldOwner, MessageType.FORWARD_WRITE, page, requester, oldVersion, acks);
        }
    }

    private void finish(int slot) {
        requested[slot] &= ~(1L << txnRequester[slot]);
        txnRequester[slot] = -1;
        txnWrite[slot] = false;
        phase[slot] = IDLE;
    }

    /** The home's own invalidation is done (loopback). */
    private void homeAck(int src, int page, int version) {
        int type = MessageType.INVALIDATE_ACK;
        int slot = requireHome(src, type, page);
        if (phase[slot] != AWAIT_ACKS || (awaitingAcks[slot] & (1L << src)) == 0) {
            throw reject(src, type, page, "is not awaited (entry " + PHASES[phase[slot]] + ")");
        }
        if (version != dirVersion[slot]) {
            throw reject(src, type, page, "acknowledges version " + version + ", entry is at " + dirVersion[slot]);
        }
        awaitingAcks[slot] &= ~(1L << src);
        if (awaitingAcks[slot] == 0) {
            grantWrite(slot, page);
            serveQueue(slot, page);
        }
    }

    private void homeDone(int src, int page, int requester, int version) {
        int type = MessageType.DONE;
        int slot = requireHome(src, type, page);
        if (phase[slot] != AWAIT_DONE || txnRequester[slot] != src || requester != src) {
            throw reject(src, type, page, "is not awaited (entry " + PHASES[phase[slot]] + ", requester "
                + txnRequester[slot] + ")");
        }
        if (version != dirVersion[slot]) {
            throw reject(src, type, page, "reports version " + version + ", entry is at " + dirVersion[slot]);
        }
        finish(slot);
        serveQueue(slot, page);
    }

    private int requireHome(int src, int type, int page) {
        int home = config.homeOf(page);
        if (home != self) {
            throw reject(src, type, page, "belongs at the page's home, node " + home);
        }
        return homeSlot(page);
    }

    private int homeSlot(int page) {
        return (page / stripe / nodes) * stripe + page % stripe;
    }

    // ---------------------------------------------------------------- holder side

    private void holderRequest(int src, int type, int page, int requester, int version, int acks, long now) {
        requireFromHome(src, type, page);
        int state = local[page];
        if (deferredType[page] != 0) {
            throw reject(src, type, page, "arrives while " + MessageType.name(deferredType[page])
                + " is still deferred");
        }
        boolean holds = type == MessageType.INVALIDATE
            ? state == PageState.SHARED || state == PageState.UPGRADE_PENDING
            : PageState.holdsCopy(state);
        if (!holds) {
            throw reject(src, type, page, "is impossible in local state " + PageState.name(state));
        }
        if (version != localVersion[page]) {
            throw reject(src, type, page, "names version " + version + ", local copy is version "
                + localVersion[page]);
        }
        if (type != MessageType.INVALIDATE && requester == self) {
            throw reject(src, type, page, "asks this node to send its page to itself");
        }
        boolean losesRights = type != MessageType.FORWARD_READ || state == PageState.MODIFIED;
        if (losesRights && mustHold(page, now)) {
            deferredType[page] = (byte) type;
            deferredRequester[page] = requester;
            deferredVersion[page] = version;
            deferredAcks[page] = acks;
            deferredNext[page] = deferredHead;
            deferredHead = page;
            deferrals++;
            return;
        }
        yieldPage(type, page, requester, version, acks);
    }

    private void yieldPage(int type, int page, int requester, int version, int acks) {
        int home = config.homeOf(page);
        boolean upgrading = local[page] == PageState.UPGRADE_PENDING;
        switch (type) {
            case MessageType.INVALIDATE -> {
                actions.invalidate(page);
                dropCopy(page, upgrading);
                send(home == self ? self : requester, MessageType.INVALIDATE_ACK, page, requester, version);
            }
            case MessageType.FORWARD_READ -> {
                if (local[page] == PageState.MODIFIED && (mutations & MUTATE_SKIP_DOWNGRADE) == 0) {
                    actions.makeReadOnly(page);
                    local[page] = PageState.SHARED;
                }
                sendWithPage(requester, MessageType.DATA_READ, page, version, 0);
                if (home == self) {
                    servedByHome(page, requester);
                }
            }
            default -> {
                sendWithPage(requester, MessageType.DATA_WRITE, page, nextVersion(version), acks);
                actions.invalidate(page);
                dropCopy(page, upgrading);
                if (home == self && acks == 0) {
                    servedByHome(page, requester);
                }
            }
        }
    }

    /**
     * The home itself sent the data of its current transaction for {@code page}: the transaction ends now, with no
     * DONE, because anything the home sends the requester later follows the data on the same FIFO channel.
     */
    private void servedByHome(int page, int requester) {
        int slot = homeSlot(page);
        if (phase[slot] != AWAIT_DONE || txnRequester[slot] != requester) {
            throw new IllegalStateException("node " + self + ": served page " + page + " to node " + requester
                + " outside its transaction (engine bug)");
        }
        finish(slot);
        serveQueue(slot, page);
    }

    private void dropCopy(int page, boolean upgrading) {
        // A node whose upgrade is still queued at the home now needs the data too.
        local[page] = upgrading ? PageState.WRITE_PENDING : PageState.INVALID;
        localVersion[page] = 0;
    }

    private void sendWithPage(int dst, int type, int page, int version, int acks) {
        if (dst == self) {
            throw new IllegalStateException("node " + self + ": page data addressed to itself (engine bug)");
        }
        outbox.sendWithPage(dst, type, page, dst, version, acks);
    }

    private boolean mustHold(int page, long now) {
        return holdNanos > 0 && now - acquiredAt[page] < holdNanos;
    }

    private void unlinkDeferred(int page) {
        if (deferredHead == page) {
            deferredHead = deferredNext[page];
        } else {
            int p = deferredHead;
            while (deferredNext[p] != page) {
                p = deferredNext[p];
            }
            deferredNext[p] = deferredNext[page];
        }
        deferredType[page] = 0;
        deferredAcks[page] = 0;
        deferredNext[page] = -1;
    }

    // ---------------------------------------------------------------- requester side

    private void grant(int src, int type, int page, int requester, int version, int acks, long now) {
        requireFromHome(src, type, page);
        if (requester != self) {
            throw reject(src, type, page, "is addressed to requester " + requester);
        }
        switch (type) {
            case MessageType.GRANT_READ_ZERO -> {
                requireState(src, type, page, PageState.READ_PENDING, version, 0);
                actions.installZero(page, false);
                acquire(page, PageState.SHARED, 0, now);
            }
            case MessageType.GRANT_WRITE_ZERO -> {
                requireState(src, type, page, PageState.WRITE_PENDING, version, nextVersion(0));
                if (!installForWrite(src, type, page, version, acks, true)) {
                    return;
                }
                acquire(page, PageState.MODIFIED, version, now);
            }
            default -> {
                requireState(src, type, page, PageState.UPGRADE_PENDING, version, nextVersion(localVersion[page]));
                requireAckCount(src, type, page, acks);
                if (acksReceived[page] != acks) {
                    awaitAcks(page, version, acks);
                    return;
                }
                actions.makeWritable(page);
                acquire(page, PageState.MODIFIED, version, now);
            }
        }
        actions.faultResolved(page);
        writeDone(page, version, acks, src);
    }

    private void requireAckCount(int src, int type, int page, int acks) {
        if (acksReceived[page] > acks) {
            throw reject(src, type, page, "expects " + acks + " invalidation acks, " + acksReceived[page]
                + " already came");
        }
    }

    /**
     * Installs the data of a granted write (a zero page, or the message's): writable when every ack is in, else
     * read-only until they are (see {@link #awaitAcks}). Returns whether the write is complete.
     */
    private boolean installForWrite(int src, int type, int page, int version, int acks, boolean zero) {
        requireAckCount(src, type, page, acks);
        boolean complete = acksReceived[page] == acks;
        if (zero) {
            actions.installZero(page, complete);
        } else {
            actions.installFromMessage(page, complete);
        }
        if (!complete) {
            awaitAcks(page, version, acks);
        }
        return complete;
    }

    /** Granted, but sharers still hold copies: keep the (current) copy read-only until their acks are in. */
    private void awaitAcks(int page, int version, int acks) {
        local[page] = PageState.ACKS_PENDING;
        localVersion[page] = version;
        acksExpected[page] = acks;
    }

    /**
     * An invalidation ack for this node's own write (from a sharer other than the home), before or after its grant.
     */
    private void requesterAck(int src, int page, int requester, long now) {
        int type = MessageType.INVALIDATE_ACK;
        int state = local[page];
        if (requester != self) {
            throw reject(src, type, page, "acknowledges a write of node " + requester);
        }
        if (state != PageState.WRITE_PENDING && state != PageState.UPGRADE_PENDING
            && state != PageState.ACKS_PENDING) {
            throw reject(src, type, page, "is impossible in local state " + PageState.name(state));
        }
        // Before its grant a writer cannot know the count; no write has more acks than other nodes.
        int limit = state == PageState.ACKS_PENDING ? acksExpected[page] : nodes - 1;
        if (acksReceived[page] >= limit) {
            throw reject(src, type, page, "is one more than the " + limit + " expected");
        }
        acksReceived[page]++;
        if (state == PageState.ACKS_PENDING && acksReceived[page] == acksExpected[page]) {
            actions.makeWritable(page);
            int version = localVersion[page];
            acquire(page, PageState.MODIFIED, version, now);
            actions.faultResolved(page);
            writeDone(page, version, acksExpected[page], -1);
        }
    }

    /**
     * The write is complete: reset the ack count and end the transaction with DONE unless the home needs none (no
     * acks travelled on other channels, and the grant or data came from the home itself).
     */
    private void writeDone(int page, int version, int acks, int dataSource) {
        acksReceived[page] = 0;
        acksExpected[page] = 0;
        int home = config.homeOf(page);
        if (acks > 0 || (dataSource != -1 && dataSource != home)) {
            send(home, MessageType.DONE, page, self, version);
        }
    }

    /** GRANT_READ_REMOTE: its requester field names the node to read from. */
    private void grantRemoteRead(int src, int page, int source, int version) {
        int type = MessageType.GRANT_READ_REMOTE;
        requireFromHome(src, type, page);
        if (!config.oneSidedReads()) {
            throw reject(src, type, page, "but one-sided reads are off on this node");
        }
        if (local[page] != PageState.READ_PENDING) {
            throw reject(src, type, page, "is impossible in local state " + PageState.name(local[page]));
        }
        if (source == self) {
            throw reject(src, type, page, "names this node as the one to read from");
        }
        if (version == 0) {
            throw reject(src, type, page, "grants version 0, which only zero pages have");
        }
        local[page] = PageState.READ_FETCHING;
        localVersion[page] = version;
        if ((mutations & MUTATE_DONE_BEFORE_READ) != 0) {
            send(config.homeOf(page), MessageType.DONE, page, self, version);
        }
        actions.readRemote(page, source);
    }

    private void data(int src, int type, int page, int requester, int version, int acks, long now) {
        if (requester != self) {
            throw reject(src, type, page, "is addressed to requester " + requester);
        }
        boolean write = type == MessageType.DATA_WRITE;
        int expected = write ? PageState.WRITE_PENDING : PageState.READ_PENDING;
        if (local[page] != expected) {
            throw reject(src, type, page, "is impossible in local state " + PageState.name(local[page]));
        }
        if (version == 0) {
            throw reject(src, type, page, "carries version 0, which only zero pages have");
        }
        if (write) {
            if (!installForWrite(src, type, page, version, acks, false)) {
                return;
            }
            acquire(page, PageState.MODIFIED, version, now);
            actions.faultResolved(page);
            // Data from the home itself with no acks elsewhere ended the transaction when it was sent.
            writeDone(page, version, acks, src);
            return;
        }
        actions.installFromMessage(page, false);
        acquire(page, PageState.SHARED, version, now);
        actions.faultResolved(page);
        int home = config.homeOf(page);
        if (src != home) {
            // Data from the home itself ended the transaction when it was sent (see servedByHome).
            send(home, MessageType.DONE, page, self, version);
        }
    }

    private void requireState(int src, int type, int page, int state, int version, int expectedVersion) {
        if (local[page] != state) {
            throw reject(src, type, page, "is impossible in local state " + PageState.name(local[page]));
        }
        if (version != expectedVersion) {
            throw reject(src, type, page, "grants version " + version + ", expected " + expectedVersion);
        }
    }

    private void acquire(int page, byte state, int version, long now) {
        local[page] = state;
        localVersion[page] = version;
        acquiredAt[page] = now;
    }

    private void requireFromHome(int src, int type, int page) {
        int home = config.homeOf(page);
        if (src != home) {
            throw reject(src, type, page, "must come from the page's home, node " + home);
        }
    }

    private ProtocolException reject(int src, int type, int page, String why) {
        return new ProtocolException("node " + self + ": " + MessageType.name(type) + " from node " + src
            + " for page " + page + " " + why);
    }

    /** Versions count write grants; 0 is reserved for "never written" and skipped on wrap-around. */
    static int nextVersion(int version) {
        int next = version + 1;
        return next == 0 ? 1 : next;
    }

    // ---------------------------------------------------------------- inspection

    public int localState(int page) {
        return local[page];
    }

    public int localVersion(int page) {
        return localVersion[page];
    }

    /** When this node last acquired rights to {@code page} (the {@code nowNanos} of that event). */
    public long acquiredAtNanos(int page) {
        return acquiredAt[page];
    }

    /** The type of the yield of {@code page} deferred by the hold-time guard, or 0. */
    public int deferredType(int page) {
        return deferredType[page];
    }

    public boolean isHome(int page) {
        return config.homeOf(page) == self;
    }

    public int directoryOwner(int page) {
        return dirOwner[homeSlotChecked(page)];
    }

    public long directoryCopyset(int page) {
        return dirCopyset[homeSlotChecked(page)];
    }

    public int directoryVersion(int page) {
        return dirVersion[homeSlotChecked(page)];
    }

    public boolean directoryModified(int page) {
        return dirModified[homeSlotChecked(page)];
    }

    /** Whether the home is in the middle of a transaction for {@code page}. */
    public boolean isBusy(int page) {
        return phase[homeSlotChecked(page)] != IDLE;
    }

    /** Requests queued at this home behind busy entries, over all pages. */
    public int queuedRequests() {
        return queuedRequests;
    }

    /** How many yields the hold-time guard has deferred since the engine was made. */
    public long deferrals() {
        return deferrals;
    }

    private int homeSlotChecked(int page) {
        if (page < 0 || page >= pages || config.homeOf(page) != self) {
            throw new ProtocolException("node " + self + " is not the home of page " + page);
        }
        return homeSlot(page);
    }

    // ---------------------------------------------------------------- canonical encoding

    /**
     * Writes the protocol state canonically (equal states give equal bytes). Hold timestamps and statistics are
     * left out: the model checker abstracts time, and they do not change which transitions are possible.
     */
    public void encode(StateWriter out) {
        encode(out, null);
    }

    /**
     * Like {@link #encode(StateWriter)}, with every non-zero version of page p written as {@code v - versionShift[p]}:
     * the protocol only compares versions for equality and with 0, so states that differ by a uniform shift of a
     * page's versions behave alike, and the model checker folds them into one.
     */
    public void encode(StateWriter out, int[] versionShift) {
        if (loopSize != 0) {
            throw new IllegalStateException("node " + self + ": encode in the middle of an event");
        }
        for (int p = 0; p < pages; p++) {
            int shift = versionShift == null ? 0 : versionShift[p];
            out.writeInt(local[p]);
            out.writeInt(shifted(localVersion[p], shift));
            out.writeInt(deferredType[p]);
            if (deferredType[p] != 0) {
                out.writeInt(deferredRequester[p]);
                out.writeInt(shifted(deferredVersion[p], shift));
                out.writeInt(deferredAcks[p]);
            }
            out.writeInt(acksExpected[p]);
            out.writeInt(acksReceived[p]);
        }
        for (int s = 0; s < homeSlots; s++) {
            out.writeInt(dirOwner[s]);
            out.writeLong(dirCopyset[s]);
            out.writeInt(shifted(dirVersion[s], versionShift == null ? 0 : versionShift[slotPage[s]]));
            out.writeInt(dirModified[s] ? 1 : 0);
            out.writeInt(phase[s]);
            if (phase[s] != IDLE) {
                out.writeInt(txnRequester[s]);
                out.writeInt(txnWrite[s] ? 1 : 0);
                out.writeLong(awaitingAcks[s]);
                out.writeInt(directAcks[s]);
            }
            out.writeLong(requested[s]);
            for (int q = queueHead[s]; q != -1; q = slotNext[q]) {
                out.writeInt(slotRequester[q] * 2 + (slotWrite[q] ? 1 : 0));
            }
            out.writeInt(-1);
        }
    }

    private static int shifted(int version, int shift) {
        return version == 0 ? 0 : version - shift;
    }

    /** Replaces the protocol state with one written by {@link #encode}; hold timestamps become 0. */
    public void decode(StateReader in) {
        loopSize = 0;
        loopHead = 0;
        deferredHead = -1;
        for (int p = 0; p < pages; p++) {
            local[p] = (byte) in.readInt();
            localVersion[p] = in.readInt();
            deferredType[p] = (byte) in.readInt();
            acquiredAt[p] = 0;
            deferredNext[p] = -1;
            deferredAcks[p] = 0;
            if (deferredType[p] != 0) {
                deferredRequester[p] = in.readInt();
                deferredVersion[p] = in.readInt();
                deferredAcks[p] = in.readInt();
            }
            acksExpected[p] = in.readInt();
            acksReceived[p] = in.readInt();
        }
        for (int p = pages - 1; p >= 0; p--) {
            if (deferredType[p] != 0) {
                deferredNext[p] = deferredHead;
                deferredHead = p;
            }
        }
        resetQueuePool();
        for (int s = 0; s < homeSlots; s++) {
            dirOwner[s] = in.readInt();
            dirCopyset[s] = in.readLong();
            dirVersion[s] = in.readInt();
            dirModified[s] = in.readInt() != 0;
            phase[s] = (byte) in.readInt();
            if (phase[s] != IDLE) {
                txnRequester[s] = in.readInt();
                txnWrite[s] = in.readInt() != 0;
                awaitingAcks[s] = in.readLong();
                directAcks[s] = in.readInt();
            } else {
                txnRequester[s] = -1;
                txnWrite[s] = false;
                awaitingAcks[s] = 0;
                directAcks[s] = 0;
            }
            requested[s] = in.readLong();
            queueHead[s] = -1;
            queueTail[s] = -1;
            for (int entry = in.readInt(); entry != -1; entry = in.readInt()) {
                int q = freeSlot;
                freeSlot = slotNext[q];
                slotRequester[q] = entry >> 1;
                slotWrite[q] = (entry & 1) != 0;
                slotNext[q] = -1;
                if (queueTail[s] == -1) {
                    queueHead[s] = q;
                } else {
                    slotNext[queueTail[s]] = q;
                }
                queueTail[s] = q;
                queuedRequests++;
            }
        }
    }

    private void resetQueuePool() {
        for (int i = 0; i < slotNext.length; i++) {
            slotNext[i] = i + 1 < slotNext.length ? i + 1 : -1;
        }
        freeSlot = 0;
        queuedRequests = 0;
    }
}
