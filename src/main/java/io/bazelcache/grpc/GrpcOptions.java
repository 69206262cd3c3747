package io.bazelcache.grpc;

import java.time.Duration;

/**
 * Settings of the gRPC server.
 *
 * @param maxBlobSize largest CAS blob accepted (bytes); advertised as {@code max_cas_blob_size_bytes}.
 *     0 or negative means no limit beyond the store's own.
 * @param acKeyInstanceMangling bazel-remote's {@code enable_ac_key_instance_mangling}: when the request's
 *     instance name is non-empty, the AC key used for storage is {@code H(hex(action_digest.hash) ‖
 *     instance_name)} hex-encoded, where H is the request's digest function (SHA-256 as in bazel-remote,
 *     or BLAKE3) and both strings are UTF-8. An empty instance name leaves the key unchanged.
 * @param maxInboundMessageSize largest gRPC message accepted (default 16 MiB)
 * @param maxBatchTotalSize advertised {@code max_batch_total_size_bytes}; larger batch requests are
 *     rejected with INVALID_ARGUMENT (default 4 MiB)
 * @param maxInlineSize budget for inlining stdout, stderr and output files into a GetActionResult
 *     response (default 3 MiB, as bazel-remote)
 * @param uploadResumeWindow how long an interrupted ByteStream upload is kept for resumption after its
 *     stream ends without finish_write (cancelled, deadline exceeded, connection lost); after that it is
 *     discarded and its reserved space released
 * @param maxParkedUploads how many interrupted uploads are kept at most; the oldest is discarded first
 * @param shutdownGrace how long {@code close()} waits for calls in flight before cancelling them
 */
public record GrpcOptions(
    long maxBlobSize,
    boolean acKeyInstanceMangling,
    int maxInboundMessageSize,
    long maxBatchTotalSize,
    long maxInlineSize,
    Duration uploadResumeWindow,
    int maxParkedUploads,
    Duration shutdownGrace) {

  public static final int DEFAULT_MAX_INBOUND_MESSAGE_SIZE = 16 * 1024 * 1024;
  public static final long DEFAULT_MAX_BATCH_TOTAL_SIZE = 4 * 1024 * 1024;
  public static final long DEFAULT_MAX_INLINE_SIZE = 3 * 1024 * 1024;

  public GrpcOptions {
    if (maxInboundMessageSize <= 0 || maxBatchTotalSize <= 0 || maxInlineSize < 0) {
      throw new IllegalArgumentException("message and batch sizes must be positive");
    }
    if (uploadResumeWindow == null || uploadResumeWindow.isNegative()) {
      throw new IllegalArgumentException("uploadResumeWindow must be >= 0");
    }
    if (maxParkedUploads < 0) {
      throw new IllegalArgumentException("maxParkedUploads must be >= 0");
    }
    if (shutdownGrace == null || shutdownGrace.isNegative()) {
      throw new IllegalArgumentException("shutdownGrace must be >= 0");
    }
  }

  /** Defaults: no blob size limit, no mangling, 16 MiB messages, 4 MiB batches, 3 MiB inlining, 60 s resume window, 1000 kept uploads, 10 s shutdown grace. */
  public static GrpcOptions defaults() {
    return new GrpcOptions(0, false, DEFAULT_MAX_INBOUND_MESSAGE_SIZE, DEFAULT_MAX_BATCH_TOTAL_SIZE,
        DEFAULT_MAX_INLINE_SIZE, Duration.ofSeconds(60), 1000, Duration.ofSeconds(10));
  }

  public GrpcOptions withMaxBlobSize(long v) {
    return new GrpcOptions(v, acKeyInstanceMangling, maxInboundMessageSize, maxBatchTotalSize,
        maxInlineSize, uploadResumeWindow, maxParkedUploads, shutdownGrace);
  }

  public GrpcOptions withAcKeyInstanceMangling(boolean v) {
    return new GrpcOptions(maxBlobSize, v, maxInboundMessageSize, maxBatchTotalSize, maxInlineSize,
        uploadResumeWindow, maxParkedUploads, shutdownGrace);
  }

  public GrpcOptions withUploadResumeWindow(Duration v) {
    return new GrpcOptions(maxBlobSize, acKeyInstanceMangling, maxInboundMessageSize,
        maxBatchTotalSize, maxInlineSize, v, maxParkedUploads, shutdownGrace);
  }

  public GrpcOptions withMaxParkedUploads(int v) {
    return new GrpcOptions(maxBlobSize, acKeyInstanceMangling, maxInboundMessageSize,
        maxBatchTotalSize, maxInlineSize, uploadResumeWindow, v, shutdownGrace);
  }

  public GrpcOptions withShutdownGrace(Duration v) {
    return new GrpcOptions(maxBlobSize, acKeyInstanceMangling, maxInboundMessageSize,
        maxBatchTotalSize, maxInlineSize, uploadResumeWindow, maxParkedUploads, v);
  }

  /** True if a blob of {@code size} bytes is over the configured limit. */
  boolean tooLarge(long size) {
    return maxBlobSize > 0 && size > maxBlobSize;
  }
}
