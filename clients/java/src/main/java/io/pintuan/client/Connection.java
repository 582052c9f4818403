package io.pintuan.client;

import com.google.protobuf.InvalidProtocolBufferException;
import io.pintuan.v1.Request;
import io.pintuan.v1.Response;
import io.pintuan.v1.Status;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.UnknownHostException;
import java.security.cert.CertificateException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.SSLSocketFactory;

/**
 * One pipelined connection to pintuand with libpintuan's failover
 * (clients/lib/client.c), driven by two threads: a reader (replies, events,
 * and every failover decision) and a writer (frames to the socket, batched).
 *
 * <p>Every request sent and not answered yet stays in {@code pending}, in
 * the order it was written, as its encoded frame: replies come back in
 * request order, so a reply releases the oldest requests up to its
 * correlation id. That queue is what failover re-sends, byte for byte (same
 * correlation id, same request_id), after a reconnect or a NOT_LEADER
 * redirect; {@code outbox} is its tail not handed to the writer yet.
 * Senders append to both under {@code lock}; only the reader thread
 * connects, so a new connection gets the session (Hello, Subscribe) back
 * before anything else is written to it.
 */
final class Connection {
  static final int MAX_REPLY = 64 << 20; // a longer reply frame is a broken stream
  static final int BACKOFF_FIRST_MS = 10; // failover: the pause before a second try...
  static final int BACKOFF_MAX_MS = 500; // ...doubling up to this
  private static final int MAX_BATCH = 256 << 10; // bytes the writer hands to one write
  private static final String NOT_IN_LIST = "NOT_LEADER naming an address not in the list";

  /** A request in flight: its frame (re-sent byte for byte) and its future. */
  static final class Call {
    final long id;
    final byte[] frame;
    final byte[] sessionBody; // a Hello's or Subscribe's body (no id): the session to replay
    final boolean hello;
    final boolean retryBusy; // re-sent after UNAVAILABLE / OVERLOADED (a blocking call's rule)
    final CompletableFuture<Response> future = new CompletableFuture<>();
    final AtomicBoolean finished = new AtomicBoolean();
    int tries; // busy re-sends so far
    long sinceMs;

    Call(long id, byte[] frame, byte[] sessionBody, boolean hello, boolean retryBusy) {
      this.id = id;
      this.frame = frame;
      this.sessionBody = sessionBody;
      this.hello = hello;
      this.retryBusy = retryBusy;
    }
  }

  /** A connected socket (TLS or not), its stream and what was read of it. */
  static final class Link {
    final Socket raw; // closing it ends both threads' blocking calls, TLS or not
    final Socket sock;
    final InputStream in;
    final OutputStream out;
    final FrameReader fr = new FrameReader();
    final String peer;
    volatile String failure; // why the writer closed it
    int soTimeout = -1;

    Link(Socket raw, Socket sock, String peer) throws IOException {
      this.raw = raw;
      this.sock = sock;
      this.in = sock.getInputStream();
      this.out = sock.getOutputStream();
      this.peer = peer;
    }

    void close() {
      try {
        raw.close();
      } catch (IOException ignored) {
        // closing
      }
    }

    void fail(String why) {
      if (failure == null) failure = why;
      close();
    }

    String reason(String otherwise) {
      return failure != null ? failure : otherwise;
    }

    void timeout(int ms) throws IOException {
      if (ms != soTimeout) {
        sock.setSoTimeout(ms);
        soTimeout = ms;
      }
    }
  }

  /** Why serve() stopped reading a connection. */
  private static final class Outcome {
    static final int LOST = 0; // a transport failure: fail over
    static final int REDIRECT = 1; // NOT_LEADER for the oldest request: to the leader, or the next
    static final int BROKEN = 2; // a stream no retry mends: the requests in flight fail
    final int kind;
    final String reason;
    final boolean toLeader;

    Outcome(int kind, String reason, boolean toLeader) {
      this.kind = kind;
      this.reason = reason;
      this.toLeader = toLeader;
    }
  }

  private final PintuanClient client;
  private final Config cfg;
  private final List<Address> addrs;
  private final SSLSocketFactory ssl; // null: plaintext
  private final Semaphore permits;
  private final AtomicLong nextId = new AtomicLong();

