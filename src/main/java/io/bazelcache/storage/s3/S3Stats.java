package io.bazelcache.storage.s3;

import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.function.LongSupplier;

/**
 * Plain counters and gauges of the S3 tier, for the metrics exporter: cache hits and misses (as
 * bazel-remote's {@code bazel_remote_s3_cache_hits/misses}), requests by operation and status, the
 * upload queue, dropped uploads. Thread-safe; shared by {@link S3Store} and the layers around it.
 */
public final class S3Stats {

  public enum Operation { GET, HEAD, PUT, COPY }

  public enum Status { OK, NOT_FOUND, ERROR }

  private final AtomicLongArray requests =
      new AtomicLongArray(Operation.values().length * Status.values().length);

  /** S3 GETs that produced a verified entry. */
  public final AtomicLong cacheHits = new AtomicLong();
  /** S3 GETs that did not: not found, error, too large, or corrupt. */
  public final AtomicLong cacheMisses = new AtomicLong();
  /** Objects whose bytes did not match their digest or were malformed (never served, never stored). */
  public final AtomicLong corruptObjects = new AtomicLong();
  /** Existence checks answered by the positive-answer cache instead of a HEAD. */
  public final AtomicLong existenceCacheHits = new AtomicLong();
  /** Uploads accepted into the queue. */
  public final AtomicLong uploadsQueued = new AtomicLong();
  /** Uploads that reached S3. */
  public final AtomicLong uploadsDone = new AtomicLong();
  /** Uploads given up after retries or refused by S3 permanently. */
  public final AtomicLong uploadsFailed = new AtomicLong();
  /** Uploads dropped because the queue was full (or the uploader was closing). */
  public final AtomicLong uploadsDropped = new AtomicLong();
  /** Upload attempts that failed and were retried. */
  public final AtomicLong uploadRetries = new AtomicLong();

  /** Requests not sent because the backend was considered down (also counted as errors). */
  public final AtomicLong breakerRejections = new AtomicLong();

  private volatile LongSupplier queueLength = () -> 0;

  public void count(Operation op, Status status) {
    requests.incrementAndGet(op.ordinal() * Status.values().length + status.ordinal());
  }

  public long requests(Operation op, Status status) {
    return requests.get(op.ordinal() * Status.values().length + status.ordinal());
  }

  public long requests(Operation op) {
    long n = 0;
    for (Status s : Status.values()) {
      n += requests(op, s);
    }
    return n;
  }

  /** Current number of entries waiting for upload. */
  public long uploadQueueLength() {
    return queueLength.getAsLong();
  }

  void queueLengthGauge(LongSupplier gauge) {
    this.queueLength = gauge;
  }

  /** Lets the uploader publish its queue length. */
  public void registerQueueLength(LongSupplier gauge) {
    queueLengthGauge(gauge);
  }

  @Override
  public String toString() {
    StringBuilder sb = new StringBuilder("S3Stats{hits=").append(cacheHits).append(", misses=").append(cacheMisses);
    for (Operation op : Operation.values()) {
      sb.append(", ").append(op.name().toLowerCase()).append("=[");
      for (Status s : Status.values()) {
        sb.append(s.name().toLowerCase()).append(':').append(requests(op, s)).append(s.ordinal() < 2 ? " " : "");
      }
      sb.append(']');
    }
    return sb.append(", queue=").append(uploadQueueLength()).append(", dropped=").append(uploadsDropped)
        .append(", uploaded=").append(uploadsDone).append(", failed=").append(uploadsFailed)
        .append(", corrupt=").append(corruptObjects).append('}').toString();
  }
}
