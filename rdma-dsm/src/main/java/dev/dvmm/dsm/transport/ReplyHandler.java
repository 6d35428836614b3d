package dev.dvmm.dsm.transport;

/**
 * Completion of a request made with {@link Transport#requestAsync}. Exactly one of the two methods
 * is called once per request. {@code token} is the caller's 64-bit context given with the request,
 * so one preallocated handler can serve every request without a capturing lambda.
 */
public interface ReplyHandler {

    /** The reply arrived; called on the receive thread, the flyweight is valid only during the call. */
    void onReply(InboundMessage reply, long token);

    /**
     * The request failed (timeout, peer died, transport closed). Called on the receive thread, or on
     * the thread that closes the transport, or on the caller's thread if sending failed.
     */
    void onFailure(long token, TransportException failure);
}
