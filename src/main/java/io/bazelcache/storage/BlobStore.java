package io.bazelcache.storage;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

/**
 * The one storage interface. Local disk, S3, read-through, existence caching, completeness checking
 * and metrics are all implementations, most of them decorators of another {@code BlobStore}, so the
 * transports (HTTP, gRPC) see a single store. Methods block; call them from virtual threads.
 *
 * <p>Every implementation treats the empty CAS blob as present, and never returns a {@link Blob} whose
 * content does not match its key.
 */
public interface BlobStore extends Closeable {

  /** The entry, or {@code null} if absent (or found corrupt, in which case it is dropped). */
  Blob get(BlobKey key) throws IOException;

  /** Whether {@link #get} would probably find the entry. */
  boolean contains(BlobKey key) throws IOException;

  /** The keys among {@code keys} that are absent, in their given order. */
  default List<BlobKey> findMissing(Collection<BlobKey> keys) throws IOException {
    List<BlobKey> missing = new ArrayList<>();
    for (BlobKey k : keys) {
      if (!contains(k)) {
        missing.add(k);
      }
    }
    return missing;
  }

  /**
   * The indexes (ascending) of the batch's CAS digests that {@link #findMissing(Collection)} would
   * report missing for their keys; an index per digest, so a digest asked twice is reported twice. The
   * default makes the keys and asks {@link #findMissing(Collection)}; stores that can look hashes up as
   * numbers answer without making them.
   */
  default int[] findMissing(DigestBatch batch) throws IOException {
    int[] all = new int[batch.size()];
    for (int i = 0; i < all.length; i++) {
      all[i] = i;
    }
    return missingAmong(batch, all, findMissing(batch.keys(all)));
  }

  /**
   * Which of the batch's digests at {@code asked} (ascending) are in {@code missing}: the answer of a
   * {@link #findMissing(Collection)} for their keys, in the order asked.
   */
  static int[] missingAmong(DigestBatch batch, int[] asked, List<BlobKey> missing) {
    if (missing.isEmpty()) {
      return new int[0];
    }
    java.util.Set<BlobKey> absent = new java.util.HashSet<>(missing);
    int[] out = new int[asked.length];
    int n = 0;
    for (int i : asked) {
      if (absent.contains(batch.key(i))) {
        out[n++] = i;
      }
    }
    return java.util.Arrays.copyOf(out, n);
  }


  /**
   * Starts an upload of {@code size} uncompressed bytes, reserving space for it.
   *
   * @throws BlobTooLargeException if the entry can never fit (larger than the cache or max_blob_size)
   * @throws InsufficientStorageException if there is no room now (HTTP 507, gRPC RESOURCE_EXHAUSTED)
   */
  BlobWriter newWriter(BlobKey key, long size) throws IOException;

  /** Stores exactly {@code size} bytes read from {@code in}; see {@link BlobWriter#commit()}. */
  default void put(BlobKey key, long size, InputStream in) throws IOException {
    try (BlobWriter w = newWriter(key, size)) {
      byte[] buf = new byte[(int) Math.min(Math.max(size, 1), 256 * 1024)];
      ByteBuffer bb = ByteBuffer.wrap(buf);
      int n;
      while ((n = in.read(buf)) > 0) {
        bb.clear().limit(n);
        w.write(bb);
      }
      w.commit();
    }
  }

  /**
   * Stores a non-empty CAS blob given in the casblob format (as an S3 backend in zstd mode holds it),
   * checking it like any upload: a malformed casblob, or content that does not match {@code key} and
   * {@code size}, stores nothing. This default decodes it and stores the content; a store that keeps
   * casblobs itself may keep the given bytes instead of compressing the content again.
   *
   * @throws io.bazelcache.storage.casblob.CasBlobFormatException if the bytes are not a valid casblob
   */
  default void putCasblob(BlobKey key, long size, InputStream casblob) throws IOException {
    try (io.bazelcache.storage.casblob.CasBlobInputStream content =
        new io.bazelcache.storage.casblob.CasBlobInputStream(casblob)) {
      long announced = content.readHeader().uncompressedSize();
      if (announced != size) {
        throw new BlobSizeMismatchException(key + ": casblob holds " + announced + " bytes, expected " + size);
      }
      put(key, size, content);
    }
  }

  /** Stores {@code data}; see {@link BlobWriter#commit()}. */
  default void put(BlobKey key, byte[] data) throws IOException {
    try (BlobWriter w = newWriter(key, data.length)) {
      w.write(ByteBuffer.wrap(data));
      w.commit();
    }
  }

  /** Sizes for {@code /status} and metrics. */
  StoreStats stats();

  @Override
  default void close() throws IOException {}
}
