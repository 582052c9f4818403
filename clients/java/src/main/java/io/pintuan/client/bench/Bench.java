package io.pintuan.client.bench;

import io.pintuan.client.Config;
import io.pintuan.client.PintuanClient;
import io.pintuan.client.Requests;
import io.pintuan.v1.Response;
import io.pintuan.v1.Status;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.LongAdder;

/**
 * The Java client under load, as pintuan-bench's stampede scenario in a
 * closed loop: reserves of 1 unit on one flash sale (stock 100 000, limit
 * 1, users drawn from 1 000 000), DEPTH requests in flight on each of CONNS
 * connections, each reply sending the next request.
 *
 * <pre>
 * java -cp pintuan-client.jar io.pintuan.client.bench.Bench -a 127.0.0.1:7733 -c 1 -p 64 -d 5
 * </pre>
 */
public final class Bench {
  private static final int BUCKETS = 200_000; // latency histogram: 1 us buckets up to 200 ms

  private final PintuanClient client;
  private final String campaign;
  private final int users;
  private final AtomicLongArray histo = new AtomicLongArray(BUCKETS + 1);
  private final LongAdder measured = new LongAdder();
  private final Map<Status, LongAdder> statuses = new ConcurrentHashMap<>();
  private final AtomicLong seq = new AtomicLong();
  private final AtomicLong errors = new AtomicLong();
  private volatile long measureFrom;
  private volatile long measureTo = Long.MAX_VALUE;
  private volatile boolean stopping;
  private final CountDownLatch drained;

  private Bench(PintuanClient client, String campaign, int users, int loops) {
    this.client = client;
    this.campaign = campaign;
    this.users = users;
    this.drained = new CountDownLatch(loops);
  }

  private void next() {
    if (stopping) {
      drained.countDown();
      return;
    }
    long n = seq.incrementAndGet();
    String user = "u" + ThreadLocalRandom.current().nextInt(users);
    long t0 = System.nanoTime();
    CompletableFuture<Response> f;
    try {
      f = client.send(Requests.reserve(campaign, user, 1, "jb-" + n));
    } catch (RuntimeException e) { // the client failed: this loop ends
      errors.incrementAndGet();
      drained.countDown();
      return;
    }
    f.whenComplete((r, e) -> {
      long t1 = System.nanoTime();
      if (e != null) {
        errors.incrementAndGet();
      } else if (t1 >= measureFrom && t1 < measureTo) {
        measured.increment();
        statuses.computeIfAbsent(r.getStatus(), s -> new LongAdder()).increment();
        histo.incrementAndGet((int) Math.min((t1 - t0) / 1000, BUCKETS));
      }
      next();
    });
  }

  private double percentile(double p) {
    long total = 0;
    for (int i = 0; i <= BUCKETS; i++) total += histo.get(i);
    long want = (long) Math.ceil(total * p / 100.0);
    long seen = 0;
    for (int i = 0; i <= BUCKETS; i++) {
      seen += histo.get(i);
      if (seen >= want && want > 0) return i / 1000.0;
    }
    return 0;
  }

  /** This process's CPU time (every thread), or 0 where the JVM does not say. */
  private static long cpuNs() {
    java.lang.management.OperatingSystemMXBean os = java.lang.management.ManagementFactory.getOperatingSystemMXBean();
    return os instanceof com.sun.management.OperatingSystemMXBean
        ? ((com.sun.management.OperatingSystemMXBean) os).getProcessCpuTime() : 0;
  }

  private static void usage(String why) {
    System.err.println((why != null ? why + "\n" : "")
        + "usage: Bench [-a HOST:PORT[,...]] [-c CONNS] [-p DEPTH] [-d SECONDS] [-w SECONDS]"
        + " [--stock N] [--limit N] [--users N] [-k KEY_FILE] [--tls-ca FILE]");
    System.exit(64);
  }

  public static void main(String[] args) throws Exception {
    String addr = "127.0.0.1:7733";
    int conns = 1;
    int depth = 64;
    double secs = 5;
    double warm = 1;
    long stock = 100_000;
    int limit = 1;
    int users = 1_000_000;
    String key = System.getenv("PINTUAN_KEY_FILE");
    String ca = null;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (i + 1 >= args.length) usage(a + ": a value is needed");
      String v = args[++i];
      try {
        switch (a) {
          case "-a": addr = v; break;
          case "-c": conns = Integer.parseInt(v); break;
          case "-p": depth = Integer.parseInt(v); break;
          case "-d": secs = Double.parseDouble(v); break;
          case "-w": warm = Double.parseDouble(v); break;
          case "--stock": stock = Long.parseLong(v); break;
          case "--limit": limit = Integer.parseInt(v); break;
          case "--users": users = Integer.parseInt(v); break;
          case "-k": key = v; break;
          case "--tls-ca": ca = v; break;
          default: usage("unknown option " + a);
        }
      } catch (NumberFormatException e) {
        usage(a + ": bad value '" + v + "'");
      }
    }
    if (conns < 1 || depth < 1 || secs <= 0 || warm < 0 || users < 1) usage("a value out of range");
    Config.Builder cb = Config.builder(addr).connections(conns).maxInFlight(conns * depth + 1);
    if (key != null && !key.isEmpty()) cb.keyFile(Path.of(key));
    if (ca != null) cb.tls(Path.of(ca));
    try (PintuanClient c = PintuanClient.connect(cb.build())) {
      String campaign = "jbench-" + ProcessHandle.current().pid() + "-" + System.currentTimeMillis();
      Response cr = c.createCampaign(Requests.flashSale(campaign, stock, limit, 3_600_000).build(), campaign);
      if (cr.getStatus() != Status.OK) {
        System.err.println("create " + campaign + ": " + cr.getStatus() + " " + cr.getDetail());
        System.exit(1);
      }
      Bench b = new Bench(c, campaign, users, conns * depth);
      long start = System.nanoTime();
      b.measureFrom = start + (long) (warm * 1e9);
      b.measureTo = b.measureFrom + (long) (secs * 1e9);
      for (int i = 0; i < conns * depth; i++) b.next(); // round robin: depth per connection
      long sleep = (b.measureFrom - System.nanoTime()) / 1_000_000;
      if (sleep > 0) Thread.sleep(sleep);
      long cpu0 = cpuNs();
      sleep = (b.measureTo - System.nanoTime()) / 1_000_000;
      if (sleep > 0) Thread.sleep(sleep);
      long cpu = cpuNs() - cpu0;
      b.stopping = true;
      b.drained.await();
      long n = b.measured.sum();
      Map<String, Long> st = new TreeMap<>();
      b.statuses.forEach((s, v) -> st.put(s.name(), v.sum()));
      System.out.printf("java bench: %d connections x %d in flight, %.1f s: %d requests, %.0f req/s,"
          + " latency p50 %.3f ms p99 %.3f ms p99.9 %.3f ms, client CPU %.2f us a request, errors %d,"
          + " statuses %s%n", conns, depth, secs, n, n / secs, b.percentile(50), b.percentile(99), b.percentile(99.9),
          n > 0 ? cpu / 1000.0 / n : 0.0, b.errors.get(), st);
      long held = c.getCampaign(campaign).getCampaign().getHeld();
      if (held > stock) {
        System.err.println("oversold: held " + held + " of " + stock);
        System.exit(1);
      }
    }
  }
}
