package io.bazelcache.e2e;

import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Self-check of the Bazel harness against a cache we did not write (nginx WebDAV): proves that the workspace,
 * the Bazel runners and the cache-hit accounting of {@link BazelRemoteCacheScenario} work, independently of
 * bazel-cache. Opt-in: {@code ./mvnw verify -Dbazelcache.e2e.nginx=true -Dit.test=NginxWebDavBazelIT}
 * (needs {@code apt-get install -y nginx-light libnginx-mod-http-dav-ext}).
 */
class NginxWebDavBazelIT {
  @ParameterizedTest
  @EnumSource(Bazel.Version.class)
  @Timeout(value = 30, unit = TimeUnit.MINUTES)
  void secondBuildAfterCleanIsServedEntirelyFromNginx(Bazel.Version version) {
    Assumptions.assumeTrue(Boolean.getBoolean("bazelcache.e2e.nginx"), "opt-in: -Dbazelcache.e2e.nginx=true");
    E2e.assumePrerequisite(NginxWebDav.available(), "nginx with WebDAV (/usr/sbin/nginx)");
    E2e.assumePrerequisite(version.unavailableReason() == null, version.unavailableReason());
    Path runDir = E2e.runDir("NginxWebDavBazelIT-" + version.label);
    try (NginxWebDav nginx = NginxWebDav.start(Path.of("/tmp", "bce2e-nginx-" + runDir.getFileName()))) {
      BazelRemoteCacheScenario.buildCleanBuild(version, nginx.baseUri().toString(), runDir);
    }
  }
}
