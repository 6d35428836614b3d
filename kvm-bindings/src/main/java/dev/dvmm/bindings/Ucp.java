package dev.dvmm.bindings;

import dev.dvmm.bindings.abi.Sigaction;
import dev.dvmm.bindings.ucx.UcpConstants;
import dev.dvmm.bindings.ucx.UcsConstants;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.charset.StandardCharsets;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The UCX (UCP layer) calls dvmm's UCX transport makes, as hand-written downcalls into
 * {@code libucp.so.0} / {@code libucs.so.0}, plus factories for the upcall stubs UCX calls back.
 *
 * <p>Handles ({@code ucp_context_h}, {@code ucp_worker_h}, {@code ucp_ep_h}, requests, descriptors)
 * and data pointers travel as {@code long} addresses, never as {@link MemorySegment}s: a segment
 * object per returned pointer or per upcall argument would allocate on every message. Parameter
 * structs (generated in {@code dev.dvmm.bindings.ucx}) are passed as caller-owned native segments.
 * {@code ucs_status_t} is a packed one-byte enum in C, hence {@code byte} statuses.
 *
 * <p>Calls returning {@code ucs_status_ptr_t} return it raw: {@code 0} (done), an error code
 * ({@link #isError}) or a request ({@link #isRequest}). The hot calls (send, receive, progress,
 * request status) allocate nothing; setup calls use a confined arena and throw {@link UcxException}.
 * UCX records no errno, so nothing is captured. An instance is immutable and shared by all threads;
 * the thread-safety of each call is UCX's (dvmm creates its workers with
 * {@code UCS_THREAD_MODE_MULTI}).
 */
public final class Ucp {
    /** Library names as the Debian/Ubuntu packages (libucx0) and UCX's own installs provide them. */
    public static final String UCP_LIBRARY = "libucp.so.0";
    public static final String UCS_LIBRARY = "libucs.so.0";

    private static final Linker LINKER = Linker.nativeLinker();
    private static final MethodHandles.Lookup LOOKUP = MethodHandles.lookup();
    /** ucs_status_t: {@code enum ... __attribute__((packed))}, one byte (checked by the bindings test). */
    private static final ValueLayout.OfByte STATUS = JAVA_BYTE;
    /** A pointer or handle passed as a plain 64-bit value (LP64: same registers as a pointer). */
    private static final ValueLayout.OfLong HANDLE = JAVA_LONG;
    /** UCS_ERR_LAST as an unsigned pointer value: status pointers at or above it are errors. */
    private static final long ERR_LAST = UcsConstants.UCS_ERR_LAST;

    private static final Object LOAD_LOCK = new Object();
    private static Ucp shared;
    private static UcxException sharedFailure;

    private final MethodHandle configRead;
    private final MethodHandle configRelease;
    private final MethodHandle configModify;
    private final MethodHandle configPrint;
    private final MethodHandle initVersion;
    private final MethodHandle cleanup;
    private final MethodHandle contextQuery;
    private final MethodHandle contextPrintInfo;
    private final MethodHandle workerCreate;
    private final MethodHandle workerDestroy;
    private final MethodHandle workerQuery;
    private final MethodHandle workerGetAddress;
    private final MethodHandle workerReleaseAddress;
    private final MethodHandle workerProgress;
    private final MethodHandle workerGetEfd;
    private final MethodHandle workerArm;
    private final MethodHandle workerSignal;
    private final MethodHandle workerSetAmRecvHandler;
    private final MethodHandle epCreate;
    private final MethodHandle epCloseNbx;
    private final MethodHandle amSendNbx;
    private final MethodHandle amRecvDataNbx;
    private final MethodHandle amDataRelease;
    private final MethodHandle requestCheckStatus;
    private final MethodHandle requestFree;
    private final MethodHandle requestCancel;
    private final MethodHandle memMap;
    private final MethodHandle memUnmap;
    private final MethodHandle rkeyPack;
    private final MethodHandle rkeyBufferRelease;
    private final MethodHandle epRkeyUnpack;
    private final MethodHandle rkeyDestroy;
    private final MethodHandle getNbx;
    private final MethodHandle getVersion;
    private final MethodHandle statusString;
    private final MethodHandle openMemstream;
    private final MethodHandle fclose;
    private final MethodHandle free;
    private final MethodHandle poll;

