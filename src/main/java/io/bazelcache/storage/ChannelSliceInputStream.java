package io.bazelcache.storage;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;

/**
 * Reads {@code count} bytes of a file channel from {@code position} with positional reads, so several
 * streams can share one channel. Closing the stream does not close the channel.
 */
public final class ChannelSliceInputStream extends InputStream {
  private final FileChannel ch;
  private long pos;
  private final long end;

  public ChannelSliceInputStream(FileChannel ch, long position, long count) {
    this.ch = ch;
    this.pos = position;
    this.end = position + count;
  }

  @Override
  public int read() throws IOException {
    byte[] one = new byte[1];
    int n = read(one, 0, 1);
    return n <= 0 ? -1 : one[0] & 0xff;
  }

  @Override
  public int read(byte[] b, int off, int len) throws IOException {
    if (len == 0) {
      return 0;
    }
    if (pos >= end) {
      return -1;
    }
    int want = (int) Math.min(len, end - pos);
    int n = ch.read(ByteBuffer.wrap(b, off, want), pos);
    if (n < 0) {
      throw new IOException("file ended at " + pos + ", before its expected end " + end);
    }
    pos += n;
    return n;
  }

  @Override
  public long skip(long n) {
    long k = Math.max(0, Math.min(n, end - pos));
    pos += k;
    return k;
  }

  @Override
  public int available() {
    return (int) Math.min(Integer.MAX_VALUE, end - pos);
  }
}
