package dev.dvmm.dsm.transport;

import java.net.InetSocketAddress;

/** A node's address as {@code host:port}; port 0 asks the transport to pick a free port when binding. */
public record Endpoint(String host, int port) {

    public Endpoint {
        if (host == null || host.isBlank()) {
            throw new IllegalArgumentException("endpoint host is empty");
        }
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("endpoint port " + port + " is outside 0..65535");
        }
    }

    /** Parses {@code host:port}, {@code [v6addr]:port} too; rejects anything else with a one-line reason. */
    public static Endpoint parse(String text) {
        if (text == null) {
            throw new IllegalArgumentException("endpoint is missing (expected host:port)");
        }
        int colon = text.lastIndexOf(':');
        if (colon <= 0 || colon == text.length() - 1) {
            throw new IllegalArgumentException("endpoint '" + text + "' is not host:port");
        }
        String host = text.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        } else if (host.indexOf(':') >= 0) {
            throw new IllegalArgumentException("endpoint '" + text + "': write an IPv6 host as [addr]:port");
        }
        int port;
        try {
            port = Integer.parseInt(text.substring(colon + 1));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("endpoint '" + text + "' has a port that is not a number");
        }
        return new Endpoint(host, port);
    }

    /** An unresolved socket address; resolution happens when connecting, so a bad name fails there. */
    public InetSocketAddress toSocketAddress() {
        return new InetSocketAddress(host, port);
    }

    @Override
    public String toString() {
        return host.indexOf(':') >= 0 ? "[" + host + "]:" + port : host + ":" + port;
    }
}
