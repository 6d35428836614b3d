package dev.dvmm.boot.linux;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dvmm.boot.BootException;
import dev.dvmm.boot.BootException.Kind;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

class KernelCommandLineTest {

    @Test
    void argumentsKeepTheirOrder() {
        KernelCommandLine line = new KernelCommandLine()
                .add("console", "ttyS0")
                .add("noxsave")
                .add("maxcpus", 4)
                .addAll("  rdinit=/init   panic=-1 ")
                .add("--")
                .add("init-arg");
        assertEquals("console=ttyS0 noxsave maxcpus=4 rdinit=/init panic=-1 -- init-arg", line.toString());
        assertEquals(List.of("console=ttyS0", "noxsave", "maxcpus=4", "rdinit=/init", "panic=-1", "--", "init-arg"),
                line.arguments());
        assertTrue(line.contains("maxcpus"));
        assertTrue(line.contains("noxsave"));
        assertFalse(line.contains("max"));
    }

    @Test
    void valuesWithSpacesAreQuotedAndKeptWholeByAddAll() {
        KernelCommandLine line = new KernelCommandLine().add("dyndbg", "file foo.c +p");
        assertEquals("dyndbg=\"file foo.c +p\"", line.toString());
        KernelCommandLine parsed = new KernelCommandLine().addAll("a=1 dyndbg=\"file foo.c +p\" b");
        assertEquals(List.of("a=1", "dyndbg=\"file foo.c +p\"", "b"), parsed.arguments());
    }

    @Test
    void bytesAreNulTerminatedAscii() {
        byte[] bytes = new KernelCommandLine().add("quiet").toBytes(100, "k");
        assertArrayEquals("quiet\0".getBytes(StandardCharsets.US_ASCII), bytes);
        assertEquals(1, new KernelCommandLine().toBytes(0, "k").length, "an empty line is just the NUL");
    }

    @Test
    void lineLongerThanCmdlineSizeDoesNotFit() {
        KernelCommandLine line = new KernelCommandLine().add("x".repeat(200)).add("y".repeat(55));
        assertEquals(256, line.length());
        assertEquals(257, line.toBytes(256, "k").length);
        BootException e = assertThrows(BootException.class, () -> line.toBytes(255, "vmlinuz-test"));
        assertEquals(Kind.DOES_NOT_FIT, e.kind());
        assertTrue(e.getMessage().startsWith("vmlinuz-test:"), e.getMessage());
        assertTrue(e.getMessage().contains("256") && e.getMessage().contains("255"), e.getMessage());
    }

    @Test
    void badTextIsRejected() {
        KernelCommandLine line = new KernelCommandLine();
        assertEquals(Kind.INVALID_ARGUMENT, assertThrows(BootException.class, () -> line.add("a\0b")).kind());
        assertThrows(BootException.class, () -> line.add("caf\u00e9"));
        assertThrows(BootException.class, () -> line.add("tab\there"));
        assertThrows(BootException.class, () -> line.add("two words"));
        assertThrows(BootException.class, () -> line.add("open=\"quote"));
        assertThrows(BootException.class, () -> line.add(""));
        assertThrows(BootException.class, () -> line.add("k=v", "x"));
        assertThrows(BootException.class, () -> line.add("k", "say \"hi\""));
        assertThrows(BootException.class, () -> line.addAll("ok bad\u0001"));
        BootException e = assertThrows(BootException.class, () -> line.add("a\nb"));
        assertTrue(e.getMessage().contains("0x0a"), e.getMessage());
    }
}
