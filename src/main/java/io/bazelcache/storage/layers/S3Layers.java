package io.bazelcache.storage.layers;

import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.s3.S3Stats;
import java.time.Duration;

/**
 * Puts the layers together over a local store and a shared backend:
 *
 * <pre>
 * WriteBehindStore          commits queue an upload of the local entry
 *   ExistenceStore          local misses are asked of the backend (bounded, cached)
 *     ReadThroughStore      local misses are fetched, verified, stored locally, served
 *       local (DiskStore)
 * </pre>
 *
 * Entries fetched from the backend go straight into the local store, below the write-behind layer, so
 * they are not uploaded again. Closing the result drains uploads, then closes the local store, then the
 * backend.
 */
public final class S3Layers {
  private S3Layers() {}

  /**
   * Settings of the layers (not of the S3 client, see {@link io.bazelcache.storage.s3.S3Options}).
   *
   * @param maxProxyBlobSize {@code max_proxy_blob_size}: larger backend objects are misses
   * @param numUploaders {@code num_uploaders}; 0 disables uploads
   * @param maxQueuedUploads {@code max_queued_uploads}
   * @param existenceTtl how long a positive backend answer is trusted (0 disables the cache)
   * @param existenceMaxEntries how many positive answers are remembered
   * @param maxConcurrentChecks HEADs in flight at once, across all callers
   * @param checkTimeout bound on one findMissing/contains call's backend part
   * @param uploadRetry backoff and patience per upload
   * @param drainTimeout how long {@code close()} waits for queued uploads
   */
  public record Options(
      long maxProxyBlobSize,
      int numUploaders,
      int maxQueuedUploads,
      Duration existenceTtl,
      int existenceMaxEntries,
      int maxConcurrentChecks,
      Duration checkTimeout,
      Uploader.Retry uploadRetry,
      Duration drainTimeout) {

    /** bazel-remote's defaults: max_proxy_blob_size unlimited, 100 uploaders, 1,000,000 queued. */
    public static Options defaults() {
      return new Options(Long.MAX_VALUE, 100, 1_000_000, Duration.ofMinutes(10), 500_000, 100,
          Duration.ofSeconds(30), Uploader.Retry.defaults(), Duration.ofSeconds(30));
    }

    public Options withUploads(int numUploaders, int maxQueuedUploads) {
      return new Options(maxProxyBlobSize, numUploaders, maxQueuedUploads, existenceTtl, existenceMaxEntries,
          maxConcurrentChecks, checkTimeout, uploadRetry, drainTimeout);
    }

    public Options withMaxProxyBlobSize(long v) {
      return new Options(v, numUploaders, maxQueuedUploads, existenceTtl, existenceMaxEntries,
          maxConcurrentChecks, checkTimeout, uploadRetry, drainTimeout);
    }

    public Options withExistenceCache(Duration ttl, int maxEntries) {
      return new Options(maxProxyBlobSize, numUploaders, maxQueuedUploads, ttl, maxEntries,
          maxConcurrentChecks, checkTimeout, uploadRetry, drainTimeout);
    }

    public Options withChecks(int maxConcurrent, Duration timeout) {
      return new Options(maxProxyBlobSize, numUploaders, maxQueuedUploads, existenceTtl, existenceMaxEntries,
          maxConcurrent, timeout, uploadRetry, drainTimeout);
    }

    public Options withUploadRetry(Uploader.Retry retry, Duration drain) {
      return new Options(maxProxyBlobSize, numUploaders, maxQueuedUploads, existenceTtl, existenceMaxEntries,
          maxConcurrentChecks, checkTimeout, retry, drain);
    }
  }

  /** The composed store, with handles on its parts. */
  public record Composed(
      WriteBehindStore store, ExistenceStore existence, ReadThroughStore readThrough, Uploader uploader) {}

  public static Composed compose(BlobStore local, RemoteStore remote, Options o, S3Stats stats) {
    ExistenceCache cache = new ExistenceCache(o.existenceTtl(), o.existenceMaxEntries());
    ReadThroughStore rt = new ReadThroughStore(local, remote, o.maxProxyBlobSize(), stats, cache);
    ExistenceStore ex = new ExistenceStore(rt, remote, cache, o.maxConcurrentChecks(), o.checkTimeout(), stats);
    Uploader up = new Uploader(local, remote, o.numUploaders(), o.maxQueuedUploads(), o.uploadRetry(),
        o.drainTimeout(), stats, cache);
    return new Composed(new WriteBehindStore(ex, up), ex, rt, up);
  }
}
