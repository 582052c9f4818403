package io.pintuan.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.pintuan.v1.Campaign;
import io.pintuan.v1.EventType;
import io.pintuan.v1.GroupState;
import io.pintuan.v1.HoldState;
import io.pintuan.v1.JoinMode;
import io.pintuan.v1.Request;
import io.pintuan.v1.Response;
import io.pintuan.v1.Status;
import io.pintuan.v1.UpdateCampaign;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The client against one real pintuand (memory only) on 127.0.0.1. */
class ClientTest {
  static Procs.Daemon d;

  @BeforeAll
  static void up() throws Exception {
    d = Procs.Daemon.start();
  }

  @AfterAll
  static void down() throws Exception {
    if (d != null) d.close();
  }

  static void create(PintuanClient c, String id, long stock, int limit) {
    Response r = c.createCampaign(Requests.flashSale(id, stock, limit, 600_000).build(), "create-" + id);
    assertEquals(Status.OK, r.getStatus(), r.getDetail());
  }

  @Test
  void pipelinedReservesAnsweredInOrder() {
    try (PintuanClient c = PintuanClient.connect(d.addr)) {
      create(c, "pipe", 300, 1);
      List<CompletableFuture<Response>> fs = new ArrayList<>();
      List<Long> ids = new ArrayList<>();
      // 500 in flight at once: 300 holds, then SOLD_OUT, each for its own request
      for (int i = 0; i < 500; i++) fs.add(c.send(Requests.reserve("pipe", "u" + i, 1, "r" + i)));
      Set<Long> resIds = new HashSet<>();
      for (int i = 0; i < 500; i++) {
        Response r = c.await(fs.get(i));
        ids.add(r.getId());
        if (i < 300) {
          assertEquals(Status.OK, r.getStatus(), "request " + i);
          assertEquals(ByteStringOf("u" + i), r.getReservation().getUserId());
          assertTrue(resIds.add(r.getReservation().getReservationId()));
        } else {
          assertEquals(Status.SOLD_OUT, r.getStatus(), "request " + i);
        }
      }
      for (int i = 1; i < ids.size(); i++) assertTrue(ids.get(i) > ids.get(i - 1), "correlation ids in order");
      Campaign camp = c.getCampaign("pipe").getCampaign();
      assertEquals(300, camp.getHeld());
      assertEquals(0, camp.getAvailable());
      assertEquals(0, c.inFlight());
    }
  }

  static com.google.protobuf.ByteString ByteStringOf(String s) {
    return com.google.protobuf.ByteString.copyFromUtf8(s);
  }

  @Test
  void retriedRequestIdIsAReplay() {
    try (PintuanClient c = PintuanClient.connect(d.addr)) {
      create(c, "idem", 10, 2);
      Response first = c.reserve("idem", "ann", 1, "order-1");
      assertEquals(Status.OK, first.getStatus());
      assertFalse(first.getReplay());
      Response again = c.reserve("idem", "ann", 1, "order-1");
      assertEquals(Status.OK, again.getStatus());
      assertTrue(again.getReplay());
      assertEquals(first.getReservation().getReservationId(), again.getReservation().getReservationId());
      assertEquals(Status.CONFLICT, c.reserve("idem", "ann", 2, "order-1").getStatus()); // other parameters
      assertEquals(1, c.getCampaign("idem").getCampaign().getHeld());
      // pipelined retries: one effect
      List<CompletableFuture<Response>> fs = new ArrayList<>();
      for (int i = 0; i < 20; i++) fs.add(c.send(Requests.reserve("idem", "ben", 1, "order-2")));
      long rid = c.await(fs.get(0)).getReservation().getReservationId();
      for (int i = 1; i < 20; i++) {
        Response r = c.await(fs.get(i));
        assertTrue(r.getReplay());
        assertEquals(rid, r.getReservation().getReservationId());
      }
      assertEquals(2, c.getCampaign("idem").getCampaign().getHeld());
    }
  }

