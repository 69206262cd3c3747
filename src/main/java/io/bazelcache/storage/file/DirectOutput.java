package io.bazelcache.storage.file;

import com.sun.nio.file.ExtendedOpenOption;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * A {@link FileOutput} that writes with {@code O_DIRECT}: appended bytes are copied into aligned staging
 * buffers, and each full buffer goes to the disk in one aligned write that bypasses the page cache. Such a
 * write returns only when the disk has the bytes, so full buffers are written by {@link #WRITERS} while the
 * caller fills the next one; up to {@link #DEPTH} buffers are in use per output.
 *
 * <p>The first aligned block(s), which hold the reserved region, are kept back until {@link #writeReserved}
 * has filled it; the last block is padded with zeros and the file is then cut to its real length.
 */
final class DirectOutput extends FileOutput {
  /** Bytes per direct write. */
  static final int STAGING_BYTES = 1 << 20;

  /**
   * The largest reserved region: with the alignment (at most a quarter of a staging buffer, see
   * {@link #open}) its blocks fill at most half the first staging buffer.
   */
  static final int MAX_RESERVED = STAGING_BYTES / 4;

  /** Staging buffers per output: one being filled while the others are written. */
  static final int DEPTH = 3;

  /** The alignment the pooled staging buffers have; file systems asking for more get buffers of their own. */
  private static final int POOL_ALIGNMENT = 4096;

  /** Staging buffers kept ready, for a few concurrent uploads per core. */
  private static final BlockingQueue<ByteBuffer> POOL =
      new ArrayBlockingQueue<>(DEPTH * Math.max(8, 4 * Runtime.getRuntime().availableProcessors()));

  /** Threads that wait for the disk while the uploads' own threads go on filling buffers. */
  private static final ExecutorService WRITERS = Executors.newCachedThreadPool(r -> {
    Thread t = new Thread(r, "disk-direct-write");
    t.setDaemon(true);
    return t;
  });

  private final FileChannel direct;
  private final FileChannel plain;
  private final int align;
  private final int headLength; // the reserved region rounded up to the alignment
  private final ByteBuffer[] buffers = new ByteBuffer[DEPTH];
  private final CompletableFuture<?>[] writes = new CompletableFuture<?>[DEPTH]; // each buffer's write
  private int current;
  private ByteBuffer staging; // buffers[current]; null once closed
  private long stagingAt; // file position of staging[0]: a multiple of align
  private int fill;
  private ByteBuffer head; // the first headLength bytes, once staging has moved past them
  private long end;
  private boolean finished;

  private DirectOutput(FileChannel direct, FileChannel plain, int align, long reserved) {
    super(reserved);
    this.direct = direct;
    this.plain = plain;
    this.align = align;
    this.headLength = (int) roundUp(reserved, align);
    this.staging = buffer(0);
    this.fill = (int) reserved; // the reserved bytes are zeros in staging until writeReserved
    for (int i = 0; i < fill; i++) {
      staging.put(i, (byte) 0); // (a pooled buffer holds an earlier file's bytes)
    }
    this.end = reserved;
  }

  static DirectOutput open(Path file, FileChannel plain, long reserved) throws IOException {
    long blockSize;
    try {
      blockSize = Files.getFileStore(file).getBlockSize();
    } catch (UnsupportedOperationException e) {
      throw new IOException("no block size for " + file + ": " + e.getMessage(), e);
    }
    int align = (int) Math.max(POOL_ALIGNMENT, blockSize);
    if (Long.bitCount(align) != 1 || align > STAGING_BYTES / 4) {
      throw new IOException("unusual block size " + blockSize + " for " + file);
    }
    if (reserved > MAX_RESERVED) {
      throw new IllegalArgumentException(reserved + " reserved bytes: too many to stage for direct I/O");
    }
    FileChannel direct;
    try {
      direct = FileChannel.open(file, StandardOpenOption.WRITE, ExtendedOpenOption.DIRECT);
    } catch (UnsupportedOperationException e) {
      throw new IOException("no direct I/O for " + file + ": " + e.getMessage(), e);
    }
    return new DirectOutput(direct, plain, align, reserved);
  }

  @Override
  public void append(ByteBuffer[] srcs, int off, int len) throws IOException {
    ensureWritable();
    for (int i = off; i < off + len; i++) {
      ByteBuffer src = srcs[i];
      while (src.hasRemaining()) {
        int k = Math.min(src.remaining(), STAGING_BYTES - fill);
        staging.put(fill, src, src.position(), k);
        src.position(src.position() + k);
        fill += k;
        end += k;
        if (fill == STAGING_BYTES) {
          submitStaging();
        }
      }
    }
  }

  @Override
  public void writeReserved(ByteBuffer src) throws IOException {
    ensureWritable();
    checkReserved(src);
    ByteBuffer into = head != null ? head : staging; // without a head, staging still starts at position 0
    into.put(0, src, src.position(), src.remaining());
    src.position(src.limit());
  }

  @Override
  public long length() {
    return end;
  }

  @Override
  public void finish() throws IOException {
    if (finished) {
      return;
    }
    ensureWritable();
    int n = (int) roundUp(fill, align);
    for (int i = fill; i < n; i++) {
      staging.put(i, (byte) 0);
    }
    ByteBuffer last = staging.slice(0, n);
    long at = stagingAt; // 0: the reserved region is in staging, and the whole file goes in this one write
    awaitAll(true);
    write(last, at);
    if (head != null) {
      write(head.clear(), 0);
    }
    plain.truncate(end); // drop the padding of the last block
    finished = true;
  }

  /** Hands the full staging buffer to a writer (the head kept back the first time) and takes the next one. */
  private void submitStaging() throws IOException {
    int from = 0;
    if (stagingAt == 0 && headLength > 0) {
      head = ByteBuffer.allocateDirect(headLength + align).alignedSlice(align).limit(headLength).slice();
      head.put(0, staging, 0, headLength);
      from = headLength;
    }
    ByteBuffer b = staging.slice(from, STAGING_BYTES - from);
    long at = stagingAt + from;
    writes[current] = CompletableFuture.runAsync(() -> {
      try {
        write(b, at);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }, WRITERS);
    stagingAt += STAGING_BYTES;
    fill = 0;
    current = (current + 1) % DEPTH;
    await(current, true); // the buffer's previous write, if any
    staging = buffer(current);
  }

  private ByteBuffer buffer(int i) {
    if (buffers[i] == null) {
      ByteBuffer b = align == POOL_ALIGNMENT ? POOL.poll() : null;
      buffers[i] = b != null ? b : ByteBuffer.allocateDirect(STAGING_BYTES + align).alignedSlice(align)
          .limit(STAGING_BYTES).slice();
    }
    return buffers[i];
  }

  private void write(ByteBuffer b, long at) throws IOException {
    while (b.hasRemaining()) {
      at += direct.write(b, at);
    }
  }

  /** Waits for every write in flight; rethrows the first failure if {@code rethrow}. */
  private void awaitAll(boolean rethrow) throws IOException {
    IOException failure = null;
    for (int i = 0; i < DEPTH; i++) {
      try {
        await(i, true);
      } catch (IOException e) {
        failure = failure == null ? e : failure;
      }
    }
    if (failure != null && rethrow) {
      throw failure;
    }
  }

  /**
   * Waits, uninterruptibly (the buffer must not be reused while the disk reads it), for buffer {@code i}'s
   * write; rethrows its failure if {@code rethrow}.
   */
  private void await(int i, boolean rethrow) throws IOException {
    CompletableFuture<?> w = writes[i];
    if (w == null) {
      return;
    }
    writes[i] = null;
    boolean interrupted = false;
    try {
      while (true) {
        try {
          w.get();
          return;
        } catch (InterruptedException e) {
          interrupted = true;
        } catch (ExecutionException e) {
          if (!rethrow) {
            return;
          }
          Throwable c = e.getCause();
          if (c instanceof UncheckedIOException u) {
            throw u.getCause();
          }
          throw new IOException("direct write failed", c);
        }
      }
    } finally {
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }

  private void ensureWritable() {
    if (staging == null) {
      throw new IllegalStateException("direct output closed");
    }
    if (finished) {
      throw new IllegalStateException("direct output finished");
    }
  }

  @Override
  public void close() throws IOException {
    if (staging == null) {
      return;
    }
    staging = null;
    head = null;
    awaitAll(false); // no buffer goes back to the pool while the disk may still read it
    for (int i = 0; i < DEPTH; i++) {
      if (buffers[i] != null && align == POOL_ALIGNMENT) {
        POOL.offer(buffers[i].clear());
      }
      buffers[i] = null;
    }
    direct.close();
  }

  private static long roundUp(long n, int align) {
    return (n + align - 1) & -(long) align;
  }
}
