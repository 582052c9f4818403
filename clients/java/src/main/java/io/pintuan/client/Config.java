package io.pintuan.client;

import java.nio.file.Path;
import java.util.List;
import javax.net.ssl.SSLContext;

/**
 * How a {@link PintuanClient} connects: the daemons' addresses, timeouts,
 * failover bounds, in-flight cap, connections, key and TLS. Made with
 * {@link #builder(String)}; immutable.
 *
 * <pre>{@code
 * Config cfg = Config.builder("10.0.0.1:7733,10.0.0.2:7733")   // primary, standby
 *     .timeoutMs(5000)
 *     .failover(16, 10_000)
 *     .keyFile(Path.of("/etc/pintuan/shop.key"))
 *     .tls(Path.of("ca.pem"))
 *     .build();
 * }</pre>
 */
public final class Config {
  /** libpintuan's PINTUAN_FAILOVER_ATTEMPTS: connection attempts... */
  public static final int DEFAULT_FAILOVER_ATTEMPTS = 16;
  /** ...within this time, from a failure (PINTUAN_FAILOVER_MS). */
  public static final int DEFAULT_FAILOVER_MS = 10_000;
  public static final int DEFAULT_TIMEOUT_MS = 5_000;
  public static final int DEFAULT_MAX_IN_FLIGHT = 4096;

  final List<Address> addresses;
  final int timeoutMs;
  final int failoverAttempts;
  final int failoverMs;
  final int maxInFlight;
  final int connections;
  final KeyFile key;
  final boolean tls;
  final Path tlsCa;
  final Path tlsCert;
  final Path tlsKey;
  final String tlsServerName;
  final SSLContext sslContext;
  final String clientName;

  private Config(Builder b) {
    addresses = b.addresses;
    timeoutMs = b.timeoutMs;
    failoverAttempts = b.failoverAttempts;
    failoverMs = b.failoverMs;
    maxInFlight = b.maxInFlight;
    connections = b.connections;
    key = b.key;
    tls = b.tls;
    tlsCa = b.tlsCa;
    tlsCert = b.tlsCert;
    tlsKey = b.tlsKey;
    tlsServerName = b.tlsServerName;
    sslContext = b.sslContext;
    clientName = b.clientName;
  }

  public static Builder builder(String addresses) {
    return new Builder(addresses);
  }

  public List<Address> addresses() {
    return addresses;
  }

  public int timeoutMs() {
    return timeoutMs;
  }

  public int failoverAttempts() {
    return failoverAttempts;
  }

  public int failoverMs() {
    return failoverMs;
  }

  public int maxInFlight() {
    return maxInFlight;
  }

  public int connections() {
    return connections;
  }

  public static final class Builder {
    private final List<Address> addresses;
    private int timeoutMs = DEFAULT_TIMEOUT_MS;
    private int failoverAttempts = DEFAULT_FAILOVER_ATTEMPTS;
    private int failoverMs = DEFAULT_FAILOVER_MS;
    private int maxInFlight = DEFAULT_MAX_IN_FLIGHT;
    private int connections = 1;
    private KeyFile key;
    private boolean tls;
    private Path tlsCa;
    private Path tlsCert;
    private Path tlsKey;
    private String tlsServerName;
    private SSLContext sslContext;
    private String clientName = "pintuan-java";

    /** "host:port", "[v6]:port", "host" (port 7733), or several, comma-separated. */
    Builder(String addresses) {
      this.addresses = Address.parseList(addresses);
    }

    /**
     * Bounds a connect (and TLS handshake) and each wait for the daemon
     * while a request is unanswered: no byte from it for this long and the
     * connection counts as lost (failover). &lt;= 0: wait forever. Default
     * 5000.
     */
    public Builder timeoutMs(int ms) {
      timeoutMs = ms;
      return this;
    }

    /**
     * After a failure: at most maxAttempts connection attempts (0: none, a
     * failure is final) within maxMs (&lt;= 0: no time bound), until the
     * daemon answers again; the same bounds apply to re-sending a request
     * answered UNAVAILABLE or OVERLOADED. Defaults 16 and 10 000.
     */
    public Builder failover(int maxAttempts, int maxMs) {
      failoverAttempts = Math.max(0, maxAttempts);
      failoverMs = maxMs;
      return this;
    }

    /**
     * Requests in flight per connection, at most (sent or queued, not
     * answered): a send past it waits for a reply (up to the timeout), so
     * the client's memory stays bounded. Default 4096.
     */
    public Builder maxInFlight(int n) {
      if (n < 1) throw new IllegalArgumentException("maxInFlight must be >= 1");
      maxInFlight = n;
      return this;
    }

    /**
     * Connections to open (default 1). Requests are spread over them round
     * robin, each one pipelined; a Hello goes to every one, a Subscribe to
     * the first only (so that each event arrives once).
     */
    public Builder connections(int n) {
      if (n < 1 || n > 1024) throw new IllegalArgumentException("connections must be 1..1024");
      connections = n;
      return this;
    }

    /** Says Hello with this key on every connection (and again after every failover). */
    public Builder key(String name, String secret) {
      key = new KeyFile(name, secret);
      return this;
    }

    /** The key of a key file ("NAME SECRET", as pintuand --make-key writes). */
    public Builder keyFile(Path path) {
      key = KeyFile.read(path);
      return this;
    }

    /**
     * Speaks TLS, verifying the daemon's certificate against the CA
     * certificates of this PEM file (null: the system's CAs) and that it
     * names the host dialled (an IP address as an IP SAN).
     */
    public Builder tls(Path caFile) {
      tls = true;
      tlsCa = caFile;
      return this;
    }

    /**
     * A client certificate (PEM, its chain) and its private key (PKCS#8 PEM,
     * "BEGIN PRIVATE KEY", EC or RSA; convert others with {@code openssl
     * pkcs8 -topk8 -nocrypt -in KEY -out KEY.pk8}). Implies TLS.
     */
    public Builder tlsClientCert(Path certFile, Path keyFile) {
      tls = true;
      tlsCert = certFile;
      tlsKey = keyFile;
      return this;
    }

    /** The name the daemon's certificate must carry, instead of each address's host. */
    public Builder tlsServerName(String name) {
      tlsServerName = name;
      return this;
    }

    /** A ready SSLContext instead of the PEM files (implies TLS). */
    public Builder sslContext(SSLContext ctx) {
      tls = true;
      sslContext = ctx;
      return this;
    }

    /** Hello's client_name (default "pintuan-java"). */
    public Builder clientName(String name) {
      clientName = name;
      return this;
    }

    public Config build() {
      if ((tlsCert == null) != (tlsKey == null))
        throw new IllegalArgumentException("TLS: a client certificate needs both the certificate and the key file");
      return new Config(this);
    }
  }
}
