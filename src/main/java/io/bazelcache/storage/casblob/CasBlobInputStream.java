package io.bazelcache.storage.casblob;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.ZstdDecompressCtx;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;

/**
 * Decodes a casblob arriving as a stream (e.g. an object downloaded from S3) into its uncompressed
 * bytes, checking the header, every chunk offset against the bytes actually seen, every chunk's
 * decompressed length, and that nothing follows the last chunk. Any inconsistency is a
 * {@link CasBlobFormatException}. The caller still hashes the output against the key.
 */
public final class CasBlobInputStream extends InputStream {
  private final InputStream in;
  private final ZstdDecompressCtx ctx = new ZstdDecompressCtx();
  private CasBlobHeader header;
  private long position; // bytes of the casblob consumed so far
  private int nextChunk;
  private byte[] buf = new byte[0];
  private byte[] src = new byte[0];
  private int pos;
  private int limit;
  private boolean closed;

  public CasBlobInputStream(InputStream in) {
    this.in = in;
  }

  /** The header, once the first byte has been read (or after {@link #readHeader()}). */
  public CasBlobHeader readHeader() throws IOException {
    if (header != null) {
      return header;
    }
    byte[] fixed = readExactly(CasBlobHeader.FIXED_BYTES);
    long numOffsets = CasBlobHeader.checkedNumOffsets(ByteBuffer.wrap(fixed));
    byte[] table = readExactly((int) (8 * numOffsets));
    byte[] all = new byte[fixed.length + table.length];
    System.arraycopy(fixed, 0, all, 0, fixed.length);
    System.arraycopy(table, 0, all, fixed.length, table.length);
    header = CasBlobHeader.parse(ByteBuffer.wrap(all), -1);
    return header;
  }

  private byte[] readExactly(int n) throws IOException {
    byte[] b = in.readNBytes(n);
    if (b.length != n) {
      throw new CasBlobFormatException("casblob stream ended at byte " + (position + b.length));
    }
    position += n;
    return b;
  }

  private boolean fill() throws IOException {
    if (closed) {
      throw new IOException("stream closed");
    }
    readHeader();
    while (pos >= limit) {
      if (nextChunk >= header.numChunks()) {
        if (in.read() != -1) {
          throw new CasBlobFormatException("bytes after the last chunk");
        }
        return false;
      }
      decodeChunk(nextChunk++);
    }
    return true;
  }

  private void decodeChunk(int i) throws IOException {
    long[] offsets = header.offsets();
    if (offsets[i] != position) {
      throw new CasBlobFormatException("chunk " + i + " at " + position + ", header says " + offsets[i]);
    }
    int want = header.chunkLength(i);
    long clen = offsets[i + 1] - offsets[i];
    long max = header.compression() == CasBlobHeader.COMPRESSION_IDENTITY ? want : Zstd.compressBound(want);
    if (clen <= 0 || clen > max) {
      throw new CasBlobFormatException("chunk " + i + " has implausible length " + clen);
    }
    if (buf.length < want) {
      buf = new byte[want];
    }
    if (header.compression() == CasBlobHeader.COMPRESSION_IDENTITY) {
      if (clen != want) {
        throw new CasBlobFormatException("identity chunk " + i + " has " + clen + " bytes, want " + want);
      }
      if (in.readNBytes(buf, 0, want) != want) {
        throw new CasBlobFormatException("casblob stream ended in chunk " + i);
      }
    } else {
      if (src.length < clen) {
        src = new byte[(int) clen];
      }
      if (in.readNBytes(src, 0, (int) clen) != clen) {
        throw new CasBlobFormatException("casblob stream ended in chunk " + i);
      }
      int n;
      try {
        n = ctx.decompressByteArray(buf, 0, want, src, 0, (int) clen);
      } catch (RuntimeException e) {
        throw new CasBlobFormatException("chunk " + i + " does not decompress: " + e.getMessage(), e);
      }
      if (n != want) {
        throw new CasBlobFormatException("chunk " + i + " decompressed to " + n + " bytes, want " + want);
      }
    }
    position += clen;
    pos = 0;
    limit = want;
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
  public void close() throws IOException {
    if (!closed) {
      closed = true;
      ctx.close();
      in.close();
    }
  }
}
