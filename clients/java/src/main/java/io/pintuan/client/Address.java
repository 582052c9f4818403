package io.pintuan.client;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * A daemon's address as users write it: "host:port", "[v6]:port", "host"
 * (port 7733), a bare IPv6 address; lists are comma-separated
 * ("h1:p1,h2:p2", at most 16), as libpintuan's pt_addr_parse_list.
 */
public final class Address {
  public static final int DEFAULT_PORT = 7733;
  public static final int MAX_ADDRESSES = 16;
  private static final int HOST_MAX = 256;

  private final String host; // without brackets
  private final int port;

  public Address(String host, int port) {
    if (host == null || host.isEmpty()) throw new IllegalArgumentException("no host");
    if (port < 0 || port > 65535) throw new IllegalArgumentException("bad port " + port);
    this.host = host;
    this.port = port;
  }

  public String host() {
    return host;
  }

  public int port() {
    return port;
  }

  private static IllegalArgumentException bad(String s, String why) {
    return new IllegalArgumentException("bad address '" + s + "': " + why);
  }

  /** One address; defaultPort &lt; 0: the port is required. */
  public static Address parse(String s, int defaultPort) {
    String h;
    String p = null;
    if (s.startsWith("[")) {
      int end = s.indexOf(']');
      if (end < 0) throw bad(s, "no closing ]");
      h = s.substring(1, end);
      if (end + 1 < s.length()) {
        if (s.charAt(end + 1) != ':') throw bad(s, "expected :PORT after ]");
        p = s.substring(end + 2);
      }
    } else {
      int colon = s.lastIndexOf(':');
      if (colon >= 0 && s.indexOf(':') != colon) colon = -1; // a bare IPv6 address
      h = colon >= 0 ? s.substring(0, colon) : s;
      if (colon >= 0) p = s.substring(colon + 1);
    }
    if (h.isEmpty()) throw bad(s, "no host (want HOST:PORT)");
    if (h.length() >= HOST_MAX) throw bad(s, "host name too long");
    int port = defaultPort;
    if (p == null && defaultPort < 0) throw bad(s, "no port (want HOST:PORT)");
    if (p != null) {
      long v;
      try {
        if (p.isEmpty() || !p.chars().allMatch(Character::isDigit) || p.length() > 5)
          throw new NumberFormatException();
        v = Long.parseLong(p);
      } catch (NumberFormatException e) {
        throw bad(s, "the port must be a number 0..65535");
      }
      if (v > 65535) throw bad(s, "the port must be a number 0..65535");
      port = (int) v;
    }
    return new Address(h, port);
  }

  /** A comma-separated list: a primary and its standby, say. */
  public static List<Address> parseList(String s) {
    if (s == null) throw new IllegalArgumentException("no address");
    List<Address> out = new ArrayList<>();
    for (String one : s.split(",", -1)) {
      if (one.isEmpty() || one.length() >= HOST_MAX + 16) throw bad(s, "an empty or overlong entry");
      if (out.size() == MAX_ADDRESSES) throw bad(s, "too many addresses");
      out.add(parse(one, DEFAULT_PORT));
    }
    return Collections.unmodifiableList(out);
  }

  /** "host:port", bracketing an IPv6 host. */
  @Override
  public String toString() {
    return (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Address && ((Address) o).port == port && ((Address) o).host.equalsIgnoreCase(host);
  }

  @Override
  public int hashCode() {
    return host.toLowerCase(java.util.Locale.ROOT).hashCode() * 31 + port;
  }
}
