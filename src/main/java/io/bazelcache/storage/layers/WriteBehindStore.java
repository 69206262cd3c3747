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
    BlobWriter w = inner.newWriter(key, size);
    return new BlobWriter() {
      @Override
      public BlobKey key() {
        return w.key();
      }

      @Override
      public long expectedSize() {
        return w.expectedSize();
      }

      @Override
      public void write(ByteBuffer data) throws IOException {
        w.write(data);
      }

      @Override
      public long bytesWritten() {
        return w.bytesWritten();
      }

      @Override
      public void commit() throws IOException {
        w.commit();
        uploader.enqueue(key);
      }

      @Override
      public void close() {
        w.close();
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
