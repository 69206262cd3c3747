package io.bazelcache.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * The end-to-end check of a remote cache with a real Bazel: a cold build that fills the cache, {@code bazel
 * clean}, then a second build in which every action must be a remote cache hit and whose outputs must be
 * byte-identical to the first build's.
 */
final class BazelRemoteCacheScenario {
  private BazelRemoteCacheScenario() {}

  /** {@code remoteCache} is the URL for {@code --remote_cache}: http://... or grpc://... */
  static void buildCleanBuild(Bazel.Version version, String remoteCache, Path runDir) {
    buildCleanBuild(version, remoteCache, runDir, List.of(), List.of());
  }

  /**
   * As {@link #buildCleanBuild(Bazel.Version, String, Path)}, with Bazel startup options and extra build flags for
   * both builds. With {@code --remote_download_minimal} the second build leaves its outputs in the cache, so
   * only the hit count is checked there; the bytes are then fetched by a third build with
   * {@code --remote_download_toplevel} and compared.
   */
  static void buildCleanBuild(Bazel.Version version, String remoteCache, Path runDir, List<String> startupOptions,
      List<String> buildFlags) {
    TestWorkspace workspace = TestWorkspace.write(runDir, UUID.randomUUID().toString());
    List<String> args = new ArrayList<>();
    args.add("--remote_cache=" + remoteCache);
    args.addAll(buildFlags);
    args.add("//...");
    boolean minimal = buildFlags.contains("--remote_download_minimal");
    try (Bazel bazel = Bazel.open(version, workspace, runDir.resolve("logs"), startupOptions)) {
      Bazel.Result first = bazel.build(args.toArray(String[]::new)).assertSuccess();
      Map<String, Integer> firstParts = first.processes();
      int spawns = first.totalProcesses() - firstParts.getOrDefault("internal", 0);
      assertThat(firstParts.getOrDefault("remote cache hit", 0))
          .as("cache hits in the cold build (the workspace is salted, nothing can be cached yet): %s", firstParts)
          .isZero();
      assertThat(spawns).as("actions executed by the cold build: %s", firstParts)
          .isGreaterThanOrEqualTo(TestWorkspace.MIN_SPAWNS);
      assertNoRemoteCacheWarnings(first);

      Path bin = bazel.infoPath("bazel-bin");
      Map<String, byte[]> built = readOutputs(bin);

      bazel.clean().assertSuccess();
      assertThat(bin.resolve(TestWorkspace.OUTPUTS.get(0))).as("bazel clean removes the outputs").doesNotExist();

      Bazel.Result second = bazel.build(args.toArray(String[]::new)).assertSuccess();
      Map<String, Integer> secondParts = second.processes();
      int secondSpawns = second.totalProcesses() - secondParts.getOrDefault("internal", 0);
      assertThat(secondSpawns).as("non-internal actions of the second build: %s", secondParts).isEqualTo(spawns);
      assertThat(secondParts.getOrDefault("remote cache hit", 0))
          .as("remote cache hits after bazel clean, for %d cacheable actions: %s (log %s)",
              spawns, secondParts, second.log())
          .isEqualTo(spawns);
      assertNoRemoteCacheWarnings(second);

      if (minimal) {
        List<String> topLevel = new ArrayList<>(args);
        topLevel.set(topLevel.indexOf("--remote_download_minimal"), "--remote_download_toplevel");
        bazel.build(topLevel.toArray(String[]::new)).assertSuccess();
      }
      Map<String, byte[]> downloaded = readOutputs(bin);
      for (String output : TestWorkspace.OUTPUTS) {
        assertThat(downloaded.get(output)).as("%s from the cache, byte for byte", output)
            .isEqualTo(built.get(output));
      }
      System.out.printf("[e2e] %s %s with --remote_cache=%s %s: %s then %s%n", version, startupOptions, remoteCache,
          buildFlags, firstParts, secondParts);
    }
  }

  private static void assertNoRemoteCacheWarnings(Bazel.Result result) {
    assertThat(result.output().lines().filter(l -> l.contains("Remote Cache") || l.contains("remote cache:")))
        .as("Bazel's complaints about the remote cache in `bazel %s` (log %s)", result.command(), result.log())
        .isEmpty();
  }

  private static Map<String, byte[]> readOutputs(Path bin) {
    Map<String, byte[]> outputs = new LinkedHashMap<>();
    for (String output : TestWorkspace.OUTPUTS) {
      Path file = bin.resolve(output);
      assertThat(file).as("output %s", output).isRegularFile();
      try {
        outputs.put(output, Files.readAllBytes(file));
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return outputs;
  }
}
