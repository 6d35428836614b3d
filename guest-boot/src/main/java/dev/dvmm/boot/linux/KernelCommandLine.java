package dev.dvmm.boot.linux;

import dev.dvmm.boot.BootException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The kernel command line, built argument by argument in the order given. Every argument is
 * printable ASCII without NUL; spaces are only allowed inside a double-quoted value (which the
 * {@link #add(String, String)} helper writes for you). The length is checked against the kernel's
 * cmdline_size when the line is written to guest memory.
 */
public final class KernelCommandLine {
    private final List<String> arguments = new ArrayList<>();

    /** Appends one argument ("quiet", "console=ttyS0", "foo=\"a b\""). */
    public KernelCommandLine add(String argument) {
        checkArgument(argument);
        arguments.add(argument);
        return this;
    }

    /** Appends {@code key=value}, quoting the value when it holds spaces. */
    public KernelCommandLine add(String key, String value) {
        checkKey(key);
        if (value.indexOf('"') >= 0) {
            throw new BootException(BootException.Kind.INVALID_ARGUMENT, "kernel command line: the value of " + key + " contains a double quote, which the kernel cannot parse.");
        }
        return add(key + "=" + (value.indexOf(' ') >= 0 ? "\"" + value + "\"" : value));
    }

    /** Appends {@code key=value} for a number. */
    public KernelCommandLine add(String key, long value) {
        return add(key, Long.toString(value));
    }

    /** Appends the whitespace-separated arguments of {@code line}; quoted values stay whole. */
    public KernelCommandLine addAll(String line) {
        StringBuilder current = new StringBuilder();
        boolean quoted = false;
        for (int i = 0; i < line.length(); i++) {
            char c = line.charAt(i);
            if (c == '"') {
                quoted = !quoted;
            }
            if (c == ' ' && !quoted) {
                if (!current.isEmpty()) {
                    add(current.toString());
                    current.setLength(0);
                }
            } else {
                current.append(c);
            }
        }
        if (!current.isEmpty()) {
            add(current.toString());
        }
        return this;
    }

    /** Whether an argument {@code key} or {@code key=...} is present. */
    public boolean contains(String key) {
        for (String a : arguments) {
            if (a.equals(key) || a.startsWith(key + "=")) {
                return true;
            }
        }
        return false;
    }

    public List<String> arguments() {
        return List.copyOf(arguments);
    }

    /** Length in bytes, without the terminating NUL. */
    public int length() {
        return toString().length();
    }

    @Override
    public String toString() {
        return String.join(" ", arguments);
    }

    /**
     * The NUL-terminated bytes to place in guest memory, after checking that a kernel accepting at
     * most {@code maxLength} bytes (its cmdline_size) can take them.
     */
    public byte[] toBytes(long maxLength, String kernelName) {
        String line = toString();
        if (line.length() > maxLength) {
            throw new BootException(BootException.Kind.DOES_NOT_FIT, String.format(
                    "%s: the command line is %d bytes but this kernel accepts at most %d (cmdline_size).",
                    kernelName, line.length(), maxLength));
        }
        byte[] text = line.getBytes(StandardCharsets.US_ASCII);
        byte[] bytes = new byte[text.length + 1];
        System.arraycopy(text, 0, bytes, 0, text.length);
        return bytes;
    }

    private static void checkKey(String key) {
        if (key.isEmpty() || key.indexOf('=') >= 0 || key.indexOf(' ') >= 0 || key.indexOf('"') >= 0) {
            throw new BootException(BootException.Kind.INVALID_ARGUMENT, "kernel command line: \"" + printable(key) + "\" is not a valid parameter name.");
        }
    }

    private static void checkArgument(String argument) {
        if (argument.isEmpty()) {
            throw new BootException(BootException.Kind.INVALID_ARGUMENT, "kernel command line: an argument is empty.");
        }
        boolean quoted = false;
        for (int i = 0; i < argument.length(); i++) {
            char c = argument.charAt(i);
            if (c < 0x20 || c > 0x7e) {
                throw new BootException(BootException.Kind.INVALID_ARGUMENT, String.format(
                        "kernel command line: argument \"%s\" contains character 0x%02x; only printable ASCII is allowed.",
                        printable(argument), (int) c));
            }
            if (c == '"') {
                quoted = !quoted;
            } else if (c == ' ' && !quoted) {
                throw new BootException(BootException.Kind.INVALID_ARGUMENT, "kernel command line: argument \"" + argument + "\" contains an unquoted space.");
            }
        }
        if (quoted) {
            throw new BootException(BootException.Kind.INVALID_ARGUMENT, "kernel command line: argument \"" + argument + "\" has an unterminated quote.");
        }
    }

    private static String printable(String s) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            b.append(c >= 0x20 && c <= 0x7e ? String.valueOf(c) : String.format("\\x%02x", (int) c));
        }
        return b.toString();
    }
}
