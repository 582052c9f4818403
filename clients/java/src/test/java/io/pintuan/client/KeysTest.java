package io.pintuan.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.pintuan.v1.Response;
import io.pintuan.v1.Status;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Keys and roles (README "Security"): Hello with a key file's name and secret. */
class KeysTest {
  static Path dir;
  static Path ops;
  static Path shop;
  static Path viewer;
  static Procs.Daemon d;

  @BeforeAll
  static void up() throws Exception {
    dir = Procs.tempDir("pintuan-java-keys-");
    ops = Procs.makeKey(dir, "ops", "admin");
    shop = Procs.makeKey(dir, "shop", "storefront");
    viewer = Procs.makeKey(dir, "viewer", "reader");
    d = Procs.Daemon.start("--keys", dir.resolve("keys").toString());
  }

  @AfterAll
  static void down() {
    if (d != null) d.close();
    Procs.removeTree(dir);
  }

  @Test
  void keyFileFormat() throws Exception {
    KeyFile k = KeyFile.read(shop);
    assertEquals("shop", k.name());
    assertTrue(k.secret().length() > 16);
    assertTrue(!k.toString().contains(k.secret()));
    Path bad = dir.resolve("bad.key");
    Files.writeString(bad, "only-one-word\n", StandardCharsets.UTF_8);
    PintuanException e = assertThrows(PintuanException.class, () -> KeyFile.read(bad));
    assertTrue(e.getMessage().contains("NAME SECRET"), e.getMessage());
    assertThrows(PintuanException.class, () -> KeyFile.read(dir.resolve("missing.key")));
  }

  @Test
  void rolesNest() {
    try (PintuanClient anon = PintuanClient.connect(d.addr)) {
      assertEquals(Status.OK, anon.ping().getStatus()); // Ping needs no key
      assertEquals(Status.UNAUTHENTICATED, anon.getCampaign("k").getStatus());
    }
    try (PintuanClient admin = PintuanClient.connect(Config.builder(d.addr).keyFile(ops).build())) {
      assertEquals(Status.OK,
          admin.createCampaign(Requests.flashSale("k", 10, 1, 600_000).build(), "k-create").getStatus());
    }
    try (PintuanClient reader = PintuanClient.connect(d.addr)) {
      Response h = reader.hello(viewer);
      assertEquals(Status.OK, h.getStatus());
      assertEquals("reader", h.getHello().getKeyRole());
      assertEquals(Status.OK, reader.getCampaign("k").getStatus()); // a reader reads
      assertEquals(Status.PERMISSION_DENIED, reader.reserve("k", "ann", 1, "r-1").getStatus());
      assertEquals(Status.PERMISSION_DENIED, reader.endCampaign("k", "r-end").getStatus());
    }
    // a pool: every connection says Hello
    try (PintuanClient store = PintuanClient.connect(Config.builder(d.addr).keyFile(shop).connections(4).build())) {
      for (int i = 0; i < 8; i++) assertEquals(Status.OK, store.reserve("k", "u" + i, 1, "s-" + i).getStatus());
      assertEquals(Status.PERMISSION_DENIED,
          store.createCampaign(Requests.flashSale("k2", 10, 1, 600_000).build(), "k2").getStatus());
    }
  }

  @Test
  void aWrongKeyIsRefused() {
    PintuanException e = assertThrows(PintuanException.class,
        () -> PintuanClient.connect(Config.builder(d.addr).key("shop", "not-the-secret").failover(0, 0).build()));
    assertTrue(e.getMessage().contains("UNAUTHENTICATED"), e.getMessage());
  }
}
