package io.bazelcache.e2e;

import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;
import java.util.List;

/** Real Bazel clients (4.2.3 and 7.7.1) use bazel-cache as their remote cache over gRPC (REAPI). */
class GrpcCacheBazelIT {
  @ParameterizedTest
  @EnumSource(Bazel.Version.class)
  @Timeout(value = 30, unit = TimeUnit.MINUTES)
  void secondBuildAfterCleanIsServedEntirelyFromTheCache(Bazel.Version version) {
    E2e.assumePrerequisite(version.unavailableReason() == null, version.unavailableReason());
    Path runDir = E2e.runDir("GrpcCacheBazelIT-" + version.label);
    String grpcAddress = "127.0.0.1:" + E2e.freePort();
    try (ServerProcess server = ServerProcess.start(runDir.resolve("cache"), 1, runDir.resolve("logs"),
        "--grpc_address", grpcAddress)) {
      BazelRemoteCacheScenario.buildCleanBuild(version, "grpc://" + grpcAddress, runDir);
    }
  }

  /**
   * Bazel 7.7.1 over gRPC with build without the bytes, zstd transfers, and BLAKE3 digests: each must still
   * give an all-hits second build.
   */
  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"minimal", "compression", "blake3"})
  @Timeout(value = 30, unit = TimeUnit.MINUTES)
  void bazel7Variants(String variant) {
    Bazel.Version version = Bazel.Version.BAZEL_7_7_1;
    E2e.assumePrerequisite(version.unavailableReason() == null, version.unavailableReason());
    Path runDir = E2e.runDir("GrpcCacheBazelIT-" + variant);
    String grpcAddress = "127.0.0.1:" + E2e.freePort();
    List<String> startup = variant.equals("blake3") ? List.of("--digest_function=blake3") : List.of();
    List<String> flags = switch (variant) {
      case "minimal" -> List.of("--remote_download_minimal");
      case "compression" -> List.of("--remote_cache_compression");
      default -> List.of("--remote_cache_compression");
    };
    try (ServerProcess server = ServerProcess.start(runDir.resolve("cache"), 1, runDir.resolve("logs"),
        "--grpc_address", grpcAddress)) {
      BazelRemoteCacheScenario.buildCleanBuild(version, "grpc://" + grpcAddress, runDir, startup, flags);
    }
  }
}
