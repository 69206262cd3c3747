package io.bazelcache.storage.casblob;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.ZstdDecompressCtx;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;

/**
 * Reads a casblob file through positional reads on a channel (the channel's own position is never used,
 * so several streams may read one channel at once). Streams can start at any uncompressed offset: they
 * seek to the chunk holding it and skip into that chunk only.
 */
public final class CasBlobReader {
  private final FileChannel ch;
  private final CasBlobHeader header;

  private CasBlobReader(FileChannel ch, CasBlobHeader header) {
    this.ch = ch;
    this.header = header;
  }

  /** Parses and validates the header; {@code fileLength} (or -1 to skip the check) must match it. */
  public static CasBlobReader open(FileChannel ch, long fileLength) throws IOException {
    return new CasBlobReader(ch, CasBlobHeader.read(ch, fileLength));
  }

  public CasBlobHeader header() {
    return header;
  }

  public long uncompressedSize() {
    return header.uncompressedSize();
  }

  /**
   * The uncompressed bytes from {@code offset} to the end. A corrupt chunk surfaces as a
   * {@link CasBlobFormatException} from {@code read}. Closing the stream does not close the channel.
   */
  public InputStream openStream(long offset) {
    if (offset < 0 || offset > header.uncompressedSize()) {
      throw new IndexOutOfBoundsException(
          "offset " + offset + " outside [0, " + header.uncompressedSize() + "]");
    }
    return new ChunkStream(offset);
  }

  private final class ChunkStream extends InputStream {
    private final ZstdDecompressCtx ctx = new ZstdDecompressCtx();
    private long nextChunk;
    private byte[] buf;
    private byte[] src;
    private int pos;
    private int limit;
    private int skip;
    private boolean closed;

    ChunkStream(long offset) {
      int cs = header.chunkSize();
      this.nextChunk = offset / cs;
      this.skip = (int) (offset % cs);
    }

    private boolean fill() throws IOException {
      if (closed) {
        throw new IOException("stream closed");
      }
      while (pos >= limit) {
        if (nextChunk >= header.numChunks()) {
          return false;
        }
        decode(nextChunk++);
        pos = Math.min(skip, limit);
        skip = 0;
      }
      return true;
    }

    private void decode(long i) throws IOException {
      long start = header.offsets()[(int) i];
      long end = header.offsets()[(int) i + 1];
      int want = header.chunkLength(i);
      long maxCompressed =
          header.compression() == CasBlobHeader.COMPRESSION_IDENTITY ? want : Zstd.compressBound(want);
      long clen = end - start;
      if (clen <= 0 || clen > maxCompressed) {
        throw new CasBlobFormatException("chunk " + i + " has implausible length " + clen);
      }
      if (buf == null || buf.length < want) {
        buf = new byte[header.chunkSize() > header.uncompressedSize()
            ? (int) header.uncompressedSize() : header.chunkSize()];
      }
      if (header.compression() == CasBlobHeader.COMPRESSION_IDENTITY) {
        CasBlobHeader.readFully(ch, ByteBuffer.wrap(buf, 0, want), start);
        limit = want;
        return;
      }
      if (src == null || src.length < clen) {
        src = new byte[(int) Math.max(clen, Math.min(maxCompressed, 64 * 1024))];
      }
      CasBlobHeader.readFully(ch, ByteBuffer.wrap(src, 0, (int) clen), start);
      int n;
      try {
        n = ctx.decompressByteArray(buf, 0, want, src, 0, (int) clen);
      } catch (RuntimeException e) {
        throw new CasBlobFormatException("chunk " + i + " does not decompress: " + e.getMessage(), e);
      }
      if (n != want) {
        throw new CasBlobFormatException("chunk " + i + " decompressed to " + n + " bytes, want " + want);
      }
      limit = n;
    }

    @Override
    public int read() throws IOException {
      if (!fill()) {
        return -1;
      }
      return buf[pos++] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      if (len == 0) {
        return 0;
      }
      if (!fill()) {
        return -1;
      }
      int n = Math.min(len, limit - pos);
      System.arraycopy(buf, pos, b, off, n);
      pos += n;
      return n;
    }

    @Override
    public int available() {
      return limit - pos;
    }

    @Override
    public void close() {
      if (!closed) {
        closed = true;
        ctx.close();
      }
    }
  }
}