    private Ucp(SymbolLookup ucp, SymbolLookup ucs) {
        configRead = bind(ucp, "ucp_config_read", FunctionDescriptor.of(STATUS, ADDRESS, ADDRESS, ADDRESS));
        configRelease = bind(ucp, "ucp_config_release", FunctionDescriptor.ofVoid(HANDLE));
        configModify = bind(ucp, "ucp_config_modify", FunctionDescriptor.of(STATUS, HANDLE, ADDRESS, ADDRESS));
        configPrint = bind(ucp, "ucp_config_print", FunctionDescriptor.ofVoid(HANDLE, HANDLE, ADDRESS, JAVA_INT));
        initVersion = bind(ucp, "ucp_init_version",
                FunctionDescriptor.of(STATUS, JAVA_INT, JAVA_INT, ADDRESS, HANDLE, ADDRESS));
        cleanup = bind(ucp, "ucp_cleanup", FunctionDescriptor.ofVoid(HANDLE));
        contextQuery = bind(ucp, "ucp_context_query", FunctionDescriptor.of(STATUS, HANDLE, ADDRESS));
        contextPrintInfo = bind(ucp, "ucp_context_print_info", FunctionDescriptor.ofVoid(HANDLE, HANDLE));
        workerCreate = bind(ucp, "ucp_worker_create", FunctionDescriptor.of(STATUS, HANDLE, ADDRESS, ADDRESS));
        workerDestroy = bind(ucp, "ucp_worker_destroy", FunctionDescriptor.ofVoid(HANDLE));
        workerQuery = bind(ucp, "ucp_worker_query", FunctionDescriptor.of(STATUS, HANDLE, ADDRESS));
        workerGetAddress = bind(ucp, "ucp_worker_get_address",
                FunctionDescriptor.of(STATUS, HANDLE, ADDRESS, ADDRESS));
        workerReleaseAddress = bind(ucp, "ucp_worker_release_address", FunctionDescriptor.ofVoid(HANDLE, HANDLE));
        workerProgress = bind(ucp, "ucp_worker_progress", FunctionDescriptor.of(JAVA_INT, HANDLE));
        workerGetEfd = bind(ucp, "ucp_worker_get_efd", FunctionDescriptor.of(STATUS, HANDLE, ADDRESS));
        workerArm = bind(ucp, "ucp_worker_arm", FunctionDescriptor.of(STATUS, HANDLE));
        workerSignal = bind(ucp, "ucp_worker_signal", FunctionDescriptor.of(STATUS, HANDLE));
        workerSetAmRecvHandler = bind(ucp, "ucp_worker_set_am_recv_handler",
                FunctionDescriptor.of(STATUS, HANDLE, ADDRESS));
        epCreate = bind(ucp, "ucp_ep_create", FunctionDescriptor.of(STATUS, HANDLE, ADDRESS, ADDRESS));
        epCloseNbx = bind(ucp, "ucp_ep_close_nbx", FunctionDescriptor.of(HANDLE, HANDLE, ADDRESS));
        amSendNbx = bind(ucp, "ucp_am_send_nbx",
                FunctionDescriptor.of(HANDLE, HANDLE, JAVA_INT, HANDLE, JAVA_LONG, HANDLE, JAVA_LONG, ADDRESS));
        amRecvDataNbx = bind(ucp, "ucp_am_recv_data_nbx",
                FunctionDescriptor.of(HANDLE, HANDLE, HANDLE, HANDLE, JAVA_LONG, ADDRESS));
        amDataRelease = bind(ucp, "ucp_am_data_release", FunctionDescriptor.ofVoid(HANDLE, HANDLE));
        requestCheckStatus = bind(ucp, "ucp_request_check_status", FunctionDescriptor.of(STATUS, HANDLE));
        requestFree = bind(ucp, "ucp_request_free", FunctionDescriptor.ofVoid(HANDLE));
        requestCancel = bind(ucp, "ucp_request_cancel", FunctionDescriptor.ofVoid(HANDLE, HANDLE));
        memMap = bind(ucp, "ucp_mem_map", FunctionDescriptor.of(STATUS, HANDLE, ADDRESS, ADDRESS));
        memUnmap = bind(ucp, "ucp_mem_unmap", FunctionDescriptor.of(STATUS, HANDLE, HANDLE));
        rkeyPack = bind(ucp, "ucp_rkey_pack", FunctionDescriptor.of(STATUS, HANDLE, HANDLE, ADDRESS, ADDRESS));
        rkeyBufferRelease = bind(ucp, "ucp_rkey_buffer_release", FunctionDescriptor.ofVoid(HANDLE));
        epRkeyUnpack = bind(ucp, "ucp_ep_rkey_unpack", FunctionDescriptor.of(STATUS, HANDLE, ADDRESS, ADDRESS));
        rkeyDestroy = bind(ucp, "ucp_rkey_destroy", FunctionDescriptor.ofVoid(HANDLE));
        getNbx = bind(ucp, "ucp_get_nbx",
                FunctionDescriptor.of(HANDLE, HANDLE, HANDLE, JAVA_LONG, JAVA_LONG, HANDLE, ADDRESS));
        getVersion = bind(ucp, "ucp_get_version", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS));
        statusString = bind(ucs, "ucs_status_string", FunctionDescriptor.of(ADDRESS, STATUS));
        SymbolLookup libc = LINKER.defaultLookup();
        openMemstream = bind(libc, "open_memstream", FunctionDescriptor.of(HANDLE, ADDRESS, ADDRESS));
        fclose = bind(libc, "fclose", FunctionDescriptor.of(JAVA_INT, HANDLE));
        free = bind(libc, "free", FunctionDescriptor.ofVoid(HANDLE));
        poll = bind(libc, "poll", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
    }