  private final ReentrantLock lock = new ReentrantLock();
  private final Condition writerWake = lock.newCondition();
  private final Condition readerWake = lock.newCondition();
  // guarded by lock
  private final ArrayDeque<Call> pending = new ArrayDeque<>();
  private final ArrayDeque<Call> outbox = new ArrayDeque<>();
  private Link link; // null: not connected
  private boolean closed;
  private boolean idle; // not connected, nothing to mend: connect at the next send
  private byte[] hello; // the session: the last Hello and Subscribe answered OK (bodies)
  private byte[] subscribe;
  private String lastError = "";
  private volatile long progressNs; // a byte arrived, or a request began to wait

  // the reader thread's: failover's position and its current run of attempts
  private int cur;
  private int leader;
  private int run;
  private long runStartMs;
  private boolean readerQueued; // requests queued by callbacks on the reader, the writer not woken yet

  /** A connection's reader: futures complete on it, and what it sends goes to its own connection. */
  static final class ReaderThread extends Thread {
    final Connection conn;

    ReaderThread(Connection conn, String name) {
      super(name);
      this.conn = conn;
    }

    @Override
    public void run() {
      conn.readLoop();
    }
  }

  PintuanClient client() {
    return client;
  }

  private volatile Socket connecting; // a socket being set up (closed by close())
  private final Thread reader;
  private final Thread writer;

  final AtomicLong failures = new AtomicLong();
  final AtomicLong reconnects = new AtomicLong();
  final AtomicLong redirects = new AtomicLong();
  final AtomicLong resent = new AtomicLong();
  final AtomicLong busy = new AtomicLong();
  final AtomicLong strangers = new AtomicLong();

  /** Connects to the first address that answers (every address's reason when none does). */
  Connection(PintuanClient client, Config cfg, SSLSocketFactory ssl, int index) {
    this.client = client;
    this.cfg = cfg;
    this.addrs = cfg.addresses;
    this.ssl = ssl;
    this.permits = new Semaphore(cfg.maxInFlight);
    StringBuilder errs = new StringBuilder();
    for (int i = 0; i < addrs.size() && link == null; i++) {
      try {
        link = open(addrs.get(i), cfg.timeoutMs);
        cur = i;
      } catch (IOException e) {
        if (errs.length() > 0) errs.append("; ");
        errs.append(e.getMessage());
      }
    }
    if (link == null) throw new PintuanException(errs.toString());
    reader = new ReaderThread(this, "pintuan-reader-" + index);
    writer = new Thread(this::writeLoop, "pintuan-writer-" + index);
    reader.setDaemon(true);
    writer.setDaemon(true);
    reader.start();
    writer.start();
  }

  static long monoMs() {
    return System.nanoTime() / 1_000_000;
  }

  boolean isReaderThread() {
    return Thread.currentThread() == reader;
  }

  String peer() {
    lock.lock();
    try {
      return link != null ? link.peer : "";
    } finally {
      lock.unlock();
    }
  }

  // ---- sending ----

  /**
   * A frame for a body of bodyLen bytes, the body not written yet: the
   * 4-byte big-endian length, then the id (field 1, varint) as protobuf
   * encodes it first; the body (the request's other fields) goes at the end.
   */
  static byte[] frameOf(long id, int bodyLen) {
    int idLen = 1;
    for (long v = id >>> 7; v != 0; v >>>= 7) idLen++;
    int n = 1 + idLen + bodyLen;
    byte[] f = new byte[4 + n];
    f[0] = (byte) (n >>> 24);
    f[1] = (byte) (n >>> 16);
    f[2] = (byte) (n >>> 8);
    f[3] = (byte) n;
    int p = 4;
    f[p++] = 0x08; // field 1, varint
    long v = id;
    while ((v & ~0x7FL) != 0) {
      f[p++] = (byte) ((v & 0x7F) | 0x80);
      v >>>= 7;
    }
    f[p] = (byte) v;
    return f;
  }

  /** The frame of an encoded body (a saved Hello or Subscribe) with a new id. */
  static byte[] frame(long id, byte[] body) {
    byte[] f = frameOf(id, body.length);
    System.arraycopy(body, 0, f, f.length - body.length, body.length);
    return f;
  }

