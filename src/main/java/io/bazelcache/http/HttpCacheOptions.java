package io.bazelcache.http;

import java.time.Duration;

/**
 * Settings of the HTTP cache endpoint.
 *
 * @param maxBlobSize largest logical (uncompressed) entry accepted by PUT; larger uploads get 413
 * @param disableHttpAcValidation store HTTP {@code /ac/} entries under kind RAW without parsing them (bazel-remote's
 *     {@code disable_http_ac_validation}); RAW entries go to the CAS/RAW store
 * @param enableAcKeyInstanceMangling AC keys under a non-empty instance become
 *     {@code hex(sha256(utf8(hash + instance)))} (bazel-remote's {@code enable_ac_key_instance_mangling})
 * @param maxActionResultSize largest AC entry parsed in memory (validated AC only); larger uploads get 413
 * @param gitCommit reported by {@code /status} as {@code GitCommit}
 * @param gitTags reported by {@code /status} as {@code GitTags}
 * @param zstdLevel compression level used when a client asks for zstd and the store has no compressed copy
 * @param zeroCopy send files with sendfile when the store offers them (turn off under TLS)
 * @param ioThreads Netty event-loop threads (0: Netty's default, twice the cores)
 * @param maxInitialLineLength longest request line accepted (longer: 414)
 * @param maxHeaderSize largest header block accepted (larger: 431)
 * @param shutdownGrace how long {@link HttpCacheServer#close()} lets requests in flight finish
 */
public record HttpCacheOptions(
    long maxBlobSize,
    boolean disableHttpAcValidation,
    boolean enableAcKeyInstanceMangling,
    long maxActionResultSize,
    String gitCommit,
    String gitTags,
    int zstdLevel,
    boolean zeroCopy,
    int ioThreads,
    int maxInitialLineLength,
    int maxHeaderSize,
    Duration shutdownGrace) {

  public static final long DEFAULT_MAX_ACTION_RESULT_SIZE = 64L << 20;

  public HttpCacheOptions {
    if (maxBlobSize <= 0) {
      throw new IllegalArgumentException("maxBlobSize must be > 0");
    }
    if (maxActionResultSize <= 0 || maxActionResultSize > Integer.MAX_VALUE - 64) {
      throw new IllegalArgumentException("maxActionResultSize must be in (0, 2 GiB)");
    }
    if (maxInitialLineLength < 256 || maxHeaderSize < 1024) {
      throw new IllegalArgumentException("request line / header limits are too small");
    }
    if (ioThreads < 0) {
      throw new IllegalArgumentException("ioThreads must be >= 0");
    }
    gitCommit = gitCommit == null ? "" : gitCommit;
    gitTags = gitTags == null ? "" : gitTags;
    shutdownGrace = shutdownGrace == null ? Duration.ofSeconds(10) : shutdownGrace;
  }

  /** bazel-remote's defaults: no size limit, AC validation on, no key mangling. */
  public static HttpCacheOptions defaults() {
    return new HttpCacheOptions(
        Long.MAX_VALUE, false, false, DEFAULT_MAX_ACTION_RESULT_SIZE, "", "", 1, true, 0, 8192, 16384,
        Duration.ofSeconds(10));
  }

  public HttpCacheOptions withMaxBlobSize(long v) {
    return new HttpCacheOptions(v, disableHttpAcValidation, enableAcKeyInstanceMangling, maxActionResultSize,
        gitCommit, gitTags, zstdLevel, zeroCopy, ioThreads, maxInitialLineLength, maxHeaderSize, shutdownGrace);
  }

  public HttpCacheOptions withDisableHttpAcValidation(boolean v) {
    return new HttpCacheOptions(maxBlobSize, v, enableAcKeyInstanceMangling, maxActionResultSize,
        gitCommit, gitTags, zstdLevel, zeroCopy, ioThreads, maxInitialLineLength, maxHeaderSize, shutdownGrace);
  }

  public HttpCacheOptions withEnableAcKeyInstanceMangling(boolean v) {
    return new HttpCacheOptions(maxBlobSize, disableHttpAcValidation, v, maxActionResultSize,
        gitCommit, gitTags, zstdLevel, zeroCopy, ioThreads, maxInitialLineLength, maxHeaderSize, shutdownGrace);
  }

  public HttpCacheOptions withGit(String commit, String tags) {
    return new HttpCacheOptions(maxBlobSize, disableHttpAcValidation, enableAcKeyInstanceMangling,
        maxActionResultSize, commit, tags, zstdLevel, zeroCopy, ioThreads, maxInitialLineLength, maxHeaderSize,
        shutdownGrace);
  }

  public HttpCacheOptions withZeroCopy(boolean v) {
    return new HttpCacheOptions(maxBlobSize, disableHttpAcValidation, enableAcKeyInstanceMangling,
        maxActionResultSize, gitCommit, gitTags, zstdLevel, v, ioThreads, maxInitialLineLength, maxHeaderSize,
        shutdownGrace);
  }

  public HttpCacheOptions withIoThreads(int v) {
    return new HttpCacheOptions(maxBlobSize, disableHttpAcValidation, enableAcKeyInstanceMangling,
        maxActionResultSize, gitCommit, gitTags, zstdLevel, zeroCopy, v, maxInitialLineLength, maxHeaderSize,
        shutdownGrace);
  }

  public HttpCacheOptions withShutdownGrace(Duration v) {
    return new HttpCacheOptions(maxBlobSize, disableHttpAcValidation, enableAcKeyInstanceMangling,
        maxActionResultSize, gitCommit, gitTags, zstdLevel, zeroCopy, ioThreads, maxInitialLineLength,
        maxHeaderSize, v);
  }
}
