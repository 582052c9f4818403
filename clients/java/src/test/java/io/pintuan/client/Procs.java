package io.pintuan.client;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Real processes for the tests: pintuand ($PINTUAND, as tests/lib/harness.c
 * starts it: --listen 127.0.0.1:0 --ready-fd gives the port), redis-server
 * on a free port, openssl and pintuand --make-key. Everything started is
 * killed by the test that started it (try-with-resources), and whatever is
 * left at exit by a shutdown hook.
 */
final class Procs {
  static final Set<Process> LIVE = ConcurrentHashMap.newKeySet();

  static {
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      for (Process p : LIVE) p.destroyForcibly();
    }));
  }

  private Procs() {}

  static String pintuand() {
    String b = System.getenv("PINTUAND");
    if (b == null) b = "build/daemon/pintuand";
    if (!new File(b).canExecute()) throw new IllegalStateException("PINTUAND (" + b + ") is not an executable");
    return b;
  }

  static Path tempDir(String prefix) throws IOException {
    return Files.createTempDirectory(prefix);
  }

  static void removeTree(Path dir) {
    if (dir == null || !Files.exists(dir)) return;
    try (Stream<Path> s = Files.walk(dir)) {
      s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException ignored) {
      // best effort
    }
  }

  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  /** Runs a command to its end: its stdout; fails the test on a non-zero exit. */
  static String run(List<String> cmd, Path dir) throws IOException, InterruptedException {
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(false);
    if (dir != null) pb.directory(dir.toFile());
    pb.redirectError(ProcessBuilder.Redirect.INHERIT);
    Process p = pb.start();
    LIVE.add(p);
    try {
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!p.waitFor(60, TimeUnit.SECONDS)) throw new IOException("timed out: " + cmd);
      if (p.exitValue() != 0) throw new IOException("exit " + p.exitValue() + ": " + cmd + "\n" + out);
      return out;
    } finally {
      p.destroyForcibly();
      LIVE.remove(p);
    }
  }

  static String sh(String script, Path dir) throws IOException, InterruptedException {
    return run(List.of("sh", "-c", script), dir);
  }

  /** pintuand --make-key NAME:ROLE: the client's key file in dir, its line appended to dir/keys. */
  static Path makeKey(Path dir, String name, String role) throws IOException, InterruptedException {
    Path key = dir.resolve(name + ".key");
    String line = run(List.of(pintuand(), "--make-key", name + ":" + role, "--key-out", key.toString()), null);
    Files.writeString(dir.resolve("keys"), line, StandardCharsets.UTF_8,
        java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
    return key;
  }

  /** A running pintuand. */
  static final class Daemon implements AutoCloseable {
    final Process proc;
    final Path dir;
    final Path log;
    final int port;
    final String addr;
    private long logOff;

    private Daemon(Process proc, Path dir, Path log, int port) {
      this.proc = proc;
      this.dir = dir;
      this.log = log;
      this.port = port;
      this.addr = "127.0.0.1:" + port;
    }

    /** pintuand --listen 127.0.0.1:0 with extra arguments; returns once it listens. */
    static Daemon start(String... extra) throws IOException {
      Path dir = tempDir("pintuand-java-");
      Path log = dir.resolve("log");
      List<String> cmd = new ArrayList<>(Arrays.asList(pintuand(), "--listen", "127.0.0.1:0", "--ready-fd", "1",
          "--admin-listen", "127.0.0.1:0", "--log-level", "warn"));
      cmd.addAll(Arrays.asList(extra));
      ProcessBuilder pb = new ProcessBuilder(cmd).redirectError(log.toFile());
      Process p = pb.start();
      LIVE.add(p);
      int port = -1;
      try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
        String line = r.readLine(); // the port, then the admin port; then it closes the fd
        if (line != null) port = Integer.parseInt(line.trim());
      } catch (NumberFormatException e) {
        port = -1;
      }
      if (port <= 0) {
        p.destroyForcibly();
        LIVE.remove(p);
        String text = Files.exists(log) ? Files.readString(log) : "";
        removeTree(dir);
        throw new IOException("pintuand did not start: " + cmd + "\n" + text);
      }
      return new Daemon(p, dir, log, port);
    }

    /** Waits for a log line containing needle (after the last one found). */
    boolean awaitLog(String needle, long ms) throws IOException, InterruptedException {
      long end = System.nanoTime() + ms * 1_000_000L;
      for (;;) {
        String text = Files.readString(log, StandardCharsets.UTF_8);
        int at = text.indexOf(needle, (int) Math.min(logOff, text.length()));
        if (at >= 0) {
          int nl = text.indexOf('\n', at);
          logOff = nl < 0 ? text.length() : nl + 1;
          return true;
        }
        if (System.nanoTime() > end || !proc.isAlive()) return false;
        Thread.sleep(20); // a process starting: no event to wait for but its log
      }
    }

    String logText() {
      try {
        return Files.readString(log, StandardCharsets.UTF_8);
      } catch (IOException e) {
        return "";
      }
    }

    /** SIGKILL, and waits for it. */
    void kill9() throws InterruptedException {
      proc.destroyForcibly();
      proc.waitFor(10, TimeUnit.SECONDS);
      LIVE.remove(proc);
    }

    /** SIGTERM (SIGKILL after 10 s); the exit status. */
    int stop() throws InterruptedException {
      proc.destroy();
      if (!proc.waitFor(10, TimeUnit.SECONDS)) proc.destroyForcibly().waitFor();
      LIVE.remove(proc);
      return proc.exitValue();
    }

    @Override
    public void close() {
      try {
        if (proc.isAlive()) stop();
      } catch (InterruptedException e) {
        proc.destroyForcibly();
        Thread.currentThread().interrupt();
      }
      LIVE.remove(proc);
      removeTree(dir);
    }
  }

  /** A redis-server on a free port of 127.0.0.1, nothing saved. */
  static final class Redis implements AutoCloseable {
    final Process proc;
    final Path dir;
    final int port;
    final String addr;

    private Redis(Process proc, Path dir, int port) {
      this.proc = proc;
      this.dir = dir;
      this.port = port;
      this.addr = "127.0.0.1:" + port;
    }

    static Redis start() throws IOException, InterruptedException {
      String bin = System.getenv().getOrDefault("REDIS_SERVER", "redis-server");
      Path dir = tempDir("pintuan-java-redis-");
      for (int attempt = 0; attempt < 5; attempt++) {
        int port = freePort();
        Process p = new ProcessBuilder(bin, "--port", String.valueOf(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", dir.toString(), "--logfile", dir.resolve("redis.log").toString())
            .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        LIVE.add(p);
        long end = System.nanoTime() + 30_000_000_000L;
        while (System.nanoTime() < end && p.isAlive()) {
          if (ping(port)) return new Redis(p, dir, port);
          Thread.sleep(10); // polling a process that starts
        }
        p.destroyForcibly().waitFor();
        LIVE.remove(p);
      }
      removeTree(dir);
      throw new IOException("redis-server did not start");
    }

    private static boolean ping(int port) {
      try (Socket s = new Socket("127.0.0.1", port)) {
        s.setSoTimeout(1000);
        s.getOutputStream().write("PING\r\n".getBytes(StandardCharsets.US_ASCII));
        byte[] b = new byte[7];
        int n = s.getInputStream().read(b);
        return n > 0 && new String(b, 0, n, StandardCharsets.US_ASCII).startsWith("+PONG");
      } catch (IOException e) {
        return false;
      }
    }

    @Override
    public void close() {
      proc.destroyForcibly();
      try {
        proc.waitFor(10, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      LIVE.remove(proc);
      removeTree(dir);
    }
  }
}