  /** Sends req (its id is the connection's own); retryBusy: re-send it after UNAVAILABLE/OVERLOADED. */
  CompletableFuture<Response> submit(Request req, boolean retryBusy) {
    if (req.hasId()) req = req.toBuilder().clearId().build();
    Request.OpCase op = req.getOpCase();
    boolean session = op == Request.OpCase.HELLO || op == Request.OpCase.SUBSCRIBE;
    acquire();
    long id = nextId.incrementAndGet();
    byte[] f;
    try {
      f = frame(id, req);
    } catch (RuntimeException e) {
      permits.release();
      throw e;
    }
    byte[] body = session ? java.util.Arrays.copyOfRange(f, f.length - req.getSerializedSize(), f.length) : null;
    Call c = new Call(id, f, body, op == Request.OpCase.HELLO, retryBusy);
    enqueue(c);
    return c.future;
  }

  /** The frame of req (which has no id) with this id: the body encoded in place, no copy. */
  static byte[] frame(long id, Request req) {
    int size = req.getSerializedSize();
    byte[] f = frameOf(id, size);
    com.google.protobuf.CodedOutputStream out =
        com.google.protobuf.CodedOutputStream.newInstance(f, f.length - size, size);
    try {
      req.writeTo(out);
    } catch (IOException e) {
      throw new IllegalStateException("encoding a request", e); // a byte array does not fail
    }
    out.checkNoSpaceLeft();
    return f;
  }

  /** A place in flight: waits (up to the timeout and the failover time) while maxInFlight are. */
  private void acquire() {
    if (permits.tryAcquire()) return;
    if (isReaderThread())
      throw new PintuanException("too many requests in flight (" + cfg.maxInFlight
          + ") to wait on the client's reader thread: send from another thread");
    try {
      long ms = cfg.timeoutMs > 0 ? (long) cfg.timeoutMs + Math.max(cfg.failoverMs, 0) : 0;
      if (ms == 0) permits.acquire();
      else if (!permits.tryAcquire(ms, TimeUnit.MILLISECONDS))
        throw new PintuanException("too many requests in flight (" + cfg.maxInFlight + ") for " + ms + " ms");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new PintuanException("interrupted waiting for a place in flight");
    }
  }

  private void enqueue(Call c) {
    lock.lock();
    try {
      if (!closed) {
        if (pending.isEmpty()) progressNs = System.nanoTime();
        pending.addLast(c);
        if (link != null) {
          outbox.addLast(c);
          // sent from this connection's reader (a callback): the writer is
          // woken once the reader is done with the replies it has read
          if (Thread.currentThread() == reader) readerQueued = true;
          else if (outbox.size() == 1) writerWake.signal();
        } else if (idle) { // failover gave up earlier: this request connects again
          idle = false;
          readerWake.signal();
        }
        return;
      }
    } finally {
      lock.unlock();
    }
    finish(c, null, new PintuanException("the client is closed"));
  }

  private void finish(Call c, Response r, Throwable ex) {
    if (!c.finished.compareAndSet(false, true)) return;
    permits.release();
    if (ex != null) c.future.completeExceptionally(ex);
    else c.future.complete(r);
  }

  /** The writer thread: hands what the outbox holds to the socket, many frames a write. */
  private void writeLoop() {
    byte[] buf = new byte[64 << 10];
    for (;;) {
      Link l;
      int n = 0;
      lock.lock();
      try {
        while (!closed && (link == null || outbox.isEmpty())) writerWake.awaitUninterruptibly();
        if (closed) return;
        l = link;
        while (!outbox.isEmpty()) {
          byte[] f = outbox.peekFirst().frame;
          if (n + f.length > buf.length) {
            if (n > 0 && n + f.length > MAX_BATCH) break;
            byte[] bigger = new byte[Math.max(n + f.length, Math.min(buf.length * 2, MAX_BATCH))];
            System.arraycopy(buf, 0, bigger, 0, n);
            buf = bigger;
          }
          System.arraycopy(f, 0, buf, n, f.length);
          n += f.length;
          outbox.pollFirst();
        }
      } finally {
        lock.unlock();
      }
      try {
        l.out.write(buf, 0, n);
        l.out.flush();
      } catch (IOException e) {
        l.fail("send: " + e.getMessage()); // the reader sees it closed, and fails over
      }
      if (buf.length > (64 << 10) && n < (16 << 10)) buf = new byte[64 << 10];
    }
  }

  // ---- reading ----

