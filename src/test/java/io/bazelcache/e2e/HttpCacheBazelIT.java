package io.bazelcache.e2e;

import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Real Bazel clients (4.2.3 and 7.7.1) use bazel-cache, started from its jar, as their HTTP remote cache. */
class HttpCacheBazelIT {
  @ParameterizedTest
  @EnumSource(Bazel.Version.class)
  @Timeout(value = 30, unit = TimeUnit.MINUTES)
  void secondBuildAfterCleanIsServedEntirelyFromTheCache(Bazel.Version version) {
    E2e.assumePrerequisite(version.unavailableReason() == null, version.unavailableReason());
    Path runDir = E2e.runDir("HttpCacheBazelIT-" + version.label);
    try (ServerProcess server = ServerProcess.start(runDir.resolve("cache"), 1, runDir.resolve("logs"))) {
      BazelRemoteCacheScenario.buildCleanBuild(version, server.baseUri().toString(), runDir);
    }
  }
}
