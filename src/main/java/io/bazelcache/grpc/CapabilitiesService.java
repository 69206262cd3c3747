package io.bazelcache.grpc;

import build.bazel.remote.execution.v2.ActionCacheUpdateCapabilities;
import build.bazel.remote.execution.v2.CacheCapabilities;
import build.bazel.remote.execution.v2.CapabilitiesGrpc;
import build.bazel.remote.execution.v2.Compressor;
import build.bazel.remote.execution.v2.DigestFunction;
import build.bazel.remote.execution.v2.GetCapabilitiesRequest;
import build.bazel.remote.execution.v2.PriorityCapabilities;
import build.bazel.remote.execution.v2.ServerCapabilities;
import build.bazel.remote.execution.v2.SymlinkAbsolutePathStrategy;
import build.bazel.semver.SemVer;
import io.grpc.stub.StreamObserver;

/**
 * Advertises exactly what this server implements: SHA-256 and BLAKE3, zstd for ByteStream and batch
 * uploads, AC updates, a 4 MiB batch limit, no execution and no split/splice.
 *
 * <p>API versions: low 2.0 (everything a 2.0 client uses is served) and high 2.3, the version that added
 * the {@code digest_function} request fields and BLAKE3, the newest features used here (compressed
 * blobs came with 2.2). The instance name is ignored.
 */
final class CapabilitiesService extends CapabilitiesGrpc.CapabilitiesImplBase {
  private final ServerCapabilities capabilities;

  CapabilitiesService(GrpcOptions options) {
    CacheCapabilities cache =
        CacheCapabilities.newBuilder()
            .addDigestFunctions(DigestFunction.Value.SHA256)
            .addDigestFunctions(DigestFunction.Value.BLAKE3)
            .setActionCacheUpdateCapabilities(
                ActionCacheUpdateCapabilities.newBuilder().setUpdateEnabled(true))
            .setCachePriorityCapabilities(
                PriorityCapabilities.newBuilder()
                    .addPriorities(
                        PriorityCapabilities.PriorityRange.newBuilder()
                            .setMinPriority(0)
                            .setMaxPriority(0)))
            .setMaxBatchTotalSizeBytes(options.maxBatchTotalSize())
            .setSymlinkAbsolutePathStrategy(SymlinkAbsolutePathStrategy.Value.ALLOWED)
            .addSupportedCompressors(Compressor.Value.ZSTD)
            .addSupportedBatchUpdateCompressors(Compressor.Value.ZSTD)
            .setMaxCasBlobSizeBytes(Math.max(0, options.maxBlobSize()))
            .build();
    capabilities =
        ServerCapabilities.newBuilder()
            .setCacheCapabilities(cache)
            .setLowApiVersion(SemVer.newBuilder().setMajor(2).setMinor(0))
            .setHighApiVersion(SemVer.newBuilder().setMajor(2).setMinor(3))
            .build();
  }

  @Override
  public void getCapabilities(
      GetCapabilitiesRequest request, StreamObserver<ServerCapabilities> responseObserver) {
    responseObserver.onNext(capabilities);
    responseObserver.onCompleted();
  }
}
