package dev.dvmm.dsm.transport;

/**
 * Receives one-way messages and requests. Called on the transport's receive thread with a
 * flyweight that is only valid during the call: copy what you need before returning. Do not
 * block here (no blocking {@link Transport#request} from a handler: it would wait for a reply
 * that only this thread can read); answer a request with {@link Transport#reply}, now or later.
 */
@FunctionalInterface
public interface MessageHandler {
    void onMessage(InboundMessage message);
}
