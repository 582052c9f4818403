package io.pintuan.client;

import java.io.IOException;
import java.io.InputStream;

/**
 * The bytes read from a connection and the frames in them (a 4-byte
 * big-endian length, then one Response). A read that times out consumes
 * nothing, so a wait may end and begin again without losing the framing.
 */
final class FrameReader {
  byte[] buf = new byte[64 << 10];
  int off; // the first byte not consumed
  int len; // the end of what was read
  int frameOff; // where the frame next() returned begins

  /** Reads what the socket has (blocking up to its timeout): bytes read, or -1 at its end. */
  int fill(InputStream in) throws IOException {
    if (off == len) off = len = 0;
    if (off > buf.length / 2) compact();
    if (len == buf.length) {
      if (off > 0) compact();
      else grow(buf.length * 2);
    }
    int n = in.read(buf, len, buf.length - len);
    if (n > 0) len += n;
    return n;
  }

  /** The next whole frame's length (its bytes at frameOff; consumed), or -1: read more. */
  int next(int max, boolean tls) throws IOException {
    int avail = len - off;
    if (avail < 4) return -1;
    int n = ((buf[off] & 0xff) << 24) | ((buf[off + 1] & 0xff) << 16) | ((buf[off + 2] & 0xff) << 8)
        | (buf[off + 3] & 0xff);
    if (n < 0 || n > max) {
      if (buf[off] == 'H' && buf[off + 1] == 'T' && buf[off + 2] == 'T' && buf[off + 3] == 'P')
        throw new IOException("the peer answered in HTTP: this is an HTTP port (pintuand's admin port?), "
            + "not pintuand's protocol port");
      if (!tls && buf[off] == 0x15 && buf[off + 1] == 0x03)
        throw new IOException("the peer answered with a TLS alert: it speaks TLS (connect with TLS: "
            + "Config.Builder.tls)");
      throw new IOException("reply frame of " + Integer.toUnsignedString(n) + " bytes is too large");
    }
    if (avail - 4 < n) {
      if (buf.length - off < 4 + n) {
        compact();
        if (buf.length < 4 + n) grow(Math.max(4 + n, buf.length * 2));
      }
      return -1;
    }
    frameOff = off + 4;
    off += 4 + n;
    return n;
  }

  private void compact() {
    System.arraycopy(buf, off, buf, 0, len - off);
    len -= off;
    off = 0;
  }

  private void grow(int size) {
    byte[] b = new byte[size];
    System.arraycopy(buf, 0, b, 0, len);
    buf = b;
  }
}
