package io.bazelcache.storage.layers;

import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.BlobWriter;
import io.bazelcache.storage.StoreStats;
import io.bazelcache.storage.s3.S3Stats;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Existence checks (FindMissingBlobs, {@code contains}, and so the AC completeness check that uses
 * them) over a local store and a shared backend: only local misses are asked of the backend (HEAD),
 * with at most {@code maxConcurrentChecks} HEADs in flight across all callers, each on a virtual thread.
 * Positive answers are remembered in an {@link ExistenceCache}. A call never takes much longer than
 * {@code checkTimeout}: keys the backend has not answered by then count as missing (the client uploads
 * them again, which is harmless). Concurrent checks of one key share one HEAD. Reads and writes pass
 * through.
 */
public final class ExistenceStore implements BlobStore {
  private static final Logger log = LoggerFactory.getLogger(ExistenceStore.class);

  private final BlobStore inner;
  private final RemoteStore remote;
  private final ExistenceCache cache;
  private final Semaphore permits;
  private final Duration checkTimeout;
  private final S3Stats stats;
  private final ConcurrentHashMap<BlobKey, CompletableFuture<Boolean>> headsInFlight =
      new ConcurrentHashMap<>();

  public ExistenceStore(
      BlobStore inner,
      RemoteStore remote,
      ExistenceCache cache,
      int maxConcurrentChecks,
      Duration checkTimeout,
      S3Stats stats) {
    this.inner = inner;
    this.remote = remote;
    this.cache = cache == null ? ExistenceCache.disabled() : cache;
    this.permits = new Semaphore(Math.max(1, maxConcurrentChecks));
    this.checkTimeout = checkTimeout;
    this.stats = stats;
  }

  public ExistenceCache cache() {
    return cache;
  }

  @Override
  public boolean contains(BlobKey key) throws IOException {
    if (inner.contains(key)) {
      return true;
    }
    if (cache.contains(key)) {
      stats.existenceCacheHits.incrementAndGet();
      return true;
    }
    return askRemote(key);
  }

  @Override
  public List<BlobKey> findMissing(Collection<BlobKey> keys) throws IOException {
    return missingRemotely(inner.findMissing(keys));
  }

  /** Asks the inner store about the whole batch, and S3 only about what is not there. */
  @Override
  public int[] findMissing(io.bazelcache.storage.DigestBatch batch) throws IOException {
    int[] localMissing = inner.findMissing(batch);
    if (localMissing.length == 0) {
      return localMissing;
    }
    return BlobStore.missingAmong(batch, localMissing, missingRemotely(batch.keys(localMissing)));
  }

  /** Of keys missing locally, those that S3 does not have either (known or asked), in the same order. */
  private List<BlobKey> missingRemotely(List<BlobKey> localMissing) {
    if (localMissing.isEmpty()) {
      return localMissing;
    }
    Set<BlobKey> toAsk = new LinkedHashSet<>();
    for (BlobKey k : localMissing) {
      if (cache.contains(k)) {
        stats.existenceCacheHits.incrementAndGet();
      } else {
        toAsk.add(k);
      }
    }
    Set<BlobKey> present = new java.util.HashSet<>();
    for (BlobKey k : localMissing) {
      if (!toAsk.contains(k)) {
        present.add(k);
      }
    }
    if (toAsk.size() == 1) {
      BlobKey k = toAsk.iterator().next();
      if (askRemote(k)) {
        present.add(k);
      }
    } else if (!toAsk.isEmpty()) {
      present.addAll(askRemoteAll(toAsk));
    }
    List<BlobKey> missing = new ArrayList<>(localMissing.size());
    for (BlobKey k : localMissing) {
      if (!present.contains(k)) {
        missing.add(k);
      }
    }
    return missing;
  }

  private List<BlobKey> askRemoteAll(Set<BlobKey> keys) {
    Map<BlobKey, Future<Boolean>> futures = new HashMap<>();
    List<BlobKey> found = new ArrayList<>();
    ExecutorService exec = Executors.newVirtualThreadPerTaskExecutor();
    try {
      for (BlobKey k : keys) {
        futures.put(k, exec.submit(() -> askRemote(k)));
      }
      long deadline = System.nanoTime() + checkTimeout.toNanos();
      for (Map.Entry<BlobKey, Future<Boolean>> e : futures.entrySet()) {
        long left = deadline - System.nanoTime();
        try {
          if (e.getValue().get(Math.max(0, left), TimeUnit.NANOSECONDS)) {
            found.add(e.getKey());
          }
        } catch (java.util.concurrent.TimeoutException | CancellationException | ExecutionException ex) {
          // unanswered: missing
        } catch (InterruptedException ex) {
          Thread.currentThread().interrupt();
          break;
        }
      }
    } finally {
      exec.shutdownNow();
    }
    return found;
  }

  /**
   * Whether the backend has {@code key}. Concurrent questions about one key share one HEAD; an error
   * or timeout counts as "missing".
   */
  private boolean askRemote(BlobKey key) {
    CompletableFuture<Boolean> mine = new CompletableFuture<>();
    CompletableFuture<Boolean> other = headsInFlight.putIfAbsent(key, mine);
    if (other != null) {
      try {
        return other.get(checkTimeout.toNanos(), TimeUnit.NANOSECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return false;
      } catch (ExecutionException | java.util.concurrent.TimeoutException | CancellationException e) {
        return false;
      }
    }
    boolean found = false;
    try {
      // A HEAD that just finished may have answered already (it caches before it unregisters).
      if (cache.contains(key)) {
        stats.existenceCacheHits.incrementAndGet();
        found = true;
        return true;
      }
      found = head(key);
      return found;
    } finally {
      headsInFlight.remove(key, mine);
      mine.complete(found);
    }
  }

  /** One HEAD, under the shared concurrency bound; an error counts as "missing". */
  private boolean head(BlobKey key) {
    try {
      if (!permits.tryAcquire(checkTimeout.toNanos(), TimeUnit.NANOSECONDS)) {
        return false;
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
    try {
      if (remote.exists(key)) {
        cache.put(key);
        return true;
      }
      return false;
    } catch (IOException | RuntimeException e) {
      log.debug("backend existence check for {} failed: {}", key, e.toString());
      return false;
    } finally {
      permits.release();
    }
  }

  @Override
  public Blob get(BlobKey key) throws IOException {
    return inner.get(key);
  }

  @Override
  public BlobWriter newWriter(BlobKey key, long size) throws IOException {
    return inner.newWriter(key, size);
  }

  @Override
  public StoreStats stats() {
    return inner.stats();
  }

  @Override
  public void close() throws IOException {
    inner.close();
  }
}