  @Test
  void everyBlockingCall() {
    try (PintuanClient c = PintuanClient.connect(d.addr)) {
      Response p = c.ping();
      assertEquals(Status.OK, p.getStatus());
      assertTrue(p.getPong().getNowMs() > 0);
      Response h = c.hello(null, null);
      assertEquals(Status.OK, h.getStatus());
      assertEquals("admin", h.getHello().getKeyRole());
      create(c, "calls", 5, 1);
      assertEquals(Status.ALREADY_EXISTS,
          c.createCampaign(Requests.flashSale("calls", 5, 1, 600_000).build(), "create-other").getStatus());
      Response r = c.reserve("calls", "ann", 1, "a-1");
      long res = r.getReservation().getReservationId();
      assertEquals(HoldState.HELD, c.getReservation("calls", res, "ann").getReservation().getState());
      assertEquals(Status.NOT_FOUND, c.getReservation("calls", res, "ben").getStatus()); // not ben's
      assertEquals(1, c.getHoldings("calls", "ann").getHoldings().getHeld());
      assertEquals(Status.LIMIT_EXCEEDED, c.reserve("calls", "ann", 1, "a-2").getStatus());
      Response conf = c.confirm("calls", res, "ann", "pay-1");
      assertEquals(Status.OK, conf.getStatus());
      assertEquals(HoldState.SOLD, conf.getReservation().getState());
      Response b = c.reserve("calls", "ben", 1, "b-1");
      assertEquals(Status.OK, c.cancel("calls", b.getReservation().getReservationId(), "ben", "b-cancel").getStatus());
      assertEquals(Status.OK, c.updateCampaign(UpdateCampaign.newBuilder().setRequestId(Requests.bytes("upd-1"))
          .setCampaignId(Requests.bytes("calls")).setStock(8).build()).getStatus());
      Campaign camp = c.getCampaign("calls").getCampaign();
      assertEquals(8, camp.getStock());
      assertEquals(1, camp.getSold());
      assertEquals(7, camp.getAvailable());
      assertEquals(Status.OK, c.getCampaignStale("calls").getStatus());
      // every campaign of the daemon, in pages of 2
      Set<String> seen = new HashSet<>();
      long cursor = 0;
      do {
        Response page = c.listCampaigns(cursor, 2);
        assertEquals(Status.OK, page.getStatus());
        page.getCampaigns().getCampaignsList().forEach(x -> seen.add(x.getCampaignId().toStringUtf8()));
        cursor = page.getCampaigns().getNextCursor();
      } while (cursor != 0);
      assertTrue(seen.contains("calls"), seen.toString());
      assertEquals(Status.OK, c.endCampaign("calls", "end-1").getStatus());
      assertEquals(Status.ENDED, c.reserve("calls", "cat", 1, "c-1").getStatus());
      assertEquals(Status.NOT_FOUND, c.getCampaign("nope").getStatus());
      assertEquals(Status.INVALID_ARGUMENT, c.reserve("calls", "", 1, "c-2").getStatus()); // an empty user id

      // a group buy of 2
      assertEquals(Status.OK, c.createCampaign(Requests.groupBuy("g", 10, 2, 3_600_000, 600_000).build(), "g-c")
          .getStatus());
      Response lead = c.join("g", "ann", JoinMode.JOIN_OPEN, 0, false, "g-1");
      assertEquals(Status.OK, lead.getStatus(), lead.getDetail());
      assertTrue(lead.getReservation().getOpened());
      long group = lead.getReservation().getGroupId();
      Response mate = c.join("g", "ben", JoinMode.JOIN_GROUP, group, false, "g-2");
      assertEquals(group, mate.getReservation().getGroupId());
      c.confirm("g", lead.getReservation().getReservationId(), "ann", "g-pay-1");
      c.confirm("g", mate.getReservation().getReservationId(), "ben", "g-pay-2");
      assertEquals(GroupState.GROUP_STATE_COMPLETED, c.getGroup("g", group).getGroup().getState());
    }
  }

  @Test
  void eventsReachTheListener() throws Exception {
    try (PintuanClient sub = PintuanClient.connect(d.addr); PintuanClient c = PintuanClient.connect(d.addr)) {
      Response cr = c.createCampaign(Requests.flashSale("ev", 1, 1, 600_000).setWaitlist(true).build(), "ev-c");
      assertEquals(Status.OK, cr.getStatus());
      LinkedBlockingQueue<io.pintuan.v1.Event> got = new LinkedBlockingQueue<>();
      assertEquals(Status.OK, sub.subscribe(got::add, "ev").getStatus());
      Response ann = c.reserve("ev", "ann", 1, "e-1");
      Response ben = c.reserve("ev", "ben", 1, "e-2");
      assertEquals(Status.WAITLISTED, ben.getStatus());
      c.cancel("ev", ann.getReservation().getReservationId(), "ann", "e-3"); // ben is granted the unit
      io.pintuan.v1.Event e = got.poll(10, TimeUnit.SECONDS);
      assertTrue(e != null, "no event");
      assertEquals(EventType.WAITLIST_GRANTED, e.getType());
      assertEquals("ben", e.getUserId().toStringUtf8());
      assertEquals(Status.OK, sub.ping().getStatus()); // a subscriber still asks
    }
  }

