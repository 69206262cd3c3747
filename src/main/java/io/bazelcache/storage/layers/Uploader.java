package io.bazelcache.storage.layers;

import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.s3.S3Stats;
import java.io.Closeable;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Uploads committed local entries to the shared backend in the background: {@code num_uploaders}
 * workers take keys from a queue bounded by {@code max_queued_uploads}. {@link #enqueue} never blocks:
 * when the queue is full the upload is dropped, counted and logged. Each upload reads the local entry
 * (so its stored bytes, casblob in zstd mode, go up as they are) and is retried with exponential
 * backoff on transient errors for up to {@code retryFor}. {@link #close()} stops accepting work and
 * drains the queue for at most {@code drainTimeout}.
 */
public final class Uploader implements Closeable {
  private static final Logger log = LoggerFactory.getLogger(Uploader.class);

  /** Backoff and patience for one upload. */
  public record Retry(Duration initialBackoff, Duration maxBackoff, Duration retryFor) {
    public static Retry defaults() {
      return new Retry(Duration.ofMillis(200), Duration.ofSeconds(30), Duration.ofMinutes(10));
    }
  }

  private final BlobStore local;
  private final RemoteStore remote;
  private final S3Stats stats;
  private final Retry retry;
  private final Duration drainTimeout;
  private final ExistenceCache existence;
  private final LinkedBlockingQueue<BlobKey> queue;
  private final Set<BlobKey> queued = ConcurrentHashMap.newKeySet();
  private final List<Thread> workers = new ArrayList<>();
  /** Keys queued or being uploaded (incremented before the offer, decremented when handled). */
  private final AtomicInteger outstanding = new AtomicInteger();
  private final AtomicLong lastDropLog = new AtomicLong(System.nanoTime() - TimeUnit.MINUTES.toNanos(1));
  private volatile boolean accepting = true;
  private volatile boolean stopping;

  public Uploader(
      BlobStore local,
      RemoteStore remote,
      int numUploaders,
      int maxQueuedUploads,
      Retry retry,
      Duration drainTimeout,
      S3Stats stats,
      ExistenceCache existence) {
    this.local = local;
    this.remote = remote;
    this.stats = stats;
    this.retry = retry == null ? Retry.defaults() : retry;
    this.drainTimeout = drainTimeout == null ? Duration.ofSeconds(30) : drainTimeout;
    this.existence = existence == null ? ExistenceCache.disabled() : existence;
    this.queue = new LinkedBlockingQueue<>(Math.max(1, maxQueuedUploads));
    stats.registerQueueLength(queue::size);
    for (int i = 0; i < Math.max(0, numUploaders); i++) {
      // Platform threads: the HTTP client blocks in socket I/O, sometimes inside monitors, which
      // would pin virtual threads on JDK 21.
      Thread t = Thread.ofPlatform().daemon().name("s3-uploader-" + i).unstarted(this::work);
      workers.add(t);
    }
    workers.forEach(Thread::start);
  }

  /** Whether uploads are enabled at all ({@code num_uploaders > 0}). */
  public boolean enabled() {
    return !workers.isEmpty();
  }

  /**
   * Queues {@code key} for upload. Returns false if it was dropped (queue full, closing) or uploads are
   * disabled. Never blocks.
   */
  public boolean enqueue(BlobKey key) {
    if (!enabled() || key.isEmptyCasBlob()) {
      return false;
    }
    if (!accepting) {
      drop(key, "uploader closing");
      return false;
    }
    if (!queued.add(key)) {
      return true; // already waiting; the worker will read the latest local entry
    }
    outstanding.incrementAndGet();
    if (!queue.offer(key)) {
      outstanding.decrementAndGet();
      queued.remove(key);
      drop(key, "too many uploads queued");
      return false;
    }
    stats.uploadsQueued.incrementAndGet();
    return true;
  }

  private void drop(BlobKey key, String why) {
    long n = stats.uploadsDropped.incrementAndGet();
    long now = System.nanoTime();
    long last = lastDropLog.get();
    if (now - last > TimeUnit.SECONDS.toNanos(10) && lastDropLog.compareAndSet(last, now)) {
      log.warn("{}: dropped the upload of {} ({} uploads dropped so far)", why, key, n);
    }
  }

  /** Entries waiting in the queue. */
  public int queueLength() {
    return queue.size();
  }

  /** Entries waiting or being uploaded. */
  public int pending() {
    return outstanding.get();
  }

  private void work() {
    while (!stopping) {
      BlobKey key;
      try {
        key = queue.take();
      } catch (InterruptedException e) {
        continue; // close() interrupts after setting stopping
      }
      try {
        queued.remove(key);
        upload(key);
      } finally {
        outstanding.decrementAndGet();
      }
    }
  }

  private void upload(BlobKey key) {
    long giveUpAt = System.nanoTime() + retry.retryFor().toNanos();
    long backoff = retry.initialBackoff().toNanos();
    while (true) {
      try (Blob blob = local.get(key)) {
        if (blob == null) {
          log.debug("upload of {} skipped: no longer in the local store", key);
          return;
        }
        remote.upload(key, blob);
        stats.uploadsDone.incrementAndGet();
        existence.put(key);
        return;
      } catch (RemoteStore.PermanentFailureException e) {
        stats.uploadsFailed.incrementAndGet();
        log.warn("upload of {} failed permanently: {}", key, e.getMessage());
        return;
      } catch (Exception e) {
        long sleep = backoff / 2 + ThreadLocalRandom.current().nextLong(backoff / 2 + 1);
        if (stopping || System.nanoTime() + sleep - giveUpAt > 0) {
          stats.uploadsFailed.incrementAndGet();
          log.warn("upload of {} failed, giving up: {}", key, e.toString());
          return;
        }
        stats.uploadRetries.incrementAndGet();
        log.debug("upload of {} failed, retrying in {} ms: {}", key, sleep / 1_000_000, e.toString());
        try {
          TimeUnit.NANOSECONDS.sleep(sleep);
        } catch (InterruptedException ie) {
          if (stopping) {
            stats.uploadsFailed.incrementAndGet();
            return;
          }
        }
        backoff = Math.min(backoff * 2, retry.maxBackoff().toNanos());
      }
    }
  }

  /**
   * Waits until everything queued so far has been handled or {@code timeout} passes; returns whether
   * the queue drained. Keeps accepting new work.
   */
  public boolean awaitIdle(Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (pending() > 0) {
      if (System.nanoTime() - deadline > 0) {
        return false;
      }
      Thread.sleep(10);
    }
    return true;
  }

  /** Stops accepting uploads, drains the queue within the drain timeout, then stops the workers. */
  @Override
  public void close() {
    if (!accepting && stopping) {
      return;
    }
    accepting = false;
    boolean drained;
    try {
      drained = awaitIdle(drainTimeout);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      drained = false;
    }
    stopping = true;
    workers.forEach(Thread::interrupt);
    for (Thread t : workers) {
      try {
        t.join(TimeUnit.SECONDS.toMillis(5));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    List<BlobKey> left = new ArrayList<>();
    queue.drainTo(left);
    outstanding.addAndGet(-left.size());
    queued.clear();
    if (!left.isEmpty()) {
      stats.uploadsDropped.addAndGet(left.size());
    }
    if (!drained) {
      log.warn("upload queue not drained within {}: {} uploads abandoned", drainTimeout, left.size());
    }
  }
}
