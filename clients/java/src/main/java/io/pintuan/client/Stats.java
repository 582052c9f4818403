package io.pintuan.client;

/** What failover did, summed over the client's connections (libpintuan's pintuan_stats). */
public final class Stats {
  /** Connections lost (each one began a failover). */
  public final long failures;
  /** New connections made by failover or a redirect. */
  public final long reconnects;
  /** NOT_LEADER replies followed to the leader. */
  public final long redirects;
  /** Requests sent again on a new connection. */
  public final long resent;
  /** Requests sent again after UNAVAILABLE or OVERLOADED. */
  public final long busy;
  /** NOT_LEADER naming an address not in the list: not followed. */
  public final long strangers;

  Stats(long failures, long reconnects, long redirects, long resent, long busy, long strangers) {
    this.failures = failures;
    this.reconnects = reconnects;
    this.redirects = redirects;
    this.resent = resent;
    this.busy = busy;
    this.strangers = strangers;
  }

  @Override
  public String toString() {
    return "failures=" + failures + " reconnects=" + reconnects + " redirects=" + redirects + " resent=" + resent
        + " busy=" + busy + " strangers=" + strangers;
  }
}
