package io.bazelcache.storage;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * An upload in progress. Bytes are the uncompressed content. Nothing is visible to readers until
 * {@link #commit()} succeeds; {@link #close()} without a commit discards everything.
 */
public interface BlobWriter extends Closeable {

  BlobKey key();

  /** The size announced when the upload started. */
  long expectedSize();

  /**
   * Appends the remaining bytes of {@code data}.
   *
   * @throws BlobSizeMismatchException if more bytes arrive than announced
   */
  void write(ByteBuffer data) throws IOException;

  /**
   * Appends the remaining bytes of each buffer, in order, as {@link #write(ByteBuffer)} of each would;
   * writers may do it with fewer system calls (a message received in many pieces).
   */
  default void write(java.util.List<ByteBuffer> data) throws IOException {
    for (ByteBuffer b : data) {
      write(b);
    }
  }

  /**
   * Like {@link #write(java.util.List)}, but the writer may go on using the buffers after it returns:
   * it runs {@code release} exactly once (on any thread, whether the write succeeds or fails) when it
   * no longer needs them, at the latest when {@link #commit()} or {@link #close()} returns. Until then
   * the caller must leave the buffers' contents alone. The default writes, then releases.
   */
  default void write(java.util.List<ByteBuffer> data, Runnable release) throws IOException {
    try {
      write(data);
    } finally {
      release.run();
    }
  }

  /** Number of bytes accepted so far. */
  long bytesWritten();

  /**
   * Checks the size and, for CAS, the digest; makes the bytes durable (fsync) and then visible
   * atomically. After a failed commit nothing is stored.
   *
   * @throws BlobSizeMismatchException if fewer bytes arrived than announced
   * @throws DigestMismatchException if CAS content does not hash to its key
   */
  void commit() throws IOException;

  /** Discards the upload unless it was committed. Idempotent, never throws. */
  @Override
  void close();
}
