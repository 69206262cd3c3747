package io.bazelcache.storage.casblob;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.ZstdCompressCtx;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;

/**
 * Streams uncompressed bytes into a casblob file. The size must be known up front (it fixes the header
 * length); chunks are compressed as they fill and written after a reserved header, and {@link #finish()}
 * writes the header with the chunk offsets at position 0. Not thread-safe. Closing releases the native
 * compressor; it does not close the channel.
 */
public final class CasBlobWriter implements Closeable {
  /** zstd level 1: fast, as bazel-remote uses by default. */
  public static final int DEFAULT_LEVEL = 1;

  private final FileChannel out;
  private final long size;
  private final int chunkSize;
  private final long[] offsets;
  private final byte[] chunk;
  private final byte[] compressed;
  private final ZstdCompressCtx ctx;
  private int filled;
  private int chunkIndex;
  private long accepted;
  private long filePos;
  private boolean finished;
  private boolean closed;

  /** A writer for {@code size} (&gt; 0) bytes with 1 MiB chunks at zstd level 1. */
  public CasBlobWriter(FileChannel out, long size) {
    this(out, size, CasBlobHeader.DEFAULT_CHUNK_SIZE, DEFAULT_LEVEL);
  }

  public CasBlobWriter(FileChannel out, long size, int chunkSize, int level) {
    if (size <= 0) {
      throw new IllegalArgumentException("casblob size must be positive (the empty blob is never stored): " + size);
    }
    if (chunkSize <= 0 || chunkSize > CasBlobHeader.MAX_CHUNK_SIZE) {
      throw new IllegalArgumentException("bad chunk size " + chunkSize);
    }
    long chunks = CasBlobHeader.numChunks(size, chunkSize);
    if (chunks + 1 > Integer.MAX_VALUE / 16) {
      throw new IllegalArgumentException("too many chunks for " + size + " bytes");
    }
    this.out = out;
    this.size = size;
    this.chunkSize = chunkSize;
    this.offsets = new long[(int) chunks + 1];
    int firstChunk = (int) Math.min(size, chunkSize);
    this.chunk = new byte[firstChunk];
    this.compressed = new byte[(int) Zstd.compressBound(firstChunk)];
    this.ctx = new ZstdCompressCtx();
    ctx.setLevel(level);
    ctx.setChecksum(false);
    ctx.setContentSize(true);
    this.filePos = CasBlobHeader.headerLength(size, chunkSize);
  }

  /** Number of uncompressed bytes accepted so far. */
  public long bytesAccepted() {
    return accepted;
  }

  /**
   * Consumes the remaining bytes of {@code data}.
   *
   * @throws IllegalStateException if this would exceed the announced size (checked before consuming)
   */
  public void write(ByteBuffer data) throws IOException {
    if (finished) {
      throw new IllegalStateException("casblob writer already finished");
    }
    if (accepted + data.remaining() > size) {
      throw new IllegalStateException(
          "casblob overflow: " + (accepted + data.remaining()) + " bytes, announced " + size);
    }
    while (data.hasRemaining()) {
      int want = currentChunkLength() - filled;
      int n = Math.min(want, data.remaining());
      data.get(chunk, filled, n);
      filled += n;
      accepted += n;
      if (filled == currentChunkLength()) {
        flushChunk();
      }
    }
  }

  public void write(byte[] data, int off, int len) throws IOException {
    write(ByteBuffer.wrap(data, off, len));
  }

  private int currentChunkLength() {
    return (int) Math.min(chunkSize, size - (long) chunkIndex * chunkSize);
  }

  private void flushChunk() throws IOException {
    int n;
    try {
      n = ctx.compressByteArray(compressed, 0, compressed.length, chunk, 0, filled);
    } catch (RuntimeException e) {
      throw new IOException("zstd compression failed", e);
    }
    offsets[chunkIndex] = filePos;
    ByteBuffer b = ByteBuffer.wrap(compressed, 0, n);
    while (b.hasRemaining()) {
      filePos += out.write(b, filePos);
    }
    chunkIndex++;
    filled = 0;
  }

  /**
   * Writes the header once all bytes have arrived and returns the total file length. The channel is not
   * forced; the caller decides about durability.
   *
   * @throws IllegalStateException if fewer bytes than announced were written
   */
  public long finish() throws IOException {
    if (finished) {
      return filePos;
    }
    if (accepted != size) {
      throw new IllegalStateException("casblob short: " + accepted + " bytes, announced " + size);
    }
    offsets[offsets.length - 1] = filePos;
    ByteBuffer header =
        new CasBlobHeader(size, CasBlobHeader.COMPRESSION_ZSTD, chunkSize, offsets).encode();
    long pos = 0;
    while (header.hasRemaining()) {
      pos += out.write(header, pos);
    }
    finished = true;
    return filePos;
  }

  @Override
  public void close() {
    if (!closed) {
      closed = true;
      ctx.close();
    }
  }
}
