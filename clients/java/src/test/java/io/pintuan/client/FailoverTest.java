package io.pintuan.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.pintuan.v1.Campaign;
import io.pintuan.v1.EventType;
import io.pintuan.v1.HoldState;
import io.pintuan.v1.Request;
import io.pintuan.v1.Response;
import io.pintuan.v1.Status;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * libpintuan's failover, in Java, over real sockets: real daemons (and a
 * real Redis-mirrored primary killed with SIGKILL under the client), and a
 * fake daemon for what a real one never does on demand.
 */
class FailoverTest {

  /** A port where nothing listens: bound, never listening (refused). */
  static final class DeadPort implements AutoCloseable {
    final java.net.Socket s = new java.net.Socket();
    final String addr;

    DeadPort() throws java.io.IOException {
      s.bind(new java.net.InetSocketAddress("127.0.0.1", 0));
      addr = "127.0.0.1:" + s.getLocalPort();
    }

    @Override
    public void close() throws java.io.IOException {
      s.close();
    }
  }

  @Test
  void deadThenAliveAndADaemonStoppedUnderTheClient() throws Exception {
    try (DeadPort dead = new DeadPort(); Procs.Daemon a = Procs.Daemon.start(); Procs.Daemon b = Procs.Daemon.start();
        PintuanClient c = PintuanClient.connect(dead.addr + "," + a.addr + "," + b.addr)) {
      assertEquals(a.addr, c.peer()); // the first that answers
      assertEquals(Status.OK, c.ping().getStatus());
      a.stop();
      // the next address of the list: b
      assertEquals(Status.OK, c.ping().getStatus());
      assertEquals(b.addr, c.peer());
      Stats s = c.stats();
      assertEquals(1, s.failures, s.toString());
      assertEquals(1, s.reconnects, s.toString());
    }
  }

