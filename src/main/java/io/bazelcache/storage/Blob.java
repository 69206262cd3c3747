package io.bazelcache.storage;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.util.Optional;

/**
 * An entry found by {@link BlobStore#get}. Its bytes have been verified against its key (CAS) by the
 * store that returned it, and it stays readable until closed even if the store evicts it meanwhile.
 * Close it once the transfer is over.
 */
public interface Blob extends Closeable {

  /** Logical (uncompressed) size in bytes. */
  long size();

  /** The uncompressed content from {@code offset} (0 &lt;= offset &lt;= size) to the end. */
  InputStream openStream(long offset) throws IOException;

  /** The uncompressed content as a file region, when stored that way, for zero-copy transfer. */
  default Optional<FileSlice> rawFile() {
    return Optional.empty();
  }

  /**
   * The content as a valid zstd stream (possibly several frames, possibly with skippable frames), when
   * stored that way, so a client that accepts zstd can be sent the stored bytes without recompression.
   */
  default Optional<FileSlice> zstdFile() {
    return Optional.empty();
  }

  /** Reads the whole content into memory; only for small entries (action results, trees). */
  default byte[] readAllBytes() throws IOException {
    if (size() > Integer.MAX_VALUE - 16) {
      throw new IOException("blob of " + size() + " bytes is too large to read into memory");
    }
    try (InputStream in = openStream(0)) {
      return in.readAllBytes();
    }
  }

  @Override
  void close();
}
