package io.pintuan.client;

import io.pintuan.v1.Event;

/**
 * Receives the events a {@code Subscribe} asked for (hold expired, waitlist
 * granted, group completed, ...), pushed by the daemon as Responses with id
 * 0. Called on the connection's reader thread, in the order the daemon
 * sent them: return quickly (hand slow work to an executor), and never wait
 * there for a reply of the same client.
 */
@FunctionalInterface
public interface EventListener {
  void onEvent(Event event);
}