  /** A daemon that stops answering (SIGSTOP): past the timeout the requests go to the next address. */
  @Test
  void aReplyNotInTimeFailsOver() throws Exception {
    try (Procs.Daemon a = Procs.Daemon.start(); Procs.Daemon b = Procs.Daemon.start();
        PintuanClient c = PintuanClient.connect(Config.builder(a.addr + "," + b.addr).timeoutMs(500).build())) {
      assertEquals(Status.OK, c.ping().getStatus());
      Procs.run(List.of("kill", "-STOP", String.valueOf(a.proc.pid())), null);
      try {
        long t0 = System.nanoTime();
        List<CompletableFuture<Response>> fs = new ArrayList<>();
        for (int i = 0; i < 8; i++) fs.add(c.call(Requests.ping()));
        for (CompletableFuture<Response> f : fs) assertEquals(Status.OK, c.await(f).getStatus());
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms >= 450 && ms < 5000, ms + " ms");
        assertEquals(b.addr, c.peer());
        assertEquals(1, c.stats().failures);
        assertEquals(8, c.stats().resent);
      } finally {
        Procs.run(List.of("kill", "-CONT", String.valueOf(a.proc.pid())), null);
      }
    }
  }

  /** Pipelined requests left unanswered by a daemon that dies are sent again, byte for byte, in order. */
  @Test
  void unansweredRequestsAreResentByteForByte() throws Exception {
    try (FakeDaemon dies = new FakeDaemon(null, 10);
        FakeDaemon answers = new FakeDaemon(q -> FakeDaemon.reply(q, Status.OK), 0);
        PintuanClient c = PintuanClient.connect(dies.addr + "," + answers.addr)) {
      List<CompletableFuture<Response>> fs = new ArrayList<>();
      for (int i = 0; i < 10; i++) fs.add(c.send(Requests.reserve("sku", "u" + i, 1, "r-" + i)));
      for (int i = 0; i < 10; i++) assertEquals(Status.OK, c.await(fs.get(i)).getStatus());
      List<byte[]> first = dies.frames();
      List<byte[]> again = answers.frames();
      assertEquals(10, first.size());
      assertEquals(10, again.size());
      for (int i = 0; i < 10; i++) {
        assertArrayEquals(first.get(i), again.get(i), "frame " + i);
        Request q = Request.parseFrom(java.util.Arrays.copyOfRange(again.get(i), 4, again.get(i).length));
        assertEquals("r-" + i, q.getReserve().getRequestId().toStringUtf8());
      }
      assertEquals(10, c.stats().resent);
      assertEquals(1, c.stats().failures);
    }
  }

  @Test
  void notLeaderIsFollowedOnlyWithinTheList() throws Exception {
    try (Procs.Daemon d = Procs.Daemon.start()) {
      // a standby naming the primary, which is in the list: followed
      try (FakeDaemon standby = FakeDaemon.notLeader(d.addr);
          PintuanClient c = PintuanClient.connect(standby.addr + "," + d.addr)) {
        assertEquals(standby.addr, c.peer());
        Response r = c.ping();
        assertEquals(Status.OK, r.getStatus());
        assertEquals(d.addr, c.peer());
        assertEquals(1, c.stats().redirects);
      }
      // the same address written another way ("localhost" for 127.0.0.1) is ours too
      try (FakeDaemon standby = FakeDaemon.notLeader("localhost:" + d.port);
          PintuanClient c = PintuanClient.connect(standby.addr + "," + d.addr)) {
        assertEquals(Status.OK, c.ping().getStatus());
        assertEquals(1, c.stats().redirects);
        assertEquals(0, c.stats().strangers);
      }
      // one naming an address not in the list: not followed; the list's next instead
      try (ServerSocket stranger = new ServerSocket(0);
          FakeDaemon standby = FakeDaemon.notLeader("127.0.0.1:" + stranger.getLocalPort());
          PintuanClient c = PintuanClient.connect(standby.addr + "," + d.addr)) {
        assertEquals(Status.OK, c.ping().getStatus());
        assertEquals(d.addr, c.peer());
        assertEquals(0, c.stats().redirects);
        assertEquals(1, c.stats().strangers);
        stranger.setSoTimeout(200);
        assertThrows(java.net.SocketTimeoutException.class, stranger::accept); // never dialled
      }
      // alone in the list: the caller gets the NOT_LEADER
      try (FakeDaemon standby = FakeDaemon.notLeader("10.255.255.1:7733");
          PintuanClient c = PintuanClient.connect(standby.addr)) {
        Response r = c.ping();
        assertEquals(Status.NOT_LEADER, r.getStatus());
        assertEquals("10.255.255.1:7733", r.getLeader());
      }
    }
  }

  /** UNAVAILABLE and OVERLOADED: call() sends the same request again after a pause; send() returns them. */
  @Test
  void busyRepliesAreAskedAgain() throws Exception {
    AtomicInteger n = new AtomicInteger();
    try (FakeDaemon busy = new FakeDaemon(q -> FakeDaemon.reply(q,
            n.incrementAndGet() <= 2 ? Status.UNAVAILABLE : n.get() == 3 ? Status.OVERLOADED : Status.OK), 0);
        PintuanClient c = PintuanClient.connect(busy.addr)) {
      long t0 = System.nanoTime();
      Response r = c.reserve("sku", "u", 1, "r-1");
      long ms = (System.nanoTime() - t0) / 1_000_000;
      assertEquals(Status.OK, r.getStatus());
      assertEquals(3, c.stats().busy);
      assertTrue(ms >= 10 + 20 + 40, "paused " + ms + " ms");
      List<byte[]> f = busy.frames();
      assertEquals(4, f.size());
      for (int i = 1; i < 4; i++) assertArrayEquals(f.get(0), f.get(i)); // the same request, byte for byte
      n.set(0);
      assertEquals(Status.UNAVAILABLE, c.await(c.send(Requests.ping())).getStatus());
    }
    // within the bounds: past them the answer is returned
    try (FakeDaemon busy = new FakeDaemon(q -> FakeDaemon.reply(q, Status.UNAVAILABLE), 0);
        PintuanClient c = PintuanClient.connect(Config.builder(busy.addr).failover(3, 10_000).build())) {
      assertEquals(Status.UNAVAILABLE, c.ping().getStatus());
      assertEquals(3, c.stats().busy);
      assertEquals(4, busy.frames().size());
    }
  }

  @Test
  void failoverGivesUpWithinItsBounds() throws Exception {
    try (DeadPort dead = new DeadPort(); Procs.Daemon d = Procs.Daemon.start()) {
      PintuanClient c = PintuanClient.connect(Config.builder(d.addr + "," + dead.addr).failover(3, 10_000).build());
      try {
        assertEquals(Status.OK, c.ping().getStatus());
        d.stop();
        long t0 = System.nanoTime();
        PintuanException e = assertThrows(PintuanException.class, c::ping);
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(e.getMessage().contains("failover gave up after 3 attempts"), e.getMessage());
        assertTrue(ms < 2000, ms + " ms");
        assertEquals(0, c.inFlight());
      } finally {
        c.close();
      }
      // 0 attempts: a failure is final
      try (Procs.Daemon d2 = Procs.Daemon.start();
          PintuanClient c2 = PintuanClient.connect(Config.builder(d2.addr).failover(0, 0).build())) {
        d2.stop();
        PintuanException e = assertThrows(PintuanException.class, c2::ping);
        assertTrue(!e.getMessage().contains("gave up"), e.getMessage());
        assertEquals(0, c2.stats().reconnects);
      }
    }
  }

  /** The session (Hello, Subscribe) is said again on the next daemon. */
  @Test
  void theSessionIsReplayed() throws Exception {
    Path dir = Procs.tempDir("pintuan-java-keys-");
    try {
      Path admin = Procs.makeKey(dir, "ops", "admin");
      String keys = dir.resolve("keys").toString();
      try (Procs.Daemon a = Procs.Daemon.start("--keys", keys); Procs.Daemon b = Procs.Daemon.start("--keys", keys);
          PintuanClient c = PintuanClient.connect(Config.builder(a.addr + "," + b.addr).keyFile(admin).build());
          PintuanClient other = PintuanClient.connect(Config.builder(b.addr).keyFile(admin).build())) {
        LinkedBlockingQueue<io.pintuan.v1.Event> got = new LinkedBlockingQueue<>();
        assertEquals(Status.OK, c.subscribe(got::add).getStatus());
        a.stop();
        // on b: the key said again (else UNAUTHENTICATED), the subscription too
        assertEquals(Status.OK,
            c.createCampaign(Requests.flashSale("s", 1, 1, 600_000).setWaitlist(true).build(), "s-c").getStatus());
        assertEquals(b.addr, c.peer());
        Response ann = other.reserve("s", "ann", 1, "s-1");
        assertEquals(Status.WAITLISTED, other.reserve("s", "ben", 1, "s-2").getStatus());
        other.cancel("s", ann.getReservation().getReservationId(), "ann", "s-3");
        io.pintuan.v1.Event e = got.poll(10, TimeUnit.SECONDS);
        assertNotNull(e, "no event after failover");
        assertEquals(EventType.WAITLIST_GRANTED, e.getType());
      }
    } finally {
      Procs.removeTree(dir);
    }
  }

  /**
   * The drill: a Redis-mirrored primary and its standby, the client given
   * both and reserving (pipelined, 32 in flight), the primary killed with
   * SIGKILL under it. Every request is answered; every acknowledged hold
   * is on the new primary (held == OKs) and none was applied twice.
   */
  @Test
  void primaryKilledUnderTheClient() throws Exception {
    try (Procs.Redis redis = Procs.Redis.start()) {
      Procs.run(List.of(Procs.pintuand(), "--redis", redis.addr, "--shard", "t", "--log-level", "warn",
          "--init-shard"), null);
      String[] mirror = {"--redis", redis.addr, "--shard", "t", "--lease-ms", "1500", "--log-level", "info"};
      try (Procs.Daemon a = Procs.Daemon.start(concat(mirror, "--node-id", "a"))) {
        assertTrue(a.awaitLog("mirror recovered", 30_000), a.logText());
        assertTrue(a.awaitLog("mirror role=primary", 30_000), a.logText());
        try (Procs.Daemon b = Procs.Daemon.start(concat(mirror, "--node-id", "b"))) {
          assertTrue(b.awaitLog("mirror role=standby", 30_000), b.logText());
          drill(a, b);
        }
      }
    }
  }

  private static String[] concat(String[] a, String... b) {
    String[] o = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, o, a.length, b.length);
    return o;
  }

  private void drill(Procs.Daemon a, Procs.Daemon b) throws Exception {
    final int total = 3000;
    final int killAfter = 500;
    // While the standby has not taken over yet it answers NOT_LEADER naming
    // the dead primary, which is in the list: every other attempt goes there
    // and is refused. 16 attempts last ~2.4 s of that ping-pong, and the
    // takeover comes 1-2 s after the kill (the lease, 1.5 s): more attempts,
    // within the same 10 s, so that a slow machine does not fail the drill.
    Config cfg = Config.builder(a.addr + "," + b.addr).failover(40, 10_000).build();
    try (PintuanClient c = PintuanClient.connect(cfg)) {
      assertEquals(Status.OK, c.createCampaign(Requests.flashSale("drill", 1_000_000, 1, 3_600_000).build(),
          "drill-create").getStatus());
      Semaphore window = new Semaphore(32);
      CountDownLatch enough = new CountDownLatch(killAfter);
      List<CompletableFuture<Response>> fs = new ArrayList<>();
      Thread killer = new Thread(() -> {
        try {
          enough.await();
          a.kill9();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      });
      killer.setDaemon(true);
      killer.start();
      try {
        for (int i = 0; i < total; i++) {
          window.acquire();
          CompletableFuture<Response> f = c.reserveAsync("drill", "u" + i, 1, "o-" + i);
          f.whenComplete((r, e) -> {
            window.release();
            if (r != null && r.getStatus() == Status.OK) enough.countDown();
          });
          fs.add(f);
        }
        killer.join(60_000);
      } finally {
        killer.interrupt(); // a failed run does not leave it waiting
      }
      assertTrue(!a.proc.isAlive(), "the primary was killed under the load");
      int ok = 0, replays = 0;
      Set<Long> ids = new HashSet<>();
      for (int i = 0; i < total; i++) {
        Response r = c.await(fs.get(i)); // every request answered: none lost in the failover
        assertEquals(Status.OK, r.getStatus(), "request " + i + ": " + r.getDetail()); // never LIMIT_EXCEEDED: once
        assertEquals("u" + i, r.getReservation().getUserId().toStringUtf8());
        assertTrue(ids.add(r.getReservation().getReservationId()), "a reservation id twice");
        ok++;
        if (r.getReplay()) replays++;
      }
      Stats s = c.stats();
      System.out.println("drill: " + ok + " OK (" + replays + " replays), " + s);
      assertTrue(s.failures >= 1, s.toString());
      assertEquals(b.addr, c.peer());
      Campaign camp = c.getCampaign("drill").getCampaign();
      assertEquals(ok, camp.getHeld(), "every acknowledged hold, once");
      assertEquals(1_000_000 - ok, camp.getAvailable());
      // each of them is there, the user's own
      List<CompletableFuture<Response>> gets = new ArrayList<>();
      for (int i = 0; i < total; i++) {
        Response r = fs.get(i).join();
        gets.add(c.call(Requests.getReservation("drill", r.getReservation().getReservationId(), "u" + i, false)));
      }
      for (CompletableFuture<Response> g : gets) {
        Response r = c.await(g);
        assertEquals(Status.OK, r.getStatus(), r.getDetail());
        assertEquals(HoldState.HELD, r.getReservation().getState());
      }
      for (int i = 0; i < total; i += 97) assertEquals(1, c.getHoldings("drill", "u" + i).getHoldings().getHeld());
    }
  }
}
