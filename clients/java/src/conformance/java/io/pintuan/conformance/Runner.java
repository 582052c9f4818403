package io.pintuan.conformance;

import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.EnumValueDescriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Message;
import com.google.protobuf.MessageOrBuilder;
import io.pintuan.client.Config;
import io.pintuan.client.KeyFile;
import io.pintuan.client.PintuanClient;
import io.pintuan.client.PintuanException;
import io.pintuan.v1.Event;
import io.pintuan.v1.Request;
import io.pintuan.v1.Response;
import io.pintuan.v1.Status;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

/**
 * The conformance runner for the Java client: plays the scenarios of
 * tests/conformance/ (the .scn files; its README.md says the format)
 * through the client's blocking call ({@link PintuanClient#call}: its own
 * correlation ids, failover and UNAVAILABLE/OVERLOADED retries), against
 * the daemons ctl.sh starts, as tests/conformance/run_c.c does for
 * libpintuan and cmd/pintuan-conformance for the Go client. Requests are
 * built and replies read by field name through protobuf-java's
 * descriptors, so a scenario can name any operation and field without
 * code here.
 *
 * <pre>
 *   java io.pintuan.conformance.Runner CTL SCENARIO...   ($PINTUAND: the daemon ctl.sh starts)
 * </pre>
 *
 * One line per scenario ("ok NAME" / "not ok NAME: file:line: why"), then
 * "N passed, N failed"; exit 1 when any failed.
 */
public final class Runner {
  /** Bounds a connect and each wait for the daemon (run_c's 10000 ms to pintuan_connect). */
  private static final int CONNECT_TIMEOUT_MS = 10_000;

  /** A number as strtoll reads one whole: a sign, ASCII digits; empty is 0. */
  private static final Pattern DECIMAL = Pattern.compile("|[+-]?[0-9]+");

  /** A scenario's failure: "file:line: why". */
  static final class Failure extends Exception {
    private static final long serialVersionUID = 1L;

    Failure(String why) {
      super(why, null, false, false);
    }
  }

  static final class Client {
    final String name;
    final PintuanClient c;
    Response last;
    final LinkedBlockingQueue<Event> events = new LinkedBlockingQueue<>(); // after `send NAME subscribe`

    Client(String name, PintuanClient c) {
      this.name = name;
      this.c = c;
    }
  }

  private final String ctl;
  private final String file;
  private final Path dir;
  private int line;
  private String addrs = "";
  private boolean up;
  private final List<Client> clients = new ArrayList<>();
  private final Map<String, String> vars = new HashMap<>();

  private Runner(String ctl, String file, Path dir) {
    this.ctl = ctl;
    this.file = file;
    this.dir = dir;
  }

  private Failure fail(String fmt, Object... a) {
    return new Failure(file + ":" + line + ": " + String.format(fmt, a));
  }

  private static boolean isVarChar(char c) {
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  }

