package io.bazelcache.storage.casblob;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.ZstdCompressCtx;
import io.bazelcache.storage.file.FileOutput;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;

/**
 * Streams uncompressed bytes into a casblob file. The size must be known up front (it fixes the header
 * length); chunks are compressed as they fill and written after a reserved header, and {@link #finish()}
 * writes the header with the chunk offsets at position 0. Not thread-safe. Closing releases the native
 * compressor; it does not close the channel.
 *
 * <p>Chunks are gathered and compressed in direct memory, so the compressed bytes go to the file without
 * the JDK's copy of a heap buffer into a temporary direct one. The compressor and its two buffers are
 * pooled ({@link #finish()} or {@link #close()} return them): a native zstd context and 2 MiB of direct
 * memory cost more to create than a small blob takes to compress.
 */
public final class CasBlobWriter implements Closeable {
  /** zstd level 1: fast, as bazel-remote uses by default. */
  public static final int DEFAULT_LEVEL = 1;

  private final FileOutput out;
  private final long size;
  private final int chunkSize;
  private final long[] offsets;
  private final boolean pooled;
  private Resources res; // null once returned
  private boolean probed; // the current chunk's first PROBE_BYTES were tried
  private ByteBuffer raw; // while the current chunk is stored raw: its frame and block headers' space
  private int rawDone; // bytes of the current raw chunk emitted
  private final java.util.List<ByteBuffer> gathered = new java.util.ArrayList<>();
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
    this(FileOutput.buffered(out, checkedHeaderLength(size, chunkSize)), size, chunkSize, level);
  }

  /**
   * A writer for {@code size} (&gt; 0) bytes with 1 MiB chunks at zstd level 1, into {@code out}, whose
   * reserved region must be {@link #headerLength(long) headerLength(size)} bytes (the header goes there).
   * Closing the writer leaves {@code out} open.
   */
  public CasBlobWriter(FileOutput out, long size) {
    this(out, size, CasBlobHeader.DEFAULT_CHUNK_SIZE, DEFAULT_LEVEL);
  }

  /** The length of the header of a {@code size}-byte blob in 1 MiB chunks: what a {@link FileOutput} reserves. */
  public static long headerLength(long size) {
    return checkedHeaderLength(size, CasBlobHeader.DEFAULT_CHUNK_SIZE);
  }

  private static long checkedHeaderLength(long size, int chunkSize) {
    if (size <= 0 || chunkSize <= 0) {
      return 0; // the constructor reports it
    }
    return CasBlobHeader.headerLength(size, chunkSize);
  }

  private CasBlobWriter(FileOutput out, long size, int chunkSize, int level) {
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
    this.pooled = chunkSize == CasBlobHeader.DEFAULT_CHUNK_SIZE && level == DEFAULT_LEVEL;
    Resources r = pooled ? POOL.poll() : null;
    this.res = r != null ? r : new Resources((int) Math.min(size, chunkSize), level);
    this.filePos = CasBlobHeader.headerLength(size, chunkSize);
    if (out.length() != filePos) {
      throw new IllegalArgumentException("the output reserves " + out.length() + " bytes; the header takes " + filePos);
    }
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
    write(new ByteBuffer[] {data});
  }

  /**
   * Consumes the remaining bytes of every piece, in order. Bytes of a chunk stored raw go to the file in
   * one gathering write straight from the pieces; they are not retained after this returns.
   *
   * @throws IllegalStateException if this would exceed the announced size (checked before consuming)
   */
  public void write(ByteBuffer[] pieces) throws IOException {
    if (finished || closed) {
      throw new IllegalStateException("casblob writer already " + (finished ? "finished" : "closed"));
    }
    long n = 0;
    for (ByteBuffer b : pieces) {
      n += b.remaining();
    }
    if (accepted + n > size) {
      throw new IllegalStateException("casblob overflow: " + (accepted + n) + " bytes, announced " + size);
    }
    for (ByteBuffer data : pieces) {
      while (data.hasRemaining()) {
        int len = currentChunkLength();
        if (raw != null) {
          int k = Math.min(len - rawDone, data.remaining());
          emitRaw(data.slice(data.position(), k));
          data.position(data.position() + k);
          accepted += k;
          if (rawDone == len) {
            flushGathered();
            nextChunk();
          }
          continue;
        }
        // Gather the chunk (only its first PROBE_BYTES while undecided) in the direct chunk buffer.
        int target = len > PROBE_BYTES && !probed ? PROBE_BYTES : len;
        int k = Math.min(target - filled, data.remaining());
        res.chunk.put(filled, data, data.position(), k);
        data.position(data.position() + k);
        filled += k;
        accepted += k;
        if (filled == len) {
          flushChunk();
        } else if (filled == target) {
          probe(len);
        }
      }
    }
    flushGathered();
  }

  public void write(byte[] data, int off, int len) throws IOException {
    write(ByteBuffer.wrap(data, off, len));
  }

  private int currentChunkLength() {
    return (int) Math.min(chunkSize, size - (long) chunkIndex * chunkSize);
  }

  /**
   * Decides how a chunk longer than {@link #PROBE_BYTES} is stored, from its first {@code PROBE_BYTES}:
   * if zstd cannot take at least 1/32 off them, the chunk is written as a zstd frame of raw blocks. zstd
   * itself would store such data raw too (its blocks fall back to raw when compression does not pay),
   * but only after spending most of a compression's time finding that out; for archives, images and
   * other already-compressed blobs that is most of the CPU time an upload costs.
   */
  private void probe(int len) throws IOException {
    probed = true;
    int n = compress(PROBE_BYTES);
    if (n < PROBE_BYTES - PROBE_BYTES / 32) {
      return; // compressible: gather the whole chunk and compress it
    }
    offsets[chunkIndex] = filePos;
    raw = res.headers.clear();
    rawDone = 0;
    ByteBuffer h = raw.slice(raw.position(), RAW_FRAME_HEADER_MAX).order(ByteOrder.LITTLE_ENDIAN);
    h.putInt(ZSTD_MAGIC);
    if (len < 65536 + 256) { // (len > PROBE_BYTES: never the 1-byte form)
      h.put((byte) 0x60).putShort((short) (len - 256)); // single segment, 2-byte content size
    } else {
      h.put((byte) 0xA0).putInt(len); // single segment, 4-byte content size
    }
    gather(raw.slice(raw.position(), h.position()));
    raw.position(raw.position() + h.position());
    emitRaw(res.chunk.slice(0, filled));
    filled = 0;
  }

  /** Appends chunk bytes to the raw frame being gathered, with a block header at every block start. */
  private void emitRaw(ByteBuffer bytes) throws IOException {
    int len = currentChunkLength();
    while (bytes.hasRemaining()) {
      int inBlock = rawDone % RAW_BLOCK_SIZE;
      if (inBlock == 0) {
        int block = Math.min(RAW_BLOCK_SIZE, len - rawDone);
        boolean last = rawDone + block == len;
        int header = block << 3 | (last ? 1 : 0); // block type 0: raw
        if (raw.remaining() < 3) { // a chunk of MAX_CHUNK_SIZE has 512 blocks: 1.5 KiB of headers
          throw new IllegalStateException("raw block headers overflow");
        }
        int at = raw.position();
        raw.put((byte) header).put((byte) (header >>> 8)).put((byte) (header >>> 16));
        gather(raw.slice(at, 3));
      }
      int k = Math.min(RAW_BLOCK_SIZE - inBlock, bytes.remaining());
      gather(bytes.slice(bytes.position(), k));
      bytes.position(bytes.position() + k);
      rawDone += k;
    }
  }

  private void gather(ByteBuffer b) throws IOException {
    gathered.add(b);
    if (gathered.size() >= GATHER_MAX) {
      flushGathered();
    }
  }

  /** Writes what {@link #emitRaw} gathered, in one gathering write at the end of the file so far. */
  private void flushGathered() throws IOException {
    if (gathered.isEmpty()) {
      return;
    }
    ByteBuffer[] srcs = gathered.toArray(new ByteBuffer[0]);
    gathered.clear();
    out.append(srcs, 0, srcs.length);
    filePos = out.length();
  }

  private int compress(int n) throws IOException {
    try {
      return res.ctx.compressDirectByteBuffer(res.out, 0, res.out.capacity(), res.chunk, 0, n);
    } catch (RuntimeException e) {
      throw new IOException("zstd compression failed", e);
    }
  }

  private void flushChunk() throws IOException {
    int n = compress(filled);
    offsets[chunkIndex] = filePos;
    out.append(res.out.slice(0, n));
    filePos = out.length();
    nextChunk();
  }

  private void nextChunk() {
    chunkIndex++;
    filled = 0;
    probed = false;
    raw = null;
  }

  /**
   * Writes the header once all bytes have arrived, finishes the output and returns the total file length.
   * The file is not forced; the caller decides about durability.
   *
   * @throws IllegalStateException if fewer bytes than announced were written
   */
  public long finish() throws IOException {
    if (finished) {
      return filePos;
    }
    if (closed) {
      throw new IllegalStateException("casblob writer already closed");
    }
    if (accepted != size) {
      throw new IllegalStateException("casblob short: " + accepted + " bytes, announced " + size);
    }
    offsets[offsets.length - 1] = filePos;
    ByteBuffer header =
        new CasBlobHeader(size, CasBlobHeader.COMPRESSION_ZSTD, chunkSize, offsets).encode();
    out.writeReserved(header);
    out.finish();
    finished = true;
    release();
    return filePos;
  }

  @Override
  public void close() {
    if (!closed) {
      closed = true;
      release();
    }
  }

  private void release() {
    Resources r = res;
    if (r == null) {
      return;
    }
    res = null;
    raw = null;
    if (!pooled || r.chunk.capacity() != CasBlobHeader.DEFAULT_CHUNK_SIZE || !POOL.offer(r)) {
      r.ctx.close(); // the direct buffers go with the garbage collector
    }
  }

  /** How much of a chunk is compressed to decide whether the chunk is worth compressing. */
  static final int PROBE_BYTES = 32 * 1024;

  /** zstd's largest block (Block_Maximum_Size): a raw frame is a run of raw blocks of this size. */
  private static final int RAW_BLOCK_SIZE = 128 * 1024;

  private static final int ZSTD_MAGIC = 0xFD2FB528;

  /** Magic, frame header descriptor, and at most a 4-byte content size (no window descriptor). */
  private static final int RAW_FRAME_HEADER_MAX = 4 + 1 + 4;

  /** Buffers gathered before they are written. */
  private static final int GATHER_MAX = 512;

  /** Writers kept ready: a few per core, for concurrent uploads. */
  private static final java.util.concurrent.BlockingQueue<Resources> POOL =
      new java.util.concurrent.ArrayBlockingQueue<>(Math.max(8, 4 * Runtime.getRuntime().availableProcessors()));

  /** A zstd context with its settings, a direct chunk buffer and a direct buffer for its compressed form. */
  private static final class Resources {
    final ZstdCompressCtx ctx = new ZstdCompressCtx();
    final ByteBuffer chunk;
    final ByteBuffer out;
    final ByteBuffer headers = ByteBuffer.allocateDirect(8 * 1024); // raw frames' frame and block headers

    Resources(int chunkCapacity, int level) {
      ctx.setLevel(level);
      ctx.setChecksum(false);
      ctx.setContentSize(true);
      chunk = ByteBuffer.allocateDirect(chunkCapacity);
      out = ByteBuffer.allocateDirect((int) Zstd.compressBound(chunkCapacity));
    }
  }
}
