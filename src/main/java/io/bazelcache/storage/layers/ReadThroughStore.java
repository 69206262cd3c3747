package io.bazelcache.storage.layers;

import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.BlobSizeMismatchException;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.BlobWriter;
import io.bazelcache.storage.DigestMismatchException;
import io.bazelcache.storage.Kind;
import io.bazelcache.storage.StoreStats;
import io.bazelcache.storage.casblob.CasBlobFormatException;
import io.bazelcache.storage.s3.S3Stats;
import java.io.IOException;
import java.io.InputStream;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Local store in front of a shared backend: a local miss is fetched from the backend, stored locally
 * through the local store's writer (whose commit verifies the size and, for CAS, the digest), and then
 * served from the local store. An object that fails verification is a miss: never served, never stored.
 * Objects larger than {@code max_proxy_blob_size} are misses. Concurrent misses for one key share a
 * single backend GET.
 *
 * <p>Existence checks and writes go to the local store only; see {@link ExistenceStore} and
 * {@link WriteBehindStore}. Closing closes the local store, then the backend.
 */
public final class ReadThroughStore implements BlobStore {
  private static final Logger log = LoggerFactory.getLogger(ReadThroughStore.class);

  private final BlobStore local;
  private final RemoteStore remote;
  private final long maxProxyBlobSize;
  private final S3Stats stats;
  private final ExistenceCache existence;
  private final ConcurrentHashMap<BlobKey, CompletableFuture<Void>> inFlight = new ConcurrentHashMap<>();

  public ReadThroughStore(
      BlobStore local, RemoteStore remote, long maxProxyBlobSize, S3Stats stats, ExistenceCache existence) {
    this.local = local;
    this.remote = remote;
    this.maxProxyBlobSize = maxProxyBlobSize <= 0 ? Long.MAX_VALUE : maxProxyBlobSize;
    this.stats = stats;
    this.existence = existence == null ? ExistenceCache.disabled() : existence;
  }

  @Override
  public Blob get(BlobKey key) throws IOException {
    Blob b = local.get(key);
    if (b != null || key.isEmptyCasBlob()) {
      return b;
    }
    CompletableFuture<Void> mine = new CompletableFuture<>();
    CompletableFuture<Void> other = inFlight.putIfAbsent(key, mine);
    if (other != null) {
      try {
        other.join();
      } catch (RuntimeException e) {
        // the owner's failure is its own; we just look locally
      }
      return local.get(key);
    }
    try {
      // A fetch may have finished between our local miss and our registration.
      b = local.get(key);
      if (b != null) {
        return b;
      }
      fetchIntoLocal(key);
    } finally {
      inFlight.remove(key, mine);
      mine.complete(null);
    }
    return local.get(key);
  }

  /** Number of backend fetches in progress (for tests and metrics). */
  public int fetchesInFlight() {
    return inFlight.size();
  }

  private void fetchIntoLocal(BlobKey key) {
    RemoteStore.RemoteEntry entry;
    try {
      entry = remote.fetch(key, maxProxyBlobSize);
    } catch (CasBlobFormatException e) {
      stats.corruptObjects.incrementAndGet();
      stats.cacheMisses.incrementAndGet();
      log.warn("backend object for {} is malformed, treated as a miss: {}", key, e.getMessage());
      return;
    } catch (IOException | RuntimeException e) {
      stats.cacheMisses.incrementAndGet();
      log.debug("backend fetch of {} failed: {}", key, e.toString());
      return;
    }
    if (entry == null) {
      stats.cacheMisses.incrementAndGet();
      existence.invalidate(key);
      return;
    }
    try (entry) {
      InputStream casblob = key.kind() == Kind.CAS && entry.size() > 0 ? entry.openCasblob() : null;
      if (casblob != null) {
        // Kept in the form the backend holds (zstd mode): checked while stored, not recompressed.
        try (casblob) {
          local.putCasblob(key, entry.size(), casblob);
        }
      } else {
        try (InputStream in = entry.openStream()) {
          local.put(key, entry.size(), in);
        }
      }
    } catch (DigestMismatchException | BlobSizeMismatchException | CasBlobFormatException e) {
      stats.corruptObjects.incrementAndGet();
      stats.cacheMisses.incrementAndGet();
      existence.invalidate(key);
      log.warn("backend object for {} failed verification, treated as a miss: {}", key, e.getMessage());
      return;
    } catch (IOException | RuntimeException e) {
      // Local store full, too large for it, or the download broke off.
      stats.cacheMisses.incrementAndGet();
      log.info("could not store backend object {} locally: {}", key, e.toString());
      return;
    }
    stats.cacheHits.incrementAndGet();
    existence.put(key);
    remote.fetched(key);
  }

  @Override
  public boolean contains(BlobKey key) throws IOException {
    return local.contains(key);
  }

  @Override
  public List<BlobKey> findMissing(Collection<BlobKey> keys) throws IOException {
    return local.findMissing(keys);
  }

  @Override
  public int[] findMissing(io.bazelcache.storage.DigestBatch batch) throws IOException {
    return local.findMissing(batch);
  }

  @Override
  public BlobWriter newWriter(BlobKey key, long size) throws IOException {
    return local.newWriter(key, size);
  }

  @Override
  public StoreStats stats() {
    return local.stats();
  }

  @Override
  public void close() throws IOException {
    try {
      local.close();
    } finally {
      remote.close();
    }
  }
}
