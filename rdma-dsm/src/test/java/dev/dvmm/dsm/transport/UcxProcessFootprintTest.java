package dev.dvmm.dsm.transport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.dvmm.bindings.Posix;
import dev.dvmm.bindings.Ucp;
import dev.dvmm.bindings.abi.Sigaction;
import dev.dvmm.bindings.ucx.UcsConstants;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A UCX transport leaves the JVM process alone: HotSpot keeps its trap signals (UCX's error handler
 * would kill the JVM on a safepoint poll), and libc's memory functions are not patched (UCX's
 * memory hooks rewrite them in place while JVM threads run them).
 */
class UcxProcessFootprintTest {
    private static final int CODE_BYTES = 16;

    @BeforeAll
    static void requireUcx() {
        assumeTrue(Ucp.isInstalled(), "UCX is not installed (apt-get install libucx0): skipping the UCX transport");
    }

    @Test
    void theJvmKeepsItsSignalsAndLibcStaysUnpatched() throws Exception {
        byte[] secret = new byte[32];
        // A context and a worker exist while the checks run: that is when UCX installs what it installs.
        try (UcxTransport transport = new UcxTransport(UcxTransportConfig.loopback(0, 1, secret))) {
            assertNotNull(transport.localEndpoint());
            List<String> maps = Files.readAllLines(Path.of("/proc/self/maps"));
            int[] signals = {UcsConstants.SIGSEGV, UcsConstants.SIGBUS, UcsConstants.SIGILL, UcsConstants.SIGFPE,
                UcsConstants.SIGHUP};
            for (int signal : signals) {
                if (signal == UcsConstants.SIGHUP && startedWith("UCX_DEBUG_SIGNO")) {
                    System.out.println("not checking SIGHUP: UCX_DEBUG_SIGNO is set in this environment");
                    continue;
                }
                String owner = mappingOf(maps, handlerOf(signal)).path();
                assertFalse(owner.contains("libucs") || owner.contains("libucp"),
                        "signal " + signal + " is handled by " + owner);
            }
            if (startedWith("UCX_MEM_EVENTS")) {
                System.out.println("not checking libc: UCX_MEM_EVENTS is set in this environment");
                return;
            }
            for (String function : new String[] {"mmap", "munmap", "mremap", "madvise", "brk", "sbrk"}) {
                MemorySegment code = Posix.libcSymbol(function).reinterpret(CODE_BYTES);
                Mapping mapping = mappingOf(maps, code.address());
                byte[] onDisk = new byte[CODE_BYTES];
                try (RandomAccessFile file = new RandomAccessFile(mapping.path(), "r")) {
                    file.seek(code.address() - mapping.start() + mapping.offset());
                    file.readFully(onDisk);
                }
                assertArrayEquals(onDisk, code.toArray(ValueLayout.JAVA_BYTE),
                        function + " in memory differs from " + mapping.path() + ": patched by UCX's memory hooks");
            }
        }
    }

    /** Whether the process was started with this variable (dvmm sets some itself, so System.getenv may see ours). */
    private static boolean startedWith(String name) throws IOException {
        for (String entry : new String(Files.readAllBytes(Path.of("/proc/self/environ"))).split("\0")) {
            if (entry.startsWith(name + "=")) {
                return true;
            }
        }
        return false;
    }

    private static long handlerOf(int signal) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment action = arena.allocate(Sigaction.LAYOUT);
            Posix.check(Posix.current().sigaction(signal, MemorySegment.NULL, action), "sigaction");
            return Sigaction.saHandler(action);
        }
    }

    private record Mapping(long start, long offset, String path) {
    }

    /** The /proc/self/maps line that holds an address; path "" for an anonymous mapping. */
    private static Mapping mappingOf(List<String> maps, long address) throws IOException {
        for (String line : maps) {
            String[] f = line.trim().split("\\s+", 6);
            String[] range = f[0].split("-");
            long start = Long.parseUnsignedLong(range[0], 16);
            long end = Long.parseUnsignedLong(range[1], 16);
            if (Long.compareUnsigned(address, start) >= 0 && Long.compareUnsigned(address, end) < 0) {
                return new Mapping(start, Long.parseUnsignedLong(f[2], 16), f.length > 5 ? f[5] : "");
            }
        }
        throw new IOException("address 0x" + Long.toHexString(address) + " is in no mapping of this process");
    }
}