  private void readLoop() {
    for (;;) {
      Link l;
      lock.lock();
      try {
        while (!closed && link == null && idle) readerWake.awaitUninterruptibly();
        if (closed) return;
        l = link;
      } finally {
        lock.unlock();
      }
      if (l == null) { // lost with something to mend, or a send after failover gave up
        failures.incrementAndGet();
        recover(false);
        continue;
      }
      Outcome o = serve(l);
      l.close();
      List<Call> dropped = null;
      boolean toLeader = false;
      lock.lock();
      try {
        if (closed) return;
        link = null;
        outbox.clear();
        if (o.kind == Outcome.LOST) {
          lastError = o.reason;
          // requests in flight, or a subscriber: mend it now; else at the next send
          idle = pending.isEmpty() && subscribe == null;
          continue;
        }
        if (o.kind == Outcome.BROKEN) { // no retry mends that
          lastError = o.reason;
          dropped = new ArrayList<>(pending);
          pending.clear();
          idle = subscribe == null;
        } else {
          toLeader = o.toLeader;
          if (!toLeader) lastError = NOT_IN_LIST;
        }
      } finally {
        lock.unlock();
      }
      if (dropped != null) {
        for (Call c : dropped) finish(c, null, new PintuanException(o.reason));
        continue;
      }
      if (toLeader) redirects.incrementAndGet();
      recover(toLeader); // REDIRECT: with every request in flight
    }
  }

  /** How long the next read may wait (0: forever); -1: the wait is over (timed out). */
  private int readTimeout() {
    boolean waiting;
    lock.lock();
    try {
      waiting = !pending.isEmpty();
    } finally {
      lock.unlock();
    }
    long now = System.nanoTime();
    long deadline = Long.MAX_VALUE;
    if (waiting && cfg.timeoutMs > 0) deadline = progressNs + cfg.timeoutMs * 1_000_000L;
    // during a failover run, no longer than what is left of its time
    if (run > 0 && cfg.failoverMs > 0) deadline = Math.min(deadline, (runStartMs + cfg.failoverMs) * 1_000_000L);
    if (deadline == Long.MAX_VALUE) return cfg.timeoutMs > 0 ? cfg.timeoutMs : 0;
    long left = (deadline - now) / 1_000_000L;
    if (left <= 0) return -1;
    return (int) Math.min(left, cfg.timeoutMs > 0 ? cfg.timeoutMs : Integer.MAX_VALUE);
  }

  /** Reads and dispatches replies until the connection fails or must be left. */
  private Outcome serve(Link l) {
    FrameReader fr = l.fr;
    for (;;) {
      for (;;) {
        int n;
        try {
          n = fr.next(MAX_REPLY, ssl != null);
        } catch (IOException e) {
          return new Outcome(Outcome.BROKEN, e.getMessage(), false);
        }
        if (n < 0) break;
        Response r;
        try {
          r = Response.parser().parseFrom(fr.buf, fr.frameOff, n);
        } catch (InvalidProtocolBufferException e) {
          return new Outcome(Outcome.BROKEN, "undecodable reply from the daemon", false);
        }
        Outcome o = handle(r);
        if (o != null) return o;
      }
      if (readerQueued) { // what the callbacks sent, to the writer in one go
        readerQueued = false;
        lock.lock();
        try {
          if (!outbox.isEmpty()) writerWake.signal();
        } finally {
          lock.unlock();
        }
      }
      try {
        int ms = readTimeout();
        if (ms < 0) return new Outcome(Outcome.LOST, "timed out after " + cfg.timeoutMs + " ms", false);
        l.timeout(ms);
        int got = fr.fill(l.in);
        if (got < 0) return new Outcome(Outcome.LOST, l.reason("connection closed by the daemon"), false);
        progressNs = System.nanoTime();
      } catch (SocketTimeoutException e) {
        // readTimeout() decides whether the wait is over
      } catch (IOException e) {
        return new Outcome(Outcome.LOST, l.reason("recv: " + e.getMessage()), false);
      }
    }
  }

