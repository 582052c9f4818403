package io.pintuan.client;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A client key file, as {@code pintuand --make-key NAME:ROLE --key-out FILE}
 * writes it: one line "NAME SECRET" (libpintuan's pintuan_read_key_file).
 */
public final class KeyFile {
  private final String name;
  private final String secret;

  public KeyFile(String name, String secret) {
    this.name = name;
    this.secret = secret;
  }

  public String name() {
    return name;
  }

  public String secret() {
    return secret;
  }

  /** Reads the file's first line: exactly two words, NAME and SECRET. */
  public static KeyFile read(Path path) {
    String line;
    try (BufferedReader r = Files.newBufferedReader(path, StandardCharsets.UTF_8)) {
      line = r.readLine();
    } catch (IOException e) {
      throw new PintuanException("key file " + path + ": " + e.getMessage(), e);
    }
    String[] w = line == null ? new String[0] : line.trim().split("\\s+");
    if (w.length != 2 || w[0].isEmpty())
      throw new PintuanException("key file " + path + ": want one line NAME SECRET (as pintuand --make-key writes)");
    if (w[0].length() >= 128 || w[1].length() >= 256)
      throw new PintuanException("key file " + path + ": name or secret too long");
    return new KeyFile(w[0], w[1]);
  }

  @Override
  public String toString() {
    return "KeyFile[" + name + "]"; // never the secret
  }
}
