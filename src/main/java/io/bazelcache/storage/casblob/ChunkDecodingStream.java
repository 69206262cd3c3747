package io.bazelcache.storage.casblob;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.ZstdDecompressCtx;
import java.io.IOException;
import java.io.InputStream;

/**
 * What the two casblob decoders share: checking a chunk's stored length against the header, turning the
 * stored bytes into the chunk's uncompressed bytes, and serving reads from the decoded chunk. Subclasses only
 * say where the stored bytes come from ({@link CasBlobReader}: positional reads of a file;
 * {@link CasBlobInputStream}: a sequential stream) and fill {@link #buf} via {@link #fill()}.
 */
abstract class ChunkDecodingStream extends InputStream {
  private final ZstdDecompressCtx ctx = new ZstdDecompressCtx();
  /** The current chunk's uncompressed bytes are {@code buf[pos, limit)}. */
  protected byte[] buf = new byte[0];
  /** Stored (compressed) bytes of the chunk being decoded. */
  protected byte[] src = new byte[0];
  protected int pos;
  protected int limit;
  protected boolean closed;

  /** Makes {@code buf[pos, limit)} non-empty, or returns false at the end of the blob. */
  protected abstract boolean fill() throws IOException;

  /** The stored length of chunk {@code i}, checked against what its uncompressed length allows. */
  protected static long storedLength(CasBlobHeader header, long i) throws CasBlobFormatException {
    long[] offsets = header.offsets();
    long clen = offsets[(int) i + 1] - offsets[(int) i];
    int want = header.chunkLength(i);
    long max = header.compression() == CasBlobHeader.COMPRESSION_IDENTITY ? want : Zstd.compressBound(want);
    if (clen <= 0 || clen > max) {
      throw new CasBlobFormatException("chunk " + i + " has implausible length " + clen);
    }
    if (header.compression() == CasBlobHeader.COMPRESSION_IDENTITY && clen != want) {
      throw new CasBlobFormatException("identity chunk " + i + " has " + clen + " bytes, want " + want);
    }
    return clen;
  }

  /** Where chunk {@code i}'s stored bytes must be read to: {@link #buf} for identity chunks, else {@link #src}. */
  protected byte[] storedBuffer(CasBlobHeader header, int want, long clen) {
    if (buf.length < want) {
      buf = new byte[want];
    }
    if (header.compression() == CasBlobHeader.COMPRESSION_IDENTITY) {
      return buf;
    }
    if (src.length < clen) {
      src = new byte[(int) clen];
    }
    return src;
  }

  /** After the stored bytes are in {@link #storedBuffer}: makes {@code buf[0, want)} the chunk's bytes. */
  protected void decoded(CasBlobHeader header, long i, int want, long clen) throws CasBlobFormatException {
    if (header.compression() != CasBlobHeader.COMPRESSION_IDENTITY) {
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
  public int available() {
    return limit - pos;
  }

  /** Releases the zstd context; idempotent through {@link #closed}, which subclasses check first. */
  protected void closeDecoder() {
    ctx.close();
  }
}
