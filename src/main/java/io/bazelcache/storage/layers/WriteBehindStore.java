package io.bazelcache.storage.layers;

import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.BlobWriter;
import io.bazelcache.storage.StoreStats;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Collection;
import java.util.List;

/**
 * Queues every entry committed through this store for upload to the shared backend, after the local
 * commit succeeded; the client never waits for the upload. Closing drains the {@link Uploader} (within
 * its bound) and then closes the inner store.
 */
public final class WriteBehindStore implements BlobStore {
  private final BlobStore inner;
  private final Uploader uploader;

  public WriteBehindStore(BlobStore inner, Uploader uploader) {
    this.inner = inner;
    this.uploader = uploader;
  }

  public Uploader uploader() {
    return uploader;
  }

  @Override
  public BlobWriter newWriter(BlobKey key, long size) throws IOException {
    return new io.bazelcache.storage.ForwardingBlobWriter(inner.newWriter(key, size)) {
      @Override
      public void commit() throws IOException {
        delegate.commit();
        uploader.enqueue(key);
      }
    };
  }

  @Override
  public Blob get(BlobKey key) throws IOException {
    return inner.get(key);
  }

  @Override
  public boolean contains(BlobKey key) throws IOException {
    return inner.contains(key);
  }

  @Override
  public List<BlobKey> findMissing(Collection<BlobKey> keys) throws IOException {
    return inner.findMissing(keys);
  }

  @Override
  public int[] findMissing(io.bazelcache.storage.DigestBatch batch) throws IOException {
    return inner.findMissing(batch);
  }

  @Override
  public StoreStats stats() {
    return inner.stats();
  }

  @Override
  public void close() throws IOException {
    try {
      uploader.close();
    } finally {
      inner.close();
    }
  }
}
