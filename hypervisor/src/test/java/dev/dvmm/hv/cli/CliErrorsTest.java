package dev.dvmm.hv.cli;

import dev.dvmm.hv.vstate.GuestMemory;
import dev.dvmm.hv.vstate.Kvm;
import dev.dvmm.hv.vstate.KvmException;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import picocli.CommandLine.TypeConversionException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Bad input gives one clear sentence and a non-zero exit, never a stack trace. */
class CliErrorsTest {
    @Test
    void missingKvmDeviceIsExplained() {
        KvmException e = assertThrows(KvmException.class, () -> Kvm.open("/dev/nonexistent-kvm"));
        assertTrue(e.getMessage().startsWith("/dev/nonexistent-kvm does not exist: this host has no KVM"), e.getMessage());
    }

    @Test
    void notAKvmDeviceIsExplained() {
        KvmException e = assertThrows(KvmException.class, () -> Kvm.open("/dev/null"));
        assertTrue(e.getMessage().contains("API version"), e.getMessage());
    }

    @Test
    void guestMemorySizesAreValidated() {
        assertThrows(KvmException.class, () -> GuestMemory.validateSize(1_000_001));
        assertThrows(KvmException.class, () -> GuestMemory.validateSize(0));
        assertThrows(KvmException.class, () -> GuestMemory.validateSize(4096));
        GuestMemory.validateSize(2L << 20);
    }

    @Test
    void sizesParseWithBinaryUnits() {
        assertEquals(512L << 20, ByteSize.parse("512M"));
        assertEquals(2L << 30, ByteSize.parse("2G"));
        assertEquals(2L << 30, ByteSize.parse("2GiB"));
        assertEquals(65536, ByteSize.parse("64k"));
        assertEquals(12345, ByteSize.parse("12345"));
        assertThrows(TypeConversionException.class, () -> ByteSize.parse("lots"));
        assertThrows(TypeConversionException.class, () -> ByteSize.parse("-5M"));
        assertThrows(TypeConversionException.class, () -> ByteSize.parse("99999999999999T"));
    }

    @Test
    void unalignedMemoryOnTheCommandLineIsOneSentenceAndExitCodeTwo() {
        String[] err = new String[1];
        int rc = capture(err, "guest", "--memory", "1000001");
        assertEquals(2, rc);
        assertTrue(err[0].contains("guest memory size 1000001 bytes is not a multiple of the 4096-byte page size"), err[0]);
        assertFalse(err[0].contains("Exception"), err[0]);
    }

    @Test
    void benchTransportRefusesBadNumbersInOneSentence() {
        String[] err = new String[1];
        assertEquals(1, capture(err, "bench", "transport", "--iterations", "10"));
        assertTrue(err[0].contains("--iterations must be at least 1000"), err[0]);
        assertEquals(1, capture(err, "bench", "transport", "--ucx-busy-poll-us", "5,-1"));
        assertTrue(err[0].contains("--ucx-busy-poll-us takes microseconds in 0..1000000, not -1"), err[0]);
        assertFalse(err[0].contains("Exception"), err[0]);
    }

    @Test
    void benchFaultRefusesOneSidedReadsWhereNoneCanHappen() {
        String[] err = new String[1];
        assertEquals(1, capture(err, "bench", "fault", "--node-processes", "--in-process"));
        assertTrue(err[0].contains("--node-processes and --in-process exclude each other"), err[0]);
        assertEquals(1, capture(err, "bench", "fault", "--one-sided-reads"));
        assertTrue(err[0].contains("--one-sided-reads needs --transport ucx and --nodes 4"), err[0]);
        assertEquals(1, capture(err, "bench", "fault", "--one-sided-reads", "--transport", "ucx", "--nodes", "2"));
        assertTrue(err[0].contains("with 2 nodes no read can be one-sided"), err[0]);
        assertFalse(err[0].contains("Exception"), err[0]);
    }

    @Test
    void guestRefusesRemoteReadsItCannotHave() {
        String[] err = new String[1];
        assertEquals(1, capture(err, "guest", "--nodes", "2", "--busy-poll-us", "-5"));
        assertTrue(err[0].contains("--busy-poll-us takes microseconds in 0..1000000, not -5"), err[0]);
        assertEquals(1, capture(err, "guest", "--nodes", "2", "--remote-reads", "on"));
        assertTrue(err[0].contains("--remote-reads on needs --transport ucx"), err[0]);
        assertEquals(1, capture(err, "guest", "--nodes", "2", "--transport", "ucx", "--remote-reads", "maybe"));
        assertTrue(err[0].contains("remote reads 'maybe': use off, on or auto"), err[0]);
        assertFalse(err[0].contains("Exception"), err[0]);
    }

    @Test
    void unknownCommandIsRejected() {
        String[] err = new String[1];
        assertEquals(2, capture(err, "frobnicate"));
        assertTrue(err[0].contains("frobnicate"), err[0]);
    }

    @Test
    void everySubcommandAnswersHelp() {
        for (String[] args : new String[][] {{"bench", "fault", "--help"}, {"bench", "transport", "-h"},
            {"guest", "--help"}, {"node", "--help"}, {"bench", "--help"}}) {
            PrintStream old = System.out;
            ByteArrayOutputStream buf = new ByteArrayOutputStream();
            System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
            String[] err = new String[1];
            int status;
            try {
                status = capture(err, args);
            } finally {
                System.setOut(old);
            }
            String out = buf.toString(StandardCharsets.UTF_8);
            assertEquals(0, status, String.join(" ", args) + ": " + err[0]);
            assertTrue(out.startsWith("Usage: dvmm " + args[0]), String.join(" ", args) + " printed: " + out);
        }
    }

    private static int capture(String[] err, String... args) {
        PrintStream old = System.err;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        System.setErr(new PrintStream(buf, true, StandardCharsets.UTF_8));
        try {
            return Main.run(args);
        } finally {
            System.setErr(old);
            err[0] = buf.toString(StandardCharsets.UTF_8);
        }
    }
}
