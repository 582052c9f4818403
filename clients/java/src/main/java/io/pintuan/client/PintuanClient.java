package io.pintuan.client;

import io.pintuan.v1.CampaignSpec;
import io.pintuan.v1.Event;
import io.pintuan.v1.JoinMode;
import io.pintuan.v1.Request;
import io.pintuan.v1.Response;
import io.pintuan.v1.Status;
import java.nio.file.Path;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocketFactory;

/**
 * A client of pintuand (protocol pintuan.v1), as libpintuan behaves:
 * length-prefixed protobuf frames over TCP (or TLS), pipelined, with
 * failover across a primary and its standbys. Thread-safe: share one.
 *
 * <pre>{@code
 * try (PintuanClient c = PintuanClient.connect("10.0.0.1:7733,10.0.0.2:7733")) {
 *   Response r = c.reserve("sale-42", "user-7", 1, "order-1001");
 *   System.out.println(r.getStatus());                    // OK, SOLD_OUT, ...
 * }
 * }</pre>
 *
 * <p><b>Asynchronous and pipelined.</b> {@link #call} and {@link #send}
 * return a {@code CompletableFuture<Response>} at once; any number may be in
 * flight on a connection (up to {@link Config.Builder#maxInFlight}), and
 * replies come back in request order. Futures complete on the connection's
 * reader thread: chain slow or blocking work with the {@code *Async}
 * variants of CompletableFuture. The blocking methods ({@link #reserve},
 * ...) are {@code call(...)} and a wait; they must not be called on that
 * thread.
 *
 * <p><b>Replies.</b> A reply is returned whatever its status (check
 * {@code getStatus()}: OK, SOLD_OUT, LIMIT_EXCEEDED, ...; {@code
 * getReplay()} marks the answer to a retried request id). A
 * {@link PintuanException} means no reply came (failover gave up, the client
 * was closed): retry with the same request id.
 *
 * <p><b>Failover</b> (libpintuan's, README "The C client"). When a
 * connection is lost (refused, reset, closed) or a reply is not in time,
 * the client connects to the next address of the list, round robin, and
 * sends again, in order, every request not answered yet, byte for byte
 * (same correlation id and request id): a retried mutation has exactly one
 * effect. A NOT_LEADER reply for the oldest request in flight sends the
 * client to the primary it names when that is one of the client's
 * addresses, else to the next address. A new connection first gets the
 * session back: the last Hello and Subscribe the daemon answered OK.
 * Attempts pause 10 ms, doubling to 500 ms (none before the first, nor
 * before following a NOT_LEADER), at most 16 within 10 s by default
 * ({@link Config.Builder#failover}). A request made with {@link #call} (and
 * every blocking method) answered UNAVAILABLE or OVERLOADED is sent again,
 * the same request, with the same pauses and bounds, before its future
 * completes with that answer; {@link #send} returns replies as they come.
 */
public final class PintuanClient implements AutoCloseable {
  private final Config cfg;
  private final Connection[] conns;
  private final AtomicInteger next = new AtomicInteger();
  private final ScheduledThreadPoolExecutor timer;
  private volatile EventListener listener;

  private PintuanClient(Config cfg) {
    this.cfg = cfg;
    SSLSocketFactory ssl = null;
    if (cfg.tls) {
      SSLContext ctx = cfg.sslContext != null ? cfg.sslContext : Tls.context(cfg.tlsCa, cfg.tlsCert, cfg.tlsKey);
      ssl = ctx.getSocketFactory();
    }
    timer = new ScheduledThreadPoolExecutor(1, r -> {
      Thread t = new Thread(r, "pintuan-timer");
      t.setDaemon(true);
      return t;
    });
    timer.setRemoveOnCancelPolicy(true);
    conns = new Connection[cfg.connections];
    try {
      for (int i = 0; i < conns.length; i++) conns[i] = new Connection(this, cfg, ssl, i);
    } catch (RuntimeException e) {
      close();
      throw e;
    }
  }

  /** Connects to the first of the addresses ("h1:p1,h2:p2") that answers, with the defaults. */
  public static PintuanClient connect(String addresses) {
    return connect(Config.builder(addresses).build());
  }