    private static MethodHandle bind(SymbolLookup lookup, String name, FunctionDescriptor descriptor) {
        MemorySegment symbol = lookup.find(name).orElseThrow(() -> new UcxException(
                "the installed UCX lacks " + name + ": dvmm needs UCX 1.13 or newer"));
        return LINKER.downcallHandle(symbol, descriptor);
    }

    /**
     * The UCX libraries of this machine, loaded once per process. Throws {@link UcxException}
     * ("UCX is not installed ...") when {@code libucp.so.0} or {@code libucs.so.0} cannot be loaded.
     */
    public static Ucp load() {
        synchronized (LOAD_LOCK) {
            if (shared == null && sharedFailure == null) {
                try {
                    shared = load(UCP_LIBRARY, UCS_LIBRARY);
                } catch (UcxException e) {
                    sharedFailure = e;
                }
            }
            if (sharedFailure != null) {
                throw new UcxException(sharedFailure.getMessage());
            }
            return shared;
        }
    }

    /** True if {@link #load()} succeeds. */
    public static boolean isInstalled() {
        try {
            load();
            return true;
        } catch (UcxException e) {
            return false;
        }
    }

    /** Loads the named libraries (names or paths as {@code dlopen} takes them); for tests and odd installs. */
    public static Ucp load(String ucpLibrary, String ucsLibrary) {
        synchronized (LOAD_LOCK) {
            prepareEnvironment();
            long[] before = jvmSignalHandlers();
            SymbolLookup ucs = open(ucsLibrary);
            giveSignalsBackToTheJvm(ucs, before);
            SymbolLookup ucp = open(ucpLibrary);
            return new Ucp(ucp, ucs);
        }
    }

