package dev.dvmm.hv.lab;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class PrefixedLinesTest {
    @Test
    void linesOfTwoHostsStayWhole() throws IOException {
        var target = new ByteArrayOutputStream();
        var h0 = new PrefixedLines(target, "[0] ");
        var h1 = new PrefixedLines(target, "[1] ");
        h0.write("par".getBytes(StandardCharsets.UTF_8));
        h1.write("one\ntw".getBytes(StandardCharsets.UTF_8));
        h0.write("tial\nnext\n".getBytes(StandardCharsets.UTF_8));
        h1.write('o');
        h1.close();
        h0.write("unterminated".getBytes(StandardCharsets.UTF_8));
        h0.close();
        assertEquals("[1] one\n[0] partial\n[0] next\n[1] two\n[0] unterminated\n",
                target.toString(StandardCharsets.UTF_8));
    }
}