  /**
   * Connects every connection of cfg (to the first address that answers;
   * a PintuanException naming every address's reason when none does), and
   * says Hello with cfg's key on each (a PintuanException when it is not
   * answered OK).
   */
  public static PintuanClient connect(Config cfg) {
    PintuanClient c = new PintuanClient(cfg);
    if (cfg.key != null) {
      try {
        Response r = c.hello(cfg.key.name(), cfg.key.secret());
        if (r.getStatus() != Status.OK)
          throw new PintuanException("hello as " + cfg.key.name() + ": " + r.getStatus()
              + (r.getDetail().isEmpty() ? "" : " (" + r.getDetail() + ")"));
      } catch (RuntimeException e) {
        c.close();
        throw e;
      }
    }
    return c;
  }

  public Config config() {
    return cfg;
  }

  // ---- any request ----

  /**
   * Round robin; but a request sent from a connection's reader thread (a
   * future's callback) goes to that connection: a chain of requests stays
   * on one pipeline, and no other connection's writer is woken for it.
   */
  private Connection pick() {
    if (conns.length == 1) return conns[0];
    Thread t = Thread.currentThread();
    if (t instanceof Connection.ReaderThread && ((Connection.ReaderThread) t).conn.client() == this)
      return ((Connection.ReaderThread) t).conn;
    return conns[Math.floorMod(next.getAndIncrement(), conns.length)];
  }

  /**
   * Sends req (its id, if any, is replaced by the connection's own) and
   * returns its reply as it comes, UNAVAILABLE and OVERLOADED included
   * (libpintuan's pintuan_send + pintuan_recv).
   */
  public CompletableFuture<Response> send(Request req) {
    return pick().submit(req, false);
  }

  /**
   * Sends req; a reply UNAVAILABLE or OVERLOADED is followed by the same
   * request again after a pause, within the failover bounds, before the
   * future completes with the last reply (libpintuan's pintuan_call).
   */
  public CompletableFuture<Response> call(Request req) {
    return pick().submit(req, true);
  }

  /** The reply to req, waiting for it (see {@link #call}). */
  public Response await(Request req) {
    return await(call(req));
  }

