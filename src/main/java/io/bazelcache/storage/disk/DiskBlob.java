package io.bazelcache.storage.disk;

import io.bazelcache.storage.Blob;
import io.bazelcache.storage.FileSlice;
import io.bazelcache.storage.casblob.CasBlobReader;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.util.Optional;

/** A disk entry held open: eviction or replacement of its file does not disturb a reader. */
final class DiskBlob implements Blob {
  private final FileChannel ch;
  private final long size;
  private final long fileLength;
  private final CasBlobReader casblob; // null for raw files

  DiskBlob(FileChannel ch, long size, long fileLength, CasBlobReader casblob) {
    this.ch = ch;
    this.size = size;
    this.fileLength = fileLength;
    this.casblob = casblob;
  }

  @Override
  public long size() {
    return size;
  }

  @Override
  public InputStream openStream(long offset) throws IOException {
    if (offset < 0 || offset > size) {
      throw new IndexOutOfBoundsException("offset " + offset + " outside [0, " + size + "]");
    }
    if (casblob != null) {
      return casblob.openStream(offset);
    }
    return new ChannelInputStream(ch, offset, size);
  }

  @Override
  public Optional<FileSlice> rawFile() {
    return casblob == null ? Optional.of(new FileSlice(ch, 0, size)) : Optional.empty();
  }

  @Override
  public Optional<FileSlice> zstdFile() {
    return casblob != null ? Optional.of(new FileSlice(ch, 0, fileLength)) : Optional.empty();
  }

  @Override
  public void close() {
    try {
      ch.close();
    } catch (IOException ignored) {
      // read-only channel: nothing to lose
    }
  }

  /** Positional reads of [position, end) of a channel; never moves the channel's own position. */
  static final class ChannelInputStream extends InputStream {
    private final FileChannel ch;
    private final long end;
    private long pos;

    ChannelInputStream(FileChannel ch, long start, long end) {
      this.ch = ch;
      this.pos = start;
      this.end = end;
    }

    @Override
    public int read() throws IOException {
      byte[] one = new byte[1];
      int n = read(one, 0, 1);
      return n < 0 ? -1 : one[0] & 0xff;
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
        throw new IOException("file ended at " + pos + ", before its size " + end);
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
}