  /** One reply or event; an Outcome when the connection must be left. */
  private Outcome handle(Response r) {
    long id = r.getId();
    if (id != 0 && r.getStatus() == Status.NOT_LEADER && run < cfg.failoverAttempts) {
      boolean head;
      lock.lock();
      try {
        Call h = pending.peekFirst();
        head = h != null && h.id == id;
      } finally {
        lock.unlock();
      }
      if (head) { // to the leader (or the list's next), with every request in flight
        if (follow(r.getLeader())) return new Outcome(Outcome.REDIRECT, null, true);
        if (addrs.size() > 1) return new Outcome(Outcome.REDIRECT, null, false);
      }
    }
    run = 0; // the daemon answers: a later failure starts a new run
    if (id == 0) {
      if (r.hasEvent()) {
        client.deliver(r.getEvent());
      } else if (r.getStatus() != Status.OK) { // the daemon refused the stream: it is closing it
        List<Call> all;
        lock.lock();
        try {
          all = new ArrayList<>(pending);
          pending.clear();
          outbox.clear();
        } finally {
          lock.unlock();
        }
        for (Call c : all) finish(c, r, null);
      }
      return null;
    }
    Call done = null;
    List<Call> skipped = null;
    lock.lock();
    try {
      Call h = pending.peekFirst();
      if (h == null) return null;
      if (h.id != id) {
        boolean ours = false;
        for (Call c : pending) {
          if (c.id == id) {
            ours = true;
            break;
          }
        }
        if (!ours) return null; // not ours to count
        skipped = new ArrayList<>();
        while (pending.peekFirst().id != id) skipped.add(pending.pollFirst());
      }
      done = pending.pollFirst();
      if (!pending.isEmpty()) progressNs = System.nanoTime();
      if (done.sessionBody != null && r.getStatus() == Status.OK) {
        if (done.hello) hello = done.sessionBody;
        else subscribe = done.sessionBody;
      }
    } finally {
      lock.unlock();
    }
    if (skipped != null)
      for (Call c : skipped) finish(c, null, new PintuanException("no reply: the daemon answered a later request"));
    if (done.retryBusy && askAgain(done, r)) return null;
    finish(done, r, null);
    return null;
  }

  /** Is r a "shortly" (UNAVAILABLE, OVERLOADED) that failover's bounds allow to ask again? Schedules it. */
  private boolean askAgain(Call c, Response r) {
    if (r.getStatus() != Status.UNAVAILABLE && r.getStatus() != Status.OVERLOADED) return false;
    long now = monoMs();
    if (c.tries == 0) c.sinceMs = now;
    if (cfg.failoverAttempts <= 0 || c.tries >= cfg.failoverAttempts
        || (cfg.failoverMs > 0 && now - c.sinceMs >= cfg.failoverMs))
      return false;
    int pause = Math.min(BACKOFF_FIRST_MS << Math.min(c.tries, 6), BACKOFF_MAX_MS);
    c.tries++;
    busy.incrementAndGet();
    client.schedule(() -> enqueue(c), pause); // the same request, the same bytes
    return true;
  }

  /**
   * A NOT_LEADER's primary, if it is one of the client's addresses (the
   * same host and port, or a name of the same address): true, with
   * {@code leader} saying which. Any other is not followed, so no daemon
   * (nor whoever can write its Redis) sends the client, or its key, elsewhere.
   */
  private boolean follow(String named) {
    if (named == null || named.isEmpty()) return false;
    Address a;
    try {
      a = Address.parse(named, Address.DEFAULT_PORT);
    } catch (IllegalArgumentException e) {
      return false;
    }
    for (int i = 0; i < addrs.size(); i++) {
      if (addrs.get(i).port() == a.port() && addrs.get(i).host().equalsIgnoreCase(a.host())) {
        leader = i;
        return true;
      }
    }
    try { // the same address written another way ("localhost" for 127.0.0.1)
      InetAddress[] them = InetAddress.getAllByName(a.host());
      for (int i = 0; i < addrs.size(); i++) {
        if (addrs.get(i).port() != a.port()) continue;
        for (InetAddress mine : InetAddress.getAllByName(addrs.get(i).host())) {
          for (InetAddress t : them) {
            if (t.equals(mine)) {
              leader = i;
              return true;
            }
          }
        }
      }
    } catch (UnknownHostException e) {
      // a name that does not resolve is no address of ours
    }
    strangers.incrementAndGet();
    return false;
  }

  // ---- connecting, and failover ----

