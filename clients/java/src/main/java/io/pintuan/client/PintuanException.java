package io.pintuan.client;

/**
 * A request that got no reply: the connection failed beyond what failover
 * could mend (every address tried within the failover bounds), the client
 * was closed, too many requests were in flight, or the configuration is
 * unusable. A mutating request may have been decided anyway: retry it with
 * the same request id, which is always safe (the daemon answers a retry of
 * a decided request with its original answer, marked {@code replay}).
 *
 * <p>A reply, whatever its status (SOLD_OUT, NOT_FOUND, ...), is never an
 * exception: it is the {@link io.pintuan.v1.Response} returned.
 */
public class PintuanException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public PintuanException(String message) {
    super(message);
  }

  public PintuanException(String message, Throwable cause) {
    super(message, cause);
  }
}
