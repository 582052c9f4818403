package io.pintuan.client;

import io.pintuan.v1.Request;
import io.pintuan.v1.Response;
import io.pintuan.v1.Status;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.function.Function;

/**
 * What a real daemon never does on demand, played on a real socket of
 * 127.0.0.1 with real frames (as tests/integration/test_failover.c's fake):
 * a standby answering NOT_LEADER naming some address, a daemon that dies
 * with requests unanswered, one that answers UNAVAILABLE. Records every
 * frame it read, byte for byte.
 */
final class FakeDaemon implements AutoCloseable {
  /** What to do with one request: a reply, or null to close the connection unanswered (no Answer: never answer). */
  interface Answer extends Function<Request, Response> {}

  final ServerSocket server;
  final String addr;
  final List<byte[]> frames = Collections.synchronizedList(new ArrayList<>());
  private final Answer answer;
  private final int swallow; // > 0: close each connection after this many frames, unanswered
  private final Thread thread;
  private volatile boolean stop;
  volatile int connections;

  FakeDaemon(Answer answer, int swallow) throws IOException {
    this.server = new ServerSocket(0, 16, InetAddress.getLoopbackAddress());
    this.addr = "127.0.0.1:" + server.getLocalPort();
    this.answer = answer;
    this.swallow = swallow;
    this.thread = new Thread(this::accept, "fake-daemon");
    thread.setDaemon(true);
    thread.start();
  }

  static Response reply(Request q, Status st) {
    return Response.newBuilder().setId(q.getId()).setStatus(st).build();
  }

  /** A standby: every request answered NOT_LEADER naming leader. */
  static FakeDaemon notLeader(String leader) throws IOException {
    return new FakeDaemon(q -> Response.newBuilder().setId(q.getId()).setStatus(Status.NOT_LEADER)
        .setDetail("this daemon is a standby").setLeader(leader).build(), 0);
  }

  private void accept() {
    while (!stop) {
      try (Socket s = server.accept()) {
        connections++;
        serve(s);
      } catch (IOException e) {
        if (stop) return;
      }
    }
  }

  private void serve(Socket s) throws IOException {
    DataInputStream in = new DataInputStream(s.getInputStream());
    OutputStream out = s.getOutputStream();
    int n = 0;
    while (!stop) {
      int len;
      try {
        len = in.readInt();
      } catch (IOException e) {
        return;
      }
      byte[] f = new byte[4 + len];
      f[0] = (byte) (len >>> 24);
      f[1] = (byte) (len >>> 16);
      f[2] = (byte) (len >>> 8);
      f[3] = (byte) len;
      in.readFully(f, 4, len);
      frames.add(f);
      n++;
      if (swallow > 0 && n == swallow) return; // dies with every request unanswered
      if (answer == null) continue; // silent
      Request q = Request.parseFrom(java.util.Arrays.copyOfRange(f, 4, f.length));
      Response r = answer.apply(q);
      if (r == null) return;
      byte[] b = r.toByteArray();
      byte[] o = new byte[4 + b.length];
      o[0] = (byte) (b.length >>> 24);
      o[1] = (byte) (b.length >>> 16);
      o[2] = (byte) (b.length >>> 8);
      o[3] = (byte) b.length;
      System.arraycopy(b, 0, o, 4, b.length);
      out.write(o);
      out.flush();
    }
  }

  List<byte[]> frames() {
    synchronized (frames) {
      return new ArrayList<>(frames);
    }
  }

  @Override
  public void close() throws IOException {
    stop = true;
    server.close();
    try {
      thread.join(2000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