  /** Connects to a (every address its name resolves to, in turn) within timeoutMs, TLS included. */
  private Link open(Address a, int timeoutMs) throws IOException {
    InetAddress[] all;
    try {
      all = InetAddress.getAllByName(a.host());
    } catch (UnknownHostException e) {
      throw new IOException("address " + a.host() + ": unknown host");
    }
    int t = timeoutMs <= 0 ? 0 : timeoutMs;
    IOException last = new IOException("connect " + a + ": no address");
    for (int i = 0; i < all.length && i < 8; i++) {
      Socket raw = new Socket();
      connecting = raw;
      try {
        raw.connect(new InetSocketAddress(all[i], a.port()), t);
        raw.setTcpNoDelay(true);
        Socket s = raw;
        if (ssl != null) s = handshake(raw, a, t);
        String host = all[i].getHostAddress();
        return new Link(raw, s, (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + a.port());
      } catch (SocketTimeoutException e) {
        raw.close();
        last = new IOException("connect " + a + ": timed out after " + t + " ms");
      } catch (TlsFailure e) {
        raw.close();
        last = e;
      } catch (IOException e) {
        raw.close();
        last = new IOException("connect " + a + ": " + e.getMessage());
      } finally {
        connecting = null;
      }
    }
    throw last;
  }

  private static final class TlsFailure extends IOException {
    private static final long serialVersionUID = 1L;

    TlsFailure(String m) {
      super(m);
    }
  }

  /** TLS over raw: the daemon's certificate verified against the CAs, and that it names the host dialled. */
  private Socket handshake(Socket raw, Address a, int t) throws IOException {
    String name = cfg.tlsServerName != null ? cfg.tlsServerName : a.host();
    SSLSocket s = (SSLSocket) ssl.createSocket(raw, name, a.port(), true);
    SSLParameters p = s.getSSLParameters();
    p.setEndpointIdentificationAlgorithm("HTTPS"); // the name, or an IP address as an IP SAN
    s.setSSLParameters(p);
    s.setSoTimeout(t);
    try {
      s.startHandshake();
    } catch (SocketTimeoutException e) {
      throw new TlsFailure("TLS handshake with " + name + ": timed out after " + t + " ms");
    } catch (IOException e) {
      boolean cert = false;
      for (Throwable x = e; x != null; x = x.getCause()) cert |= x instanceof CertificateException;
      throw new TlsFailure("TLS handshake with " + name + " failed" + (cert ? ": certificate" : "") + ": "
          + e.getMessage());
    }
    return s;
  }

  /** Waits ms (false: the client was closed meanwhile). */
  private boolean pause(int ms) {
    lock.lock();
    try {
      long nanos = ms * 1_000_000L;
      while (!closed && nanos > 0) {
        try {
          nanos = readerWake.awaitNanos(nanos);
        } catch (InterruptedException e) {
          return false;
        }
      }
      return !closed;
    } finally {
      lock.unlock();
    }
  }

  /**
   * After a transport failure or to follow a NOT_LEADER (toLeader):
   * connects again and re-sends, in order, every request not answered yet,
   * after the session (Hello, Subscribe). The next address in the list,
   * round robin, after a pause that doubles from the second attempt of a
   * run, within the attempts and the time a run may take. False: the
   * requests in flight failed (the next send begins again).
   */
  private boolean recover(boolean toLeader) {
    String why;
    lock.lock();
    try {
      why = lastError;
    } finally {
      lock.unlock();
    }
    long now = monoMs();
    if (run == 0) runStartMs = now;
    while (run < cfg.failoverAttempts) {
      now = monoMs();
      long left = cfg.failoverMs > 0 ? runStartMs + cfg.failoverMs - now : -1;
      if (cfg.failoverMs > 0 && left <= 0) break;
      if (run > 0 && !toLeader) {
        int pause = Math.min(BACKOFF_FIRST_MS << Math.min(run - 1, 6), BACKOFF_MAX_MS);
        if (left >= 0 && pause >= left) break;
        if (!pause(pause)) return false;
        if (left >= 0) left -= pause;
      }
      run++;
      cur = toLeader ? leader : (cur + 1) % addrs.size();
      toLeader = false;
      int t = cfg.timeoutMs;
      if (left >= 0 && (t <= 0 || t > left)) t = (int) left;
      Link l;
      try {
        l = open(addrs.get(cur), t);
      } catch (IOException e) {
        why = e.getMessage();
        continue;
      }
      int rc;
      connecting = l.raw;
      try {
        byte[] h;
        byte[] s;
        lock.lock();
        try {
          h = hello;
          s = subscribe;
        } finally {
          lock.unlock();
        }
        rc = 0;
        if (h != null) rc = replaySaved(l, h);
        if (rc == 0 && s != null) rc = replaySaved(l, s);
      } catch (IOException e) {
        rc = -1;
        why = l.reason(e.getMessage());
      } finally {
        connecting = null;
      }
      if (rc == 0) {
        lock.lock();
        try {
          if (closed) {
            l.close();
            return false;
          }
          link = l;
          outbox.clear();
          outbox.addAll(pending);
          progressNs = System.nanoTime();
          reconnects.incrementAndGet();
          resent.addAndGet(pending.size());
          // nothing in flight (a subscriber, say): the session is back and the
          // run is over; else it ends when a request is answered
          if (pending.isEmpty()) run = 0;
          if (!outbox.isEmpty()) writerWake.signal();
          return true;
        } finally {
          lock.unlock();
        }
      }
      l.close();
      if (rc == 1) { // the session's Hello was answered NOT_LEADER naming one of ours
        redirects.incrementAndGet();
        toLeader = true;
        continue;
      }
      if (rc == 2) why = NOT_IN_LIST;
    }
    List<Call> dropped;
    lock.lock();
    try {
      dropped = new ArrayList<>(pending);
      pending.clear();
      outbox.clear();
      idle = true;
      lastError = cfg.failoverAttempts > 0 ? why + " (failover gave up after " + run + " attempts)" : why;
      why = lastError;
    } finally {
      lock.unlock();
    }
    run = 0;
    for (Call c : dropped) finish(c, null, new PintuanException(why));
    return false;
  }

  /**
   * One request of the session on a new connection, answered before
   * anything else: 0 done (whatever the daemon said), 1 NOT_LEADER naming
   * an address of the list ({@code leader}), 2 NOT_LEADER naming another.
   */
  private int replaySaved(Link l, byte[] body) throws IOException {
    long id = nextId.incrementAndGet();
    l.out.write(frame(id, body));
    l.out.flush();
    for (;;) {
      Response r = readOne(l);
      boolean refused = r.getId() == 0 && r.getStatus() != Status.OK && !r.hasEvent();
      if (refused) throw new IOException(!r.getDetail().isEmpty() ? r.getDetail() : r.getStatus().name());
      if (r.hasEvent()) client.deliver(r.getEvent());
      if (r.getId() == id) {
        if (r.getStatus() == Status.NOT_LEADER) return follow(r.getLeader()) ? 1 : 2;
        return 0;
      }
    }
  }

  /** The next reply on a connection being set up (within the timeout and the run's time). */
  private Response readOne(Link l) throws IOException {
    for (;;) {
      int n = l.fr.next(MAX_REPLY, ssl != null);
      if (n >= 0) {
        try {
          return Response.parser().parseFrom(l.fr.buf, l.fr.frameOff, n);
        } catch (InvalidProtocolBufferException e) {
          throw new IOException("undecodable reply from the daemon");
        }
      }
      int ms = cfg.timeoutMs > 0 ? cfg.timeoutMs : 0;
      if (run > 0 && cfg.failoverMs > 0) {
        long left = Math.max(1, runStartMs + cfg.failoverMs - monoMs());
        ms = ms == 0 ? (int) left : (int) Math.min(ms, left);
      }
      l.timeout(ms);
      try {
        if (l.fr.fill(l.in) < 0) throw new IOException("connection closed by the daemon");
      } catch (SocketTimeoutException e) {
        throw new IOException("timed out after " + ms + " ms");
      }
    }
  }

  // ---- closing ----

  void close() {
    List<Call> all;
    Link l;
    lock.lock();
    try {
      if (closed) return;
      closed = true;
      all = new ArrayList<>(pending);
      pending.clear();
      outbox.clear();
      l = link;
      link = null;
      readerWake.signalAll();
      writerWake.signalAll();
    } finally {
      lock.unlock();
    }
    if (l != null) l.close();
    Socket s = connecting;
    if (s != null) {
      try {
        s.close();
      } catch (IOException ignored) {
        // closing
      }
    }
    for (Call c : all) finish(c, null, new PintuanException("the client is closed"));
    for (Thread t : new Thread[] {reader, writer}) {
      if (t == Thread.currentThread()) continue;
      try {
        t.join(2000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  /** Requests sent (or queued) and not answered: for tests and the curious. */
  int inFlight() {
    lock.lock();
    try {
      return pending.size();
    } finally {
      lock.unlock();
    }
  }
}
