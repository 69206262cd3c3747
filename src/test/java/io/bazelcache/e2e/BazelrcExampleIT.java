package io.bazelcache.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@code deploy/bazelrc.example}, as the workspace's .bazelrc of a real Bazel 7.7.1, against bazel-cache: only the
 * endpoints and the disk cache directory are overridden on the command line (the cluster names do not resolve
 * here). Every config of the example is used, so Bazel accepts all its flags, and:
 *
 * <ul>
 *   <li>{@code --config=ci-internal} fills the remote cache and its disk cache in a cold build;
 *   <li>after {@code bazel clean}, {@code --config=ci} (no disk cache) gets every action from the remote cache;
 *   <li>after another clean, {@code --config=remote --config=remote-asset} does too;
 *   <li>with the server stopped, {@code --config=ci-internal} still builds, every action a disk cache hit
 *       (the disk cache fallback), with Bazel only warning about the remote cache.
 * </ul>
 */
class BazelrcExampleIT {
  @Test
  @Timeout(value = 30, unit = TimeUnit.MINUTES)
  void everyConfigOfTheExampleWorksWithBazel7() throws IOException {
    Bazel.Version version = Bazel.Version.BAZEL_7_7_1;
    E2e.assumePrerequisite(version.unavailableReason() == null, version.unavailableReason());
    Path runDir = E2e.runDir("BazelrcExampleIT");
    TestWorkspace workspace = TestWorkspace.write(runDir, UUID.randomUUID().toString());
    Path ws = workspace.root();
    Files.copy(E2e.projectDir().resolve("deploy/bazelrc.example"), ws.resolve(".bazelrc"));
    // The disk cache must be inside the workspace: only the workspace is bind-mounted into Bazel 7's chroot.
    Files.writeString(ws.resolve(".bazelignore"), "disk-cache\n");
    String diskCache = "--disk_cache=" + ws.toRealPath().resolve("disk-cache");
    String grpc = "grpc://127.0.0.1:" + E2e.freePort();

    ServerProcess server = ServerProcess.start(runDir.resolve("cache"), 1, runDir.resolve("logs"),
        "--grpc_address", grpc.substring("grpc://".length()));
    try (Bazel bazel = Bazel.open(version, workspace, runDir.resolve("logs"))) {
      Bazel.Result cold = bazel.build("--config=ci-internal", "--remote_cache=" + grpc, diskCache, "//...")
          .assertSuccess();
      Map<String, Integer> coldParts = cold.processes();
      int spawns = cold.totalProcesses() - coldParts.getOrDefault("internal", 0);
      assertThat(spawns).as("actions of the cold build: %s", coldParts).isGreaterThanOrEqualTo(TestWorkspace.MIN_SPAWNS);
      assertThat(coldParts).as("cold build").doesNotContainKeys("remote cache hit", "disk cache hit");
      assertThat(cold.output()).as("flags of the example's configs applied (log %s)", cold.log())
          .doesNotContain("Unrecognized option").doesNotContain("ERROR:");

      bazel.clean().assertSuccess();
      // --color=no after the config: the test reads Bazel's summary line, which --color=yes decorates.
      Bazel.Result ci = bazel.build("--config=ci", "--remote_cache=" + grpc, "--color=no", "//...").assertSuccess();
      assertThat(ci.processes().getOrDefault("remote cache hit", 0)).as("--config=ci after clean: %s (log %s)",
          ci.processes(), ci.log()).isEqualTo(spawns);

      bazel.clean().assertSuccess();
      Bazel.Result remote = bazel.build("--config=remote", "--config=remote-asset", "--remote_cache=" + grpc,
          "--experimental_remote_downloader=" + grpc, "--disk_cache=", "//...").assertSuccess();
      assertThat(remote.processes().getOrDefault("remote cache hit", 0))
          .as("--config=remote after clean: %s (log %s)", remote.processes(), remote.log()).isEqualTo(spawns);

      int exit = server.stop();
      assertThat(exit).as("server exit status after SIGTERM").isZero();
      bazel.clean().assertSuccess();
      Bazel.Result fallback = bazel.build("--config=ci-internal", "--remote_cache=" + grpc, diskCache, "//...")
          .assertSuccess();
      assertThat(fallback.processes().getOrDefault("disk cache hit", 0))
          .as("remote cache down: the disk cache serves every action: %s (log %s)", fallback.processes(),
              fallback.log())
          .isEqualTo(spawns);
      System.out.printf("[e2e] BazelrcExampleIT: cold %s, ci %s, remote %s, fallback %s%n", coldParts,
          ci.processes(), remote.processes(), fallback.processes());
    } finally {
      server.close();
    }
  }
}
