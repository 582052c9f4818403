package io.pintuan.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.pintuan.v1.Status;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The README's example, exactly as written there: its ```java block saved
 * as App.java, its ```sh block (javac, then java) run against a real
 * daemon with the jar this build made.
 */
class ExampleTest {
  static String block(String readme, String lang, int from) {
    Matcher m = Pattern.compile("```" + lang + "\n(.*?)```", Pattern.DOTALL).matcher(readme);
    if (!m.find(from)) throw new AssertionError("README has no ```" + lang + " block");
    return m.group(1);
  }

  @Test
  void readmeExampleCompilesAndRuns() throws Exception {
    String readmePath = System.getenv("PINTUAN_JAVA_README");
    String jar = System.getenv("PINTUAN_JAR");
    assertTrue(readmePath != null && jar != null, "run through run-tests.sh (PINTUAN_JAVA_README, PINTUAN_JAR)");
    String readme = Files.readString(Path.of(readmePath), StandardCharsets.UTF_8);
    String app = block(readme, "java", 0);
    String build = block(readme, "sh", readme.indexOf("```java"));
    assertTrue(app.contains("public class App"), app);
    assertTrue(app.split("\n").length <= 11, "a ten-line example");
    assertTrue(build.contains("App 127.0.0.1:7733"), build);
    Path dir = Procs.tempDir("pintuan-java-example-");
    try (Procs.Daemon d = Procs.Daemon.start()) {
      try (PintuanClient c = PintuanClient.connect(d.addr)) {
        assertEquals(Status.OK, c.createCampaign(Requests.flashSale("sale-42", 10, 1, 600_000).build(), "c")
            .getStatus());
      }
      Files.writeString(dir.resolve("App.java"), app, StandardCharsets.UTF_8);
      // the block as written, with this build's jar directory and this daemon's address
      String script = "set -e\n" + build.replaceFirst("(?m)^J=\\S+", "J='" + Path.of(jar).getParent() + "'")
          .replace("127.0.0.1:7733", d.addr);
      String out = Procs.run(List.of("sh", "-c", script), dir);
      assertEquals("OK", out.trim(), out);
      out = Procs.run(List.of("sh", "-c", script), dir); // the same order again: its original answer
      assertEquals("OK", out.trim(), out);
      try (PintuanClient c = PintuanClient.connect(d.addr)) {
        assertEquals(1, c.getCampaign("sale-42").getCampaign().getHeld());
      }
    } finally {
      Procs.removeTree(dir);
    }
  }
}