  @Test
  void manyThreadsAndABoundedPipeline() throws Exception {
    Config cfg = Config.builder(d.addr).maxInFlight(8).connections(3).build();
    try (PintuanClient c = PintuanClient.connect(cfg)) {
      create(c, "threads", 100_000, 0);
      ExecutorService pool = Executors.newFixedThreadPool(8);
      try {
        List<Future<Integer>> oks = new ArrayList<>();
        for (int t = 0; t < 8; t++) {
          final int tt = t;
          oks.add(pool.submit(() -> {
            List<CompletableFuture<Response>> fs = new ArrayList<>();
            for (int i = 0; i < 500; i++) fs.add(c.reserveAsync("threads", "t" + tt + "-" + i, 1, "t" + tt + "-" + i));
            int n = 0;
            for (CompletableFuture<Response> f : fs) n += c.await(f).getStatus() == Status.OK ? 1 : 0;
            return n;
          }));
        }
        int total = 0;
        for (Future<Integer> f : oks) total += f.get(60, TimeUnit.SECONDS);
        assertEquals(4000, total);
        assertTrue(c.inFlight() <= 3 * 8);
      } finally {
        pool.shutdownNow();
      }
      assertEquals(4000, c.getCampaign("threads").getCampaign().getHeld());
    }
  }

  @Test
  void aBlockingCallInACallbackIsRefused() throws Exception {
    // a daemon that answers after 200 ms: the callback is attached before, and runs on the reader
    try (FakeDaemon slow = new FakeDaemon(q -> {
          try {
            Thread.sleep(200);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
          return FakeDaemon.reply(q, Status.OK);
        }, 0);
        PintuanClient c = PintuanClient.connect(slow.addr)) {
      CompletableFuture<Object> seen = new CompletableFuture<>();
      c.send(Requests.ping()).thenAccept(r -> {
        try {
          c.ping();
          seen.complete(Thread.currentThread().getName());
        } catch (PintuanException e) {
          seen.complete(e);
        }
      });
      Object got = seen.get(10, TimeUnit.SECONDS);
      assertTrue(got instanceof PintuanException, String.valueOf(got));
      assertEquals(Status.OK, c.ping().getStatus()); // and the client goes on
    }
  }

  @Test
  void addressesAndUnreachable() {
    assertEquals("[::1]:7733", Address.parse("[::1]", 7733).toString());
    assertEquals("::1", Address.parse("::1", 7733).host());
    assertEquals(9, Address.parse("h:9", 7733).port());
    assertThrows(IllegalArgumentException.class, () -> Address.parseList("a:1,,b:2"));
    assertThrows(IllegalArgumentException.class, () -> Address.parse("h:x", 7733));
    PintuanException e = assertThrows(PintuanException.class,
        () -> PintuanClient.connect(Config.builder("127.0.0.1:1").timeoutMs(1000).build()));
    assertTrue(e.getMessage().contains("127.0.0.1:1"), e.getMessage());
    Request q = Requests.reserve("c", "u", 1, "r");
    assertNotEquals(0, q.getSerializedSize());
  }

  @Test
  void anOversizedFrameIsRefusedAndTheClientGoesOn() {
    try (PintuanClient c = PintuanClient.connect(d.addr)) {
      String big = "x".repeat(70_000); // over the daemon's 64 KiB frame limit
      Response r = c.await(c.send(Requests.reserve("nope", big, 1, "big")));
      assertEquals(Status.INVALID_ARGUMENT, r.getStatus());
      assertEquals(0, r.getId()); // the daemon's own message: it closes the connection
      assertEquals(Status.OK, c.ping().getStatus()); // the next request connects again
    }
  }
}