  /** Every $VAR of s (VAR: letters, digits, '_') substituted. */
  private String expand(String s) throws Failure {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < s.length();) {
      if (s.charAt(i) != '$') {
        b.append(s.charAt(i++));
        continue;
      }
      int j = i + 1;
      while (j < s.length() && isVarChar(s.charAt(j))) j++;
      String v = vars.get(s.substring(i + 1, j));
      if (v == null) throw fail("no saved value $%s", s.substring(i + 1, j));
      b.append(v);
      i = j;
    }
    return b.toString();
  }

  private Client findClient(String name) throws Failure {
    for (Client k : clients) {
      if (k.name.equals(name)) return k;
    }
    throw fail("no client %s", name);
  }

  // ---- messages by field name ----

  private FieldDescriptor field(Descriptor d, String name) throws Failure {
    FieldDescriptor f = d.findFieldByName(name);
    if (f == null) throw fail("%s has no field %s", d.getFullName(), name);
    return f;
  }

  private static boolean isMessage(FieldDescriptor f) {
    return f.getJavaType() == FieldDescriptor.JavaType.MESSAGE && !f.isRepeated();
  }

  /** A number of f's field from text: base 10, an empty one 0 (as strtol reads it in run_c). */
  private long number(FieldDescriptor f, String v, long min, long max) throws Failure {
    try {
      if (!DECIMAL.matcher(v).matches()) throw new NumberFormatException();
      long n = v.isEmpty() ? 0 : Long.parseLong(v);
      if (n < min || n > max) throw new NumberFormatException();
      return n;
    } catch (NumberFormatException e) {
      throw fail("%s: bad number %s", f.getName(), v);
    }
  }

  /**
   * Field f of m set from the text v (a repeated bytes or string field gets
   * one more element). A number out of its field's range is a bad number,
   * not wrapped.
   */
  private void setScalar(Message.Builder m, FieldDescriptor f, String v) throws Failure {
    if (f.isRepeated()) {
      switch (f.getType()) {
        case BYTES:
          m.addRepeatedField(f, ByteString.copyFromUtf8(v));
          return;
        case STRING:
          m.addRepeatedField(f, v);
          return;
        default:
          throw fail("repeated %s: only bytes and strings", f.getName());
      }
    }
    Object val;
    switch (f.getType()) {
      case INT32:
      case SINT32:
      case SFIXED32:
        val = (int) number(f, v, Integer.MIN_VALUE, Integer.MAX_VALUE);
        break;
      case UINT32:
      case FIXED32:
        val = (int) number(f, v, 0, 0xffffffffL); // the bits of the unsigned value
        break;
      case INT64:
      case SINT64:
      case SFIXED64:
        val = number(f, v, Long.MIN_VALUE, Long.MAX_VALUE);
        break;
      case UINT64:
      case FIXED64:
        try {
          if (!DECIMAL.matcher(v).matches() || v.startsWith("-")) throw new NumberFormatException();
          val = v.isEmpty() ? 0L : Long.parseUnsignedLong(v);
        } catch (NumberFormatException e) {
          throw fail("%s: bad number %s", f.getName(), v);
        }
        break;
      case BOOL:
        if (!v.equals("true") && !v.equals("false")) throw fail("%s: true or false, not %s", f.getName(), v);
        val = v.equals("true");
        break;
      case ENUM: {
        EnumValueDescriptor e = f.getEnumType().findValueByName(v);
        if (e == null) throw fail("%s: no value %s", f.getName(), v);
        val = e;
        break;
      }
      case STRING:
        val = v;
        break;
      case BYTES:
        val = ByteString.copyFromUtf8(v);
        break;
      default:
        throw fail("%s: a type this runner does not set", f.getName());
    }
    m.setField(f, val);
  }

  /** PATH (dotted: spec.stock) of m set to the text v, making the messages on the way. */
  private void setPath(Message.Builder m, String path, String v) throws Failure {
    String[] segs = path.split("\\.", -1);
    for (int i = 0; i < segs.length - 1; i++) {
      FieldDescriptor f = field(m.getDescriptorForType(), segs[i]);
      if (!isMessage(f)) throw fail("%s is not a message", segs[i]);
      m = m.getFieldBuilder(f); // set in m (its oneof case too)
    }
    setScalar(m, field(m.getDescriptorForType(), segs[segs.length - 1]), v);
  }

  /**
   * PATH of m as text: "-" when absent (or a message on the way is), a
   * repeated field's count, enums by name, booleans true/false, bytes as text.
   */
  private String getPath(MessageOrBuilder m, String path) throws Failure {
    String[] segs = path.split("\\.", -1);
    for (int i = 0; i < segs.length; i++) {
      FieldDescriptor f = field(m.getDescriptorForType(), segs[i]);
      if (f.isRepeated()) return Integer.toString(m.getRepeatedFieldCount(f)); // how many (maps too)
      if (f.hasPresence() && !m.hasField(f)) return "-";
      Object v = m.getField(f);
      if (i < segs.length - 1) {
        if (!isMessage(f)) throw fail("%s is not a message", segs[i]);
        m = (Message) v;
        continue;
      }
      switch (f.getType()) {
        case INT32:
        case SINT32:
        case SFIXED32:
        case INT64:
        case SINT64:
        case SFIXED64:
          return v.toString();
        case UINT32:
        case FIXED32:
          return Integer.toUnsignedString((Integer) v);
        case UINT64:
        case FIXED64:
          return Long.toUnsignedString((Long) v);
        case BOOL:
          return v.toString();
        case ENUM: {
          int n = ((EnumValueDescriptor) v).getNumber();
          EnumValueDescriptor e = f.getEnumType().findValueByNumber(n);
          return e != null ? e.getName() : Integer.toString(n);
        }
        case STRING:
          return (String) v;
        case BYTES: {
          ByteString b = (ByteString) v;
          for (int j = 0; j < b.size(); j++) { // as run_c's %.*s
            if (b.byteAt(j) == 0) {
              b = b.substring(0, j);
              break;
            }
          }
          return b.toStringUtf8();
        }
        default:
          throw fail("%s: a message, not a value", segs[i]);
      }
    }
    throw fail("empty path");
  }

  /** The Status value's name (STATUS_UNSPECIFIED for one this build does not know, as pintuan_status_str). */
  private static String statusName(Response r) {
    EnumValueDescriptor e = Status.getDescriptor().findValueByNumber(r.getStatusValue());
    return e != null ? e.getName() : "STATUS_UNSPECIFIED";
  }

  // ---- the steps ----

  /**
   * ctl.sh: "up MODE" as `ctl.sh up DIR MODE`, any other command as
   * `ctl.sh COMMAND DIR`. Returns the first line it printed.
   */
  private String ctlCmd(String... args) throws Failure {
    List<String> argv = new ArrayList<>(List.of("bash", ctl));
    if (args[0].equals("up")) {
      argv.add("up");
      argv.add(dir.toString());
      for (int i = 1; i < args.length; i++) argv.add(args[i]);
    } else {
      argv.add(args[0]);
      argv.add(dir.toString());
    }
    String out;
    int rc;
    try {
      Process p = new ProcessBuilder(argv).redirectInput(ProcessBuilder.Redirect.INHERIT)
          .redirectError(ProcessBuilder.Redirect.INHERIT).start();
      try (InputStream in = p.getInputStream()) {
        out = new String(in.readAllBytes(), StandardCharsets.UTF_8);
      }
      rc = p.waitFor();
    } catch (IOException e) {
      throw fail("ctl: %s", e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw fail("ctl: interrupted");
    }
    if (rc != 0) throw fail("ctl %s failed (%d)", String.join(" ", args), rc << 8); // pclose's status, as run_c
    int nl = out.indexOf('\n');
    return nl >= 0 ? out.substring(0, nl) : out;
  }

  private void stepClient(String[] w) throws Failure {
    if (w.length != 3) throw fail("client NAME ROLE");
    PintuanClient c;
    try {
      Config.Builder b = Config.builder(addrs).timeoutMs(CONNECT_TIMEOUT_MS);
      Path ca = dir.resolve("tls").resolve("ca.pem"); // ctl.sh up ... tls made it: TLS
      if (Files.exists(ca)) b.tls(ca);
      c = PintuanClient.connect(b.build());
    } catch (RuntimeException e) {
      throw fail("connect: %s", e.getMessage());
    }
    clients.add(new Client(w[1], c));
    if (w[2].equals("none")) return;
    KeyFile key;
    try {
      key = KeyFile.read(dir.resolve("keys").resolve(w[2] + ".key"));
    } catch (PintuanException e) {
      throw fail("key %s: %s", w[2], e.getMessage());
    }
    Response r;
    try {
      r = c.hello(key.name(), key.secret());
    } catch (PintuanException e) {
      throw fail("hello: %s", e.getMessage());
    }
    if (r.getStatusValue() != Status.OK_VALUE) throw fail("hello as %s: %s", w[2], statusName(r));
  }

  private void stepSend(String[] w) throws Failure {
    if (w.length < 3) throw fail("send NAME OP [FIELD=VALUE ...]");
    Client k = findClient(w[1]);
    Request.Builder q = Request.newBuilder();
    FieldDescriptor op = field(Request.getDescriptor(), w[2]);
    if (!isMessage(op)) throw fail("%s is not an operation", w[2]);
    Message.Builder body = q.getFieldBuilder(op); // the oneof op set to it
    for (int i = 3; i < w.length; i++) {
      String tok = expand(w[i]);
      int eq = tok.indexOf('=');
      if (eq < 0) throw fail("%s: FIELD=VALUE", w[i]);
      setPath(body, tok.substring(0, eq), tok.substring(eq + 1));
    }
    k.last = null;
    try {
      if (w[2].equals("subscribe")) { // events go to a listener: the client's own call
        Request built = q.build();
        String[] ids = built.getSubscribe().getCampaignIdsList().stream()
            .map(b -> b.toString(StandardCharsets.UTF_8)).toArray(String[]::new);
        k.last = k.c.subscribe(k.events::add, ids);
      } else {
        k.last = k.c.await(k.c.call(q.build()));
      }
    } catch (PintuanException e) {
      throw fail("%s: %s", w[2], e.getMessage());
    }
  }

  private void stepExpect(String[] w) throws Failure {
    if (w.length < 3) throw fail("expect NAME STATUS [PATH=VALUE ...] [>VAR=PATH ...]");
    Client k = findClient(w[1]);
    if (k.last == null) throw fail("%s has no reply", w[1]);
    String got = statusName(k.last);
    if (!got.equals(w[2])) throw fail("status %s, wanted %s (%s)", got, w[2], k.last.getDetail());
    check(k.last, w, 3);
  }

  /** The next event pushed to NAME (subscribed with `send NAME subscribe`): its type, then its fields. */
  private void stepEvent(String[] w) throws Failure {
    if (w.length < 3) throw fail("event NAME TYPE [PATH=VALUE ...] [>VAR=PATH ...]");
    Client k = findClient(w[1]);
    Event ev;
    try {
      ev = k.events.poll(CONNECT_TIMEOUT_MS, TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw fail("interrupted");
    }
    if (ev == null) throw fail("no event within %d ms", CONNECT_TIMEOUT_MS);
    if (!ev.getType().name().equals(w[2])) throw fail("event %s, wanted %s", ev.getType().name(), w[2]);
    check(ev, w, 3);
  }

  /** Each PATH=VALUE of w[from..] holds in m; each >VAR=PATH is saved. */
  private void check(MessageOrBuilder m, String[] w, int from) throws Failure {
    for (int i = from; i < w.length; i++) {
      String tok = expand(w[i]);
      int eq = tok.indexOf('=');
      if (eq < 0) throw fail("%s: PATH=VALUE", w[i]);
      String lhs = tok.substring(0, eq), rhs = tok.substring(eq + 1);
      boolean save = lhs.startsWith(">");
      String path = save ? rhs : lhs;
      String have = getPath(m, path);
      if (save) vars.put(lhs.substring(1), have); // saved again: the latest value wins
      else if (!have.equals(rhs)) throw fail("%s is %s, wanted %s", path, have, rhs);
    }
  }

  private void play() throws Failure {
    List<String> lines;
    try {
      lines = Files.readAllLines(Path.of(file), StandardCharsets.UTF_8);
    } catch (NoSuchFileException e) {
      throw fail("No such file or directory");
    } catch (IOException e) {
      throw fail("%s", e.getMessage());
    }
    for (String text : lines) {
      line++;
      int hash = text.indexOf('#');
      if (hash >= 0) text = text.substring(0, hash);
      text = text.strip();
      if (text.isEmpty()) continue;
      String[] w = text.split("\\s+");
      switch (w[0]) {
        case "setup":
          up = true; // ctl.sh down after it, even when it failed partway
          addrs = w.length > 2 ? ctlCmd("up", w[1], w[2]) : ctlCmd("up", w.length > 1 ? w[1] : "single");
          break;
        case "client":
          stepClient(w);
          break;
        case "send":
          stepSend(w);
          break;
        case "expect":
          stepExpect(w);
          break;
        case "event":
          stepEvent(w);
          break;
        case "ctl":
          if (w.length != 2) throw fail("ctl COMMAND");
          ctlCmd(w[1]);
          break;
        default:
          throw fail("unknown step %s", w[0]);
      }
    }
  }

  /** The daemons' last words, after a failure: a courtesy. */
  private void tailLogs() {
    System.out.flush();
    try {
      new ProcessBuilder("sh", "-c", "tail -n 5 '" + dir + "'/*.log 2>/dev/null | sed 's/^/#   /'")
          .inheritIO().start().waitFor();
    } catch (IOException e) {
      // nothing to show
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static void removeTree(Path p) {
    try {
      new ProcessBuilder("rm", "-rf", p.toString()).inheritIO().start().waitFor();
    } catch (IOException e) {
      // left behind in /tmp
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  public static void main(String[] args) {
    if (args.length < 2) {
      System.err.println("usage: Runner CTL SCENARIO...");
      System.exit(64);
    }
    int passed = 0, failed = 0;
    for (int i = 1; i < args.length; i++) {
      Path dir;
      try {
        dir = Files.createTempDirectory(Path.of("/tmp"), "pt-conf-");
      } catch (IOException e) {
        System.err.println("pintuan-conformance: " + e.getMessage());
        System.exit(1);
        return;
      }
      Runner r = new Runner(args[0], args[i], dir);
      Failure err = null;
      try {
        r.play();
      } catch (Failure f) {
        err = f;
      } catch (RuntimeException e) { // a bug here, still one line and the daemons down
        err = r.fail("%s", e);
      }
      for (Client k : r.clients) k.c.close();
      if (r.up) {
        try {
          r.ctlCmd("down");
        } catch (Failure f) {
          // as run_c: down's own failure is not the scenario's
        }
      }
      String name = Path.of(args[i]).getFileName().toString();
      if (err != null) {
        System.out.println("not ok " + name + ": " + err.getMessage());
        r.tailLogs();
        failed++;
      } else {
        System.out.println("ok " + name);
        passed++;
      }
      System.out.flush();
      removeTree(dir);
    }
    System.out.println(passed + " passed, " + failed + " failed");
    System.out.flush();
    System.exit(failed > 0 ? 1 : 0);
  }
}