  /**
   * Waits for a future of this client: its reply, or a PintuanException
   * when none came. Not on the client's reader thread (a callback), where
   * the reply could never arrive.
   */
  public Response await(CompletableFuture<Response> f) {
    for (Connection c : conns) {
      if (c.isReaderThread() && !f.isDone())
        throw new PintuanException("a blocking call on the client's reader thread: use the futures there");
    }
    try {
      if (cfg.timeoutMs <= 0) return f.get();
      // the connection bounds every wait; this only guards against a bug
      long bound = 2L * cfg.timeoutMs + 2L * Math.max(cfg.failoverMs, 0) + 5000;
      return f.get(bound, TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new PintuanException("interrupted waiting for a reply", e);
    } catch (ExecutionException e) {
      Throwable c = e.getCause();
      if (c instanceof PintuanException) throw new PintuanException(c.getMessage(), c);
      throw new PintuanException(String.valueOf(c), c);
    } catch (TimeoutException e) {
      throw new PintuanException("no reply in time", e);
    } catch (CancellationException e) {
      throw new PintuanException("cancelled", e);
    }
  }

  // ---- events ----

  /** Where events go (a Subscribe asks for them). */
  public void setEventListener(EventListener l) {
    listener = l;
  }

  void deliver(Event e) {
    EventListener l = listener;
    if (l == null) return;
    try {
      l.onEvent(e);
    } catch (RuntimeException x) {
      // a listener's failure is its own: the connection goes on
    }
  }

  void schedule(Runnable r, int ms) {
    try {
      timer.schedule(r, ms, TimeUnit.MILLISECONDS);
    } catch (java.util.concurrent.RejectedExecutionException e) {
      r.run(); // closed: the request fails at once
    }
  }

  // ---- blocking calls ----

  /**
   * Says who the client is, on every connection (each says it again after
   * every failover): the reply of the first. A wrong key is answered
   * UNAUTHENTICATED and the daemon closes the connection.
   */
  public Response hello(String key, String secret) {
    Request q = Requests.hello(key, secret, cfg.clientName);
    java.util.List<CompletableFuture<Response>> fs = new java.util.ArrayList<>();
    for (Connection c : conns) fs.add(c.submit(q, true));
    Response first = null;
    for (CompletableFuture<Response> f : fs) {
      Response r = await(f);
      if (first == null || (first.getStatus() == Status.OK && r.getStatus() != Status.OK)) first = r;
    }
    return first;
  }

  /** Hello with a key file's key ("NAME SECRET", as pintuand --make-key writes). */
  public Response hello(Path keyFile) {
    KeyFile k = KeyFile.read(keyFile);
    return hello(k.name(), k.secret());
  }

  public Response ping() {
    return await(Requests.ping());
  }

  public Response createCampaign(CampaignSpec spec, String requestId) {
    return await(Requests.createCampaign(spec, requestId));
  }

  public Response updateCampaign(io.pintuan.v1.UpdateCampaign update) {
    return await(Requests.updateCampaign(update));
  }

  public Response endCampaign(String campaign, String requestId) {
    return await(Requests.endCampaign(campaign, requestId));
  }

  public Response getCampaign(String campaign) {
    return await(Requests.getCampaign(campaign, false));
  }

  /** A standby may answer from the state it followed ({@code getStaleness()}): for product pages only. */
  public Response getCampaignStale(String campaign) {
    return await(Requests.getCampaign(campaign, true));
  }

  /** A page of campaigns from cursor (0: the first); {@code getCampaigns().getNextCursor()} 0 after the last. */
  public Response listCampaigns(long cursor, int limit) {
    return await(Requests.listCampaigns(cursor, limit));
  }

  public Response reserve(String campaign, String user, int qty, String requestId) {
    return await(Requests.reserve(campaign, user, qty, requestId));
  }

  public CompletableFuture<Response> reserveAsync(String campaign, String user, int qty, String requestId) {
    return call(Requests.reserve(campaign, user, qty, requestId));
  }

  public Response confirm(String campaign, long reservationId, String user, String requestId) {
    return await(Requests.confirm(campaign, reservationId, user, requestId));
  }

  public CompletableFuture<Response> confirmAsync(String campaign, long reservationId, String user,
      String requestId) {
    return call(Requests.confirm(campaign, reservationId, user, requestId));
  }

  public Response cancel(String campaign, long reservationId, String user, String requestId) {
    return await(Requests.cancel(campaign, reservationId, user, requestId));
  }

  public CompletableFuture<Response> cancelAsync(String campaign, long reservationId, String user,
      String requestId) {
    return call(Requests.cancel(campaign, reservationId, user, requestId));
  }

  public Response getReservation(String campaign, long reservationId, String user) {
    return await(Requests.getReservation(campaign, reservationId, user, false));
  }

  public Response getReservationStale(String campaign, long reservationId, String user) {
    return await(Requests.getReservation(campaign, reservationId, user, true));
  }

  public Response getHoldings(String campaign, String user) {
    return await(Requests.getHoldings(campaign, user));
  }

  /** Group buy: JOIN_OPEN a new group, JOIN_GROUP groupId, JOIN_AUTO (凑团). */
  public Response join(String campaign, String user, JoinMode mode, long groupId, boolean newUser,
      String requestId) {
    return await(Requests.join(campaign, user, mode, groupId, newUser, requestId));
  }

  public Response getGroup(String campaign, long groupId) {
    return await(Requests.getGroup(campaign, groupId));
  }

  /**
   * Events of these campaigns (none: all) to listener, from now on: the
   * Subscribe goes to the client's first connection, which says it again
   * after every failover (events pushed while no connection was up are not
   * replayed).
   */
  public Response subscribe(EventListener l, String... campaigns) {
    listener = l;
    return await(conns[0].submit(Requests.subscribe(campaigns), true));
  }

  // ---- the client ----

  /** What failover did, over every connection. */
  public Stats stats() {
    long f = 0, rc = 0, rd = 0, rs = 0, b = 0, s = 0;
    for (Connection c : conns) {
      if (c == null) continue;
      f += c.failures.get();
      rc += c.reconnects.get();
      rd += c.redirects.get();
      rs += c.resent.get();
      b += c.busy.get();
      s += c.strangers.get();
    }
    return new Stats(f, rc, rd, rs, b, s);
  }

  /** The first connection's peer, numeric ("127.0.0.1:7733"); "" when not connected. */
  public String peer() {
    return conns[0] != null ? conns[0].peer() : "";
  }

  /** Requests in flight over every connection. */
  public int inFlight() {
    int n = 0;
    for (Connection c : conns) n += c == null ? 0 : c.inFlight();
    return n;
  }

  /** Closes every connection; requests in flight fail with a PintuanException. */
  @Override
  public void close() {
    for (Connection c : conns) {
      if (c != null) c.close();
    }
    // busy re-sends waiting for their pause: sent now, to closed connections, they fail
    for (Runnable r : timer.shutdownNow()) r.run();
  }
}