    /** Signals HotSpot raises on purpose, which UCX's error handler must never see. */
    private static final int[] JVM_SIGNALS = {UcsConstants.SIGSEGV, UcsConstants.SIGBUS, UcsConstants.SIGILL,
        UcsConstants.SIGFPE};

    /**
     * Sets the UCX variables libucs reads in its load-time constructor, before it is loaded (later is
     * too late: they are read once, in the constructor).
     * <ul>
     *   <li>{@code UCX_ERROR_SIGNALS=""}, forced. Otherwise libucs installs handlers for SEGV, BUS, ILL
     *       and FPE while it loads. HotSpot traps on purpose (safepoint polls, implicit null checks):
     *       any JVM thread that hits such a trap before the handlers are handed back goes to UCX,
     *       which prints "Caught signal 11" and re-raises it, and HotSpot then dies of a "SIGSEGV
     *       (sent by kill)". Measured: every run of a JVM with threads in compiled loops and a
     *       stack-walking thread died that way while it loaded libucs.</li>
     *   <li>{@code UCX_DEBUG_SIGNO=0} unless set: UCX would take SIGHUP, on which HotSpot runs its
     *       shutdown hooks.</li>
     *   <li>{@code UCX_MEM_EVENTS=no} unless set: UCX would patch libc's mmap, munmap, mremap,
     *       madvise, brk, sbrk, shmat and shmdt in place (binary instrumentation, while JVM threads
     *       run them) to keep its registration cache in step. dvmm's page traffic is copied (eager),
     *       its guest memory is invalidated by fallocate, which those hooks do not see anyway, and
     *       UCX works without the cache (it registers per operation).</li>
     * </ul>
     * glibc's setenv is not safe against a concurrent getenv in native code; the JVM reads its
     * environment at start-up, and this runs once, before UCX exists.
     */
    private static void prepareEnvironment() {
        setenv("UCX_ERROR_SIGNALS", "", true);
        setenv("UCX_DEBUG_SIGNO", "0", false);
        setenv("UCX_MEM_EVENTS", "no", false);
    }

