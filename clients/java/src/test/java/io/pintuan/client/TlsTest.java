package io.pintuan.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.pintuan.v1.Response;
import io.pintuan.v1.Status;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * TLS on the storefront port against real pintuand processes, with
 * certificates made by openssl for the run as tests/integration/test_tls.c
 * makes them: a CA, the daemon's (IP:127.0.0.1 and DNS:localhost), clients'
 * (EC and RSA keys, PKCS#8) and a stranger's CA.
 */
class TlsTest {
  static Path dir;

  static void sh(String script) throws Exception {
    Procs.sh(script + " >/dev/null 2>&1", dir);
  }

  /** A P-256 key and a certificate for CN=cn signed by ca (null: its own CA), with an extension. */
  static void cert(String name, String cn, String ca, String ext) throws Exception {
    String key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256";
    if (name.endsWith("-rsa")) key = "-newkey rsa:2048";
    if (ca == null) {
      sh("openssl req -x509 " + key + " -nodes -keyout " + name + ".key -out " + name + ".pem -days 2 -subj /CN=" + cn);
      return;
    }
    sh("openssl req " + key + " -nodes -keyout " + name + ".key -out " + name + ".csr -subj /CN=" + cn
        + (ext != null ? " -addext " + ext : "") + " && openssl x509 -req -in " + name + ".csr -CA " + ca + ".pem -CAkey "
        + ca + ".key -CAcreateserial -out " + name + ".pem -days 2 -copy_extensions copy");
  }

  @BeforeAll
  static void certificates() throws Exception {
    dir = Procs.tempDir("pintuan-java-tls-");
    cert("ca", "pintuan-test-ca", null, null);
    cert("server", "pintuand", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost");
    cert("c-shop", "shop", "ca", null); // a key's name: its role
    cert("c-shop-rsa", "shop", "ca", null);
    cert("rogue", "rogue-ca", null, null); // a CA the daemon does not trust
    cert("c-forged", "shop", "rogue", null);
    sh("openssl pkey -in c-shop.key -traditional -out c-shop.trad.key"); // "BEGIN EC PRIVATE KEY"
    Procs.makeKey(dir, "ops", "admin");
    Procs.makeKey(dir, "shop", "storefront");
  }

  @AfterAll
  static void cleanup() {
    Procs.removeTree(dir);
  }

  static Procs.Daemon start(String... more) throws Exception {
    List<String> a = new ArrayList<>(List.of("--tls-cert", dir.resolve("server.pem").toString(), "--tls-key",
        dir.resolve("server.key").toString()));
    a.addAll(List.of(more));
    return Procs.Daemon.start(a.toArray(new String[0]));
  }

  static Config.Builder tls(String addr, String ca) {
    return Config.builder(addr).tls(dir.resolve(ca)).timeoutMs(5000).failover(0, 0);
  }

  @Test
  void roundTripNamesAndRefusals() throws Exception {
    try (Procs.Daemon d = start()) {
      try (PintuanClient c = PintuanClient.connect(tls(d.addr, "ca.pem").build())) {
        assertEquals(Status.OK, c.ping().getStatus());
        assertEquals(Status.OK, c.createCampaign(Requests.flashSale("sku", 100, 0, 600_000).build(), "c").getStatus());
        List<CompletableFuture<Response>> fs = new ArrayList<>();
        for (int i = 0; i < 50; i++) fs.add(c.send(Requests.reserve("sku", "u" + i, 1, "r" + i))); // pipelined
        for (CompletableFuture<Response> f : fs) assertEquals(Status.OK, c.await(f).getStatus());
        assertEquals(50, c.getCampaign("sku").getCampaign().getHeld());
      }
      // a host name the certificate carries (localhost), and one it does not
      try (PintuanClient byName = PintuanClient.connect(tls("localhost:" + d.port, "ca.pem").build())) {
        assertEquals(Status.OK, byName.ping().getStatus());
      }
      PintuanException e = assertThrows(PintuanException.class,
          () -> PintuanClient.connect(tls(d.addr, "ca.pem").tlsServerName("shop.example").build()));
      assertTrue(e.getMessage().contains("certificate"), e.getMessage());
      // a client that trusts another CA does not talk to this daemon
      e = assertThrows(PintuanException.class, () -> PintuanClient.connect(tls(d.addr, "rogue.pem").build()));
      assertTrue(e.getMessage().contains("certificate"), e.getMessage());
      // a plaintext client is told, in its protocol, that this port speaks TLS
      try (PintuanClient plain = PintuanClient.connect(Config.builder(d.addr).failover(0, 0).build())) {
        Response r = plain.ping();
        assertEquals(Status.INVALID_ARGUMENT, r.getStatus());
        assertTrue(r.getDetail().contains("this port speaks TLS"), r.getDetail());
      }
    }
  }

  /** A read that timed out (an idle connection) leaves the TLS session usable. */
  @Test
  void idleLongerThanTheTimeout() throws Exception {
    try (Procs.Daemon d = start();
        PintuanClient c = PintuanClient.connect(tls(d.addr, "ca.pem").timeoutMs(300).build())) {
      assertEquals(Status.OK, c.ping().getStatus());
      Thread.sleep(1000);
      assertEquals(Status.OK, c.ping().getStatus());
      assertEquals(0, c.stats().failures);
    }
  }

  /** A client certificate whose CN names a key carries that key's role; EC and RSA keys (PKCS#8). */
  @Test
  void clientCertificates() throws Exception {
    try (Procs.Daemon d = start("--keys", dir.resolve("keys").toString(), "--tls-client-ca",
        dir.resolve("ca.pem").toString())) {
      try (PintuanClient admin = PintuanClient.connect(tls(d.addr, "ca.pem").keyFile(dir.resolve("ops.key")).build())) {
        assertEquals(Status.OK,
            admin.createCampaign(Requests.flashSale("sku", 100, 0, 600_000).build(), "c").getStatus());
      }
      for (String who : new String[] {"c-shop", "c-shop-rsa"}) {
        Config cfg = tls(d.addr, "ca.pem").tlsClientCert(dir.resolve(who + ".pem"), dir.resolve(who + ".key")).build();
        try (PintuanClient store = PintuanClient.connect(cfg)) {
          assertEquals(Status.OK, store.reserve("sku", "alice-" + who, 1, "s-" + who).getStatus(), who);
          assertEquals(Status.PERMISSION_DENIED,
              store.createCampaign(Requests.flashSale("other", 5, 0, 600_000).build(), "o").getStatus());
        }
      }
      try (PintuanClient anon = PintuanClient.connect(tls(d.addr, "ca.pem").build())) {
        assertEquals(Status.UNAUTHENTICATED, anon.reserve("sku", "bob", 1, "a-1").getStatus());
      }
      // a forged "shop" (another CA): no identity. Java's key manager does not
      // offer a certificate the daemon's CA list does not name (an anonymous
      // client then: UNAUTHENTICATED); offered, the handshake would fail.
      Config forged = tls(d.addr, "ca.pem").tlsClientCert(dir.resolve("c-forged.pem"), dir.resolve("c-forged.key"))
          .build();
      Status st;
      try (PintuanClient f = PintuanClient.connect(forged)) {
        st = f.reserve("sku", "mallory", 1, "f-1").getStatus();
      } catch (PintuanException x) {
        st = null;
      }
      assertTrue(st == null || st == Status.UNAUTHENTICATED, String.valueOf(st));
      try (PintuanClient admin = PintuanClient.connect(tls(d.addr, "ca.pem").keyFile(dir.resolve("ops.key")).build())) {
        assertEquals(2, admin.getCampaign("sku").getCampaign().getHeld()); // the two shops' alone
      }
      // a traditional EC key: refused, saying how to convert it
      PintuanException e = assertThrows(PintuanException.class, () -> PintuanClient.connect(
          tls(d.addr, "ca.pem").tlsClientCert(dir.resolve("c-shop.pem"), dir.resolve("c-shop.trad.key")).build()));
      assertTrue(e.getMessage().contains("openssl pkcs8 -topk8 -nocrypt"), e.getMessage());
    }
  }
}
