package io.bazelcache.metrics;

import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.BlobWriter;
import io.bazelcache.storage.StoreStats;
import java.io.IOException;
import java.io.InputStream;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Counts the requests the transports make, as bazel-remote's {@code bazel_remote_incoming_requests_total}:
 * {@code get} and {@code contains} (each key of a {@code findMissing} is one {@code contains}), by kind, hit or
 * miss. Writes are passed through uncounted, as in bazel-remote. A call that throws counts nothing.
 */
final class MeteredStore implements BlobStore {
  private final BlobStore delegate;
  private final CacheMetrics metrics;

  MeteredStore(BlobStore delegate, CacheMetrics metrics) {
    this.delegate = delegate;
    this.metrics = metrics;
  }

  @Override
  public Blob get(BlobKey key) throws IOException {
    Blob b = delegate.get(key);
    metrics.countIncoming("get", key.kind(), b != null);
    return b;
  }

  @Override
  public boolean contains(BlobKey key) throws IOException {
    boolean found = delegate.contains(key);
    metrics.countIncoming("contains", key.kind(), found);
    return found;
  }

  @Override
  public List<BlobKey> findMissing(Collection<BlobKey> keys) throws IOException {
    List<BlobKey> missing = delegate.findMissing(keys);
    Set<BlobKey> absent = missing.size() > 8 ? new HashSet<>(missing) : null;
    for (BlobKey k : keys) {
      boolean miss = absent != null ? absent.contains(k) : missing.contains(k);
      metrics.countIncoming("contains", k.kind(), !miss);
    }
    return missing;
  }

  @Override
  public int[] findMissing(io.bazelcache.storage.DigestBatch batch) throws IOException {
    int[] missing = delegate.findMissing(batch);
    metrics.countIncoming("contains", io.bazelcache.storage.Kind.CAS, true, batch.size() - missing.length);
    metrics.countIncoming("contains", io.bazelcache.storage.Kind.CAS, false, missing.length);
    return missing;
  }

  @Override
  public BlobWriter newWriter(BlobKey key, long size) throws IOException {
    return delegate.newWriter(key, size);
  }

  @Override
  public void put(BlobKey key, long size, InputStream in) throws IOException {
    delegate.put(key, size, in);
  }

  @Override
  public void put(BlobKey key, byte[] data) throws IOException {
    delegate.put(key, data);
  }

  @Override
  public StoreStats stats() {
    return delegate.stats();
  }

  @Override
  public void close() throws IOException {
    delegate.close();
  }

  @Override
  public String toString() {
    return "MeteredStore(" + delegate + ")";
  }
}
