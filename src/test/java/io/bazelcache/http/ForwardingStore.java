package io.bazelcache.http;

import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.BlobWriter;
import io.bazelcache.storage.StoreStats;
import io.bazelcache.testing.MemoryBlobStore;
import java.io.IOException;

/** A test store that passes everything to a MemoryBlobStore; tests override the calls they want to change. */
class ForwardingStore implements BlobStore {
  final MemoryBlobStore mem = new MemoryBlobStore();

  @Override
  public Blob get(BlobKey key) throws IOException {
    return mem.get(key);
  }

  @Override
  public boolean contains(BlobKey key) throws IOException {
    return mem.contains(key);
  }

  @Override
  public BlobWriter newWriter(BlobKey key, long size) throws IOException {
    return mem.newWriter(key, size);
  }

  @Override
  public StoreStats stats() {
    return mem.stats();
  }
}
