package io.bazelcache.grpc;

import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.BlobWriter;
import io.bazelcache.storage.InsufficientStorageException;
import io.bazelcache.storage.StoreStats;
import java.io.IOException;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/** Wraps a store to count findMissing calls and to simulate a full disk. */
final class InstrumentedStore implements BlobStore {
  final BlobStore inner;
  final AtomicBoolean full = new AtomicBoolean();
  final AtomicInteger findMissingCalls = new AtomicInteger();
  final AtomicInteger containsCalls = new AtomicInteger();

  InstrumentedStore(BlobStore inner) {
    this.inner = inner;
  }

  @Override
  public Blob get(BlobKey key) throws IOException {
    return inner.get(key);
  }

  @Override
  public boolean contains(BlobKey key) throws IOException {
    containsCalls.incrementAndGet();
    return inner.contains(key);
  }

  @Override
  public List<BlobKey> findMissing(Collection<BlobKey> keys) throws IOException {
    findMissingCalls.incrementAndGet();
    return inner.findMissing(keys);
  }

  @Override
  public BlobWriter newWriter(BlobKey key, long size) throws IOException {
    if (full.get()) {
      throw new InsufficientStorageException("no room for " + size + " bytes");
    }
    return inner.newWriter(key, size);
  }

  @Override
  public StoreStats stats() {
    return inner.stats();
  }
}