    private static void setenv(String name, String value, boolean overwrite) {
        try (Arena arena = Arena.ofConfined()) {
            int result = (int) SETENV.invokeExact(arena.allocateFrom(name), arena.allocateFrom(value),
                    overwrite ? 1 : 0);
            if (result != 0) {
                throw new UcxException("setenv(" + name + ") failed: cannot keep UCX away from the JVM's signals");
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private static long[] jvmSignalHandlers() {
        long[] handlers = new long[JVM_SIGNALS.length];
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment action = arena.allocate(Sigaction.LAYOUT);
            for (int i = 0; i < JVM_SIGNALS.length; i++) {
                Posix.check(Posix.current().sigaction(JVM_SIGNALS[i], MemorySegment.NULL, action), "sigaction");
                handlers[i] = Sigaction.saHandler(action);
            }
        }
        return handlers;
    }

    /**
     * If libucs took one of the JVM's trap signals anyway (a UCX that ignores the variable), hand it
     * back: {@code ucs_debug_disable_signal} restores the
     * handler UCX saved, HotSpot's.
     */
    private static void giveSignalsBackToTheJvm(SymbolLookup ucs, long[] before) {
        long[] after = jvmSignalHandlers();
        MethodHandle disable = null;
        for (int i = 0; i < JVM_SIGNALS.length; i++) {
            if (after[i] == before[i]) {
                continue;
            }
            if (disable == null) {
                disable = bind(ucs, "ucs_debug_disable_signal", FunctionDescriptor.ofVoid(JAVA_INT));
            }
            try {
                disable.invokeExact(JVM_SIGNALS[i]);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }
    }

    /** libc {@code setenv(name, value, overwrite)}. */
    private static final MethodHandle SETENV = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("setenv"),
            FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));

    private static SymbolLookup open(String library) {
        try {
            // The global arena: the library stays loaded for the life of the process, as dlopen'ed UCX expects.
            return SymbolLookup.libraryLookup(library, Arena.global());
        } catch (IllegalArgumentException e) {
            throw new UcxException("UCX is not installed: cannot load " + library
                    + " (on Debian/Ubuntu: apt-get install libucx0 ucx-utils)");
        }
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException re) {
            return re;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException(t);
    }

    // ------------------------------------------------------------------ status codes

    /** True if a {@code ucs_status_ptr_t} is an error code. */
    public static boolean isError(long statusPtr) {
        return Long.compareUnsigned(statusPtr, ERR_LAST) >= 0;
    }

    /** True if a {@code ucs_status_ptr_t} is a request handle (the operation is in progress). */
    public static boolean isRequest(long statusPtr) {
        return statusPtr != 0 && !isError(statusPtr);
    }

    /** The status a {@code ucs_status_ptr_t} stands for: OK, INPROGRESS or the error. */
    public static int status(long statusPtr) {
        return isRequest(statusPtr) ? UcsConstants.UCS_INPROGRESS : (int) statusPtr;
    }

    /** UCX's text for a status ({@code ucs_status_string}). */
    public String statusString(int status) {
        try {
            MemorySegment text = (MemorySegment) statusString.invokeExact((byte) status);
            // SAFETY: ucs_status_string returns a static NUL-terminated string.
            return text.reinterpret(256).getString(0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Throws {@link UcxException} for an error status; returns the status otherwise. */
    public int check(int status, String operation) {
        if (status < 0) {
            throw new UcxException(operation, status, statusString(status));
        }
        return status;
    }

    // ------------------------------------------------------------------ library and context

    /** {@code {major, minor, release}} of the loaded library ({@code ucp_get_version}). */
    public int[] version() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment numbers = arena.allocate(JAVA_INT, 3);
            getVersion.invokeExact(numbers, numbers.asSlice(4), numbers.asSlice(8));
            return new int[] {numbers.getAtIndex(JAVA_INT, 0), numbers.getAtIndex(JAVA_INT, 1),
                numbers.getAtIndex(JAVA_INT, 2)};
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Reads UCX's configuration from the environment (UCX_TLS, UCX_NET_DEVICES, ...); release it after init. */
    public long configRead() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check((byte) configRead.invokeExact(MemorySegment.NULL, MemorySegment.NULL, out), "ucp_config_read");
            return out.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public void configRelease(long config) {
        try {
            configRelease.invokeExact(config);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Creates a context ({@code ucp_init} is an inline wrapper of {@code ucp_init_version} with the
     * API version of the headers: the probed one here). {@code config} may be 0 for the defaults.
     */
    public long init(MemorySegment params, long config) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check((byte) initVersion.invokeExact(UcpConstants.UCP_API_MAJOR, UcpConstants.UCP_API_MINOR, params,
                    config, out), "ucp_init");
            return out.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public void cleanup(long context) {
        try {
            cleanup.invokeExact(context);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Fills a {@code ucp_context_attr_t} whose field mask the caller set. */
    public void contextQuery(long context, MemorySegment attr) {
        try {
            check((byte) contextQuery.invokeExact(context, attr), "ucp_context_query");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Sets one UCX variable in a configuration read by {@link #configRead}, for the context created from it only
     * ({@code ucp_config_modify}): {@code name} without the {@code UCX_} prefix; a transport's or memory domain's
     * variable goes without its component prefix too ({@code REG_METHODS} for {@code UCX_IB_REG_METHODS}), and UCX
     * applies it to every component that has it.
     */
    public void configModify(long config, String name, String value) {
        try (Arena arena = Arena.ofConfined()) {
            check((byte) configModify.invokeExact(config, arena.allocateFrom(name), arena.allocateFrom(value)),
                    "ucp_config_modify(" + name + "=" + value + ")");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** What {@code ucp_config_print} prints for a configuration with {@code flags} ({@code UCS_CONFIG_PRINT_*}). */
    public String configText(long config, int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment title = arena.allocateFrom("dvmm");
            return captured(stream -> {
                configPrint.invokeExact(config, stream, title, flags);
            }, "ucp_config_print");
        }
    }

    /** What {@code ucp_context_print_info} prints: the memory domains, devices and transports the context uses. */
    public String contextInfo(long context) {
        return captured(stream -> {
            contextPrintInfo.invokeExact(context, stream);
        }, "ucp_context_print_info");
    }

    /** A call that prints to a C {@code FILE*}. */
    @FunctionalInterface
    private interface Printer {
        void print(long stream) throws Throwable;
    }

    /** Runs {@code printer} on an {@code open_memstream} stream and returns what it printed. */
    private String captured(Printer printer, String what) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment bufferOut = arena.allocate(ADDRESS);
            MemorySegment sizeOut = arena.allocate(JAVA_LONG);
            long stream = (long) openMemstream.invokeExact(bufferOut, sizeOut);
            if (stream == 0) {
                throw new UcxException("open_memstream failed: cannot capture " + what);
            }
            printer.print(stream);
            int closed = (int) fclose.invokeExact(stream);
            long buffer = bufferOut.get(JAVA_LONG, 0);
            long size = sizeOut.get(JAVA_LONG, 0);
            try {
                if (closed != 0 || buffer == 0) {
                    throw new UcxException("fclose of the memstream failed: cannot capture " + what);
                }
                // SAFETY: open_memstream's buffer holds 'size' bytes (plus a NUL) after fclose.
                byte[] bytes = MemorySegment.ofAddress(buffer).reinterpret(size).toArray(JAVA_BYTE);
                return new String(bytes, StandardCharsets.UTF_8);
            } finally {
                free.invokeExact(buffer);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ------------------------------------------------------------------ worker

    public long workerCreate(long context, MemorySegment params) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check((byte) workerCreate.invokeExact(context, params, out), "ucp_worker_create");
            return out.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public void workerDestroy(long worker) {
        try {
            workerDestroy.invokeExact(worker);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Fills a {@code ucp_worker_attr_t} whose field mask the caller set (do not ask for the address here). */
    public void workerQuery(long worker, MemorySegment attr) {
        try {
            check((byte) workerQuery.invokeExact(worker, attr), "ucp_worker_query");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The worker's address, the bytes a peer passes to {@code ucp_ep_create}; copied, UCX's copy released. */
    public byte[] workerAddress(long worker) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment addressOut = arena.allocate(ADDRESS);
            MemorySegment lengthOut = arena.allocate(JAVA_LONG);
            check((byte) workerGetAddress.invokeExact(worker, addressOut, lengthOut), "ucp_worker_get_address");
            long address = addressOut.get(JAVA_LONG, 0);
            long length = lengthOut.get(JAVA_LONG, 0);
            try {
                // SAFETY: UCX returned 'length' bytes at 'address', valid until released below.
                return MemorySegment.ofAddress(address).reinterpret(length).toArray(JAVA_BYTE);
            } finally {
                workerReleaseAddress.invokeExact(worker, address);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Progresses communication; returns the number of events processed. Allocates nothing. */
    public int workerProgress(long worker) {
        try {
            return (int) workerProgress.invokeExact(worker);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The file descriptor that becomes readable when an armed worker has events. */
    public int workerEventFd(long worker) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check((byte) workerGetEfd.invokeExact(worker, out), "ucp_worker_get_efd");
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Arms the event fd; UCS_OK means "safe to wait", UCS_ERR_BUSY means "progress again first". */
    public int workerArm(long worker) {
        try {
            return (byte) workerArm.invokeExact(worker);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Waits up to {@code timeoutMs} for the armed worker's event fd: libc {@code poll} on the caller's
     * {@code struct pollfd}s. Without errno capture, which would cost a segment per call on this
     * rarely compiled path; a failed or interrupted wait only means the loop progresses again.
     */
    public int waitForEvents(MemorySegment pollFds, int count, int timeoutMs) {
        try {
            return (int) poll.invokeExact(pollFds, (long) count, timeoutMs);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Wakes a thread waiting on the worker's event fd; any thread may call it. */
    public int workerSignal(long worker) {
        try {
            return (byte) workerSignal.invokeExact(worker);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Installs (or with a NULL callback, removes) an active-message handler ({@code ucp_am_handler_param_t}). */
    public void setAmRecvHandler(long worker, MemorySegment params) {
        try {
            check((byte) workerSetAmRecvHandler.invokeExact(worker, params), "ucp_worker_set_am_recv_handler");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ------------------------------------------------------------------ endpoints and messages

    public long epCreate(long worker, MemorySegment params) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check((byte) epCreate.invokeExact(worker, params, out), "ucp_ep_create");
            return out.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Closes an endpoint; returns a status pointer (a request to wait for, 0, or an error). */
    public long epCloseNbx(long ep, MemorySegment param) {
        try {
            return (long) epCloseNbx.invokeExact(ep, param);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@code ucp_am_send_nbx} with header and data given as addresses. Allocates nothing. */
    public long amSendNbx(long ep, int id, long header, long headerLength, long buffer, long count,
                          MemorySegment param) {
        try {
            return (long) amSendNbx.invokeExact(ep, id, header, headerLength, buffer, count, param);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Starts receiving a rendezvous message's data into {@code buffer}. Allocates nothing. */
    public long amRecvDataNbx(long worker, long dataDescriptor, long buffer, long count, MemorySegment param) {
        try {
            return (long) amRecvDataNbx.invokeExact(worker, dataDescriptor, buffer, count, param);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Releases data an active-message handler kept by returning UCS_INPROGRESS. */
    public void amDataRelease(long worker, long data) {
        try {
            amDataRelease.invokeExact(worker, data);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int requestCheckStatus(long request) {
        try {
            return (byte) requestCheckStatus.invokeExact(request);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public void requestFree(long request) {
        try {
            requestFree.invokeExact(request);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public void requestCancel(long worker, long request) {
        try {
            requestCancel.invokeExact(worker, request);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ------------------------------------------------------------------ memory registration and RMA

    /** Registers (or allocates) memory for remote access; returns the {@code ucp_mem_h}. */
    public long memMap(long context, MemorySegment params) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check((byte) memMap.invokeExact(context, params, out), "ucp_mem_map");
            return out.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public void memUnmap(long context, long memh) {
        try {
            check((byte) memUnmap.invokeExact(context, memh), "ucp_mem_unmap");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The packed remote key of a registration, the bytes a peer unpacks; UCX's buffer is released. */
    public byte[] rkeyPack(long context, long memh) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment bufferOut = arena.allocate(ADDRESS);
            MemorySegment sizeOut = arena.allocate(JAVA_LONG);
            check((byte) rkeyPack.invokeExact(context, memh, bufferOut, sizeOut), "ucp_rkey_pack");
            long buffer = bufferOut.get(JAVA_LONG, 0);
            try {
                // SAFETY: UCX returned 'size' bytes at 'buffer', valid until released below.
                return MemorySegment.ofAddress(buffer).reinterpret(sizeOut.get(JAVA_LONG, 0)).toArray(JAVA_BYTE);
            } finally {
                rkeyBufferRelease.invokeExact(buffer);
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Unpacks a peer's remote key for use on {@code ep}; returns the {@code ucp_rkey_h}. */
    public long epRkeyUnpack(long ep, byte[] packedKey) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment key = arena.allocateFrom(JAVA_BYTE, packedKey);
            MemorySegment out = arena.allocate(ADDRESS);
            check((byte) epRkeyUnpack.invokeExact(ep, key, out), "ucp_ep_rkey_unpack");
            return out.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public void rkeyDestroy(long rkey) {
        try {
            rkeyDestroy.invokeExact(rkey);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** One-sided read of {@code count} bytes at {@code remoteAddress} into {@code buffer}. Allocates nothing. */
    public long getNbx(long ep, long buffer, long count, long remoteAddress, long rkey, MemorySegment param) {
        try {
            return (long) getNbx.invokeExact(ep, buffer, count, remoteAddress, rkey, param);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ------------------------------------------------------------------ upcalls

    /**
     * {@code ucp_am_recv_callback_t}: pointers arrive as addresses; returns a {@code ucs_status_t}.
     * Runs inside {@code ucp_worker_progress}; must not call it.
     */
    @FunctionalInterface
    public interface ActiveMessageHandler {
        byte onActiveMessage(long arg, long header, long headerLength, long data, long length, long param);
    }

    /** {@code ucp_send_nbx_callback_t} (also used for endpoint close and get). */
    @FunctionalInterface
    public interface SendCompletion {
        void onSendComplete(long request, byte status, long userData);
    }

    /** {@code ucp_am_recv_data_nbx_callback_t}. */
    @FunctionalInterface
    public interface ReceiveCompletion {
        void onReceiveComplete(long request, byte status, long length, long userData);
    }

    /** {@code ucp_err_handler_cb_t}. */
    @FunctionalInterface
    public interface EndpointErrorHandler {
        void onEndpointError(long arg, long ep, byte status);
    }

    private static final MethodHandle AM_FAILED;
    private static final MethodHandle VOID_FAILED;

    static {
        try {
            AM_FAILED = LOOKUP.findStatic(Ucp.class, "activeMessageFailed", MethodType.methodType(byte.class,
                    Throwable.class));
            VOID_FAILED = LOOKUP.findStatic(Ucp.class, "callbackFailed", MethodType.methodType(void.class,
                    Throwable.class));
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    // An exception escaping an upcall would kill the JVM: report it and return a neutral status.
    private static byte activeMessageFailed(Throwable t) {
        System.err.println("dvmm: UCX active-message callback threw " + t);
        t.printStackTrace();
        return (byte) UcsConstants.UCS_OK;
    }

    private static void callbackFailed(Throwable t) {
        System.err.println("dvmm: UCX completion callback threw " + t);
        t.printStackTrace();
    }

    private static MemorySegment stub(Class<?> type, String method, Object target, FunctionDescriptor descriptor,
                                      MethodHandle onFailure, Arena arena) {
        try {
            MethodHandle handle = LOOKUP.findVirtual(type, method, descriptor.toMethodType()).bindTo(target);
            handle = MethodHandles.catchException(handle, Throwable.class, onFailure);
            return LINKER.upcallStub(handle, descriptor, arena);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(e);
        }
    }

    /** An upcall stub for an active-message handler, alive as long as {@code arena}. Create once. */
    public static MemorySegment activeMessageStub(ActiveMessageHandler handler, Arena arena) {
        return stub(ActiveMessageHandler.class, "onActiveMessage", handler,
                FunctionDescriptor.of(STATUS, HANDLE, HANDLE, JAVA_LONG, HANDLE, JAVA_LONG, HANDLE), AM_FAILED, arena);
    }

    public static MemorySegment sendCompletionStub(SendCompletion completion, Arena arena) {
        return stub(SendCompletion.class, "onSendComplete", completion,
                FunctionDescriptor.ofVoid(HANDLE, STATUS, HANDLE), VOID_FAILED, arena);
    }

    public static MemorySegment receiveCompletionStub(ReceiveCompletion completion, Arena arena) {
        return stub(ReceiveCompletion.class, "onReceiveComplete", completion,
                FunctionDescriptor.ofVoid(HANDLE, STATUS, JAVA_LONG, HANDLE), VOID_FAILED, arena);
    }

    public static MemorySegment endpointErrorStub(EndpointErrorHandler handler, Arena arena) {
        return stub(EndpointErrorHandler.class, "onEndpointError", handler,
                FunctionDescriptor.ofVoid(HANDLE, HANDLE, STATUS), VOID_FAILED, arena);
    }
}
