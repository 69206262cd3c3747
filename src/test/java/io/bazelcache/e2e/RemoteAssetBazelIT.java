package io.bazelcache.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import io.bazelcache.asset.Origin;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Bazel 7.7.1 fetches an {@code http_archive} through bazel-cache's Remote Asset API
 * ({@code --experimental_remote_downloader}), then builds again with the origin gone and its output base and
 * repository cache deleted, and finally with no cache server at all from a repository cache written by
 * {@code bazel-cache assets export}.
 */
class RemoteAssetBazelIT {
  @Test
  @Timeout(value = 30, unit = TimeUnit.MINUTES)
  void httpArchiveThroughTheCacheThenFromAnExportedRepositoryCache() throws Exception {
    Bazel.Version version = Bazel.Version.BAZEL_7_7_1;
    E2e.assumePrerequisite(version.unavailableReason() == null, version.unavailableReason());
    Path runDir = E2e.runDir("RemoteAssetBazelIT");
    Path logs = runDir.resolve("logs");
    String salt = UUID.randomUUID().toString();

    // The archive: dep-1.0/{BUILD,msg.txt}, a genrule over a source file.
    Path src = runDir.resolve("archive-src");
    Path dep = src.resolve("dep-1.0");
    Files.createDirectories(dep);
    Files.writeString(dep.resolve("msg.txt"), "hello from the archive " + salt + "\n");
    Files.writeString(dep.resolve("BUILD"), """
        genrule(
            name = "greeting",
            srcs = ["msg.txt"],
            outs = ["greeting.txt"],
            cmd = "tr a-z A-Z < $< > $@",
            visibility = ["//visibility:public"],
        )
        """);
    Path tarGz = runDir.resolve("dep-1.0.tar.gz");
    Process tar = new ProcessBuilder("tar", "-czf", tarGz.toString(), "-C", src.toString(), "dep-1.0")
        .inheritIO().start();
    assertThat(tar.waitFor()).isZero();
    byte[] archive = Files.readAllBytes(tarGz);

    // Repository caches and the export live inside the workspace: Bazel 7 runs in a chroot that sees it.
    Path ws = runDir.resolve("ws");
    Files.createDirectories(ws);
    Files.writeString(ws.resolve(".bazelignore"), "rc1\nrc2\nexported\n");
    Files.writeString(ws.resolve("BUILD"), """
        genrule(
            name = "use",
            srcs = ["@dep//:greeting"],
            outs = ["out.txt"],
            cmd = "cat $< > $@",
        )
        """);

    String grpc = "127.0.0.1:" + E2e.freePort();
    Path cacheDir = runDir.resolve("cache");
    String expected = "HELLO FROM THE ARCHIVE " + salt.toUpperCase() + "\n";
    try (Origin origin = new Origin();
        Bazel bazel = Bazel.open(version, TestWorkspace.at(ws), logs)) {
      origin.files.put("/releases/dep-1.0.tar.gz", archive);
      Files.writeString(ws.resolve("WORKSPACE"), """
          workspace(name = "assets_e2e")
          load("@bazel_tools//tools/build_defs/repo:http.bzl", "http_archive")
          http_archive(
              name = "dep",
              urls = ["%s"],
              sha256 = "%s",
              strip_prefix = "dep-1.0",
          )
          """.formatted(origin.url("/releases/dep-1.0.tar.gz"), E2e.sha256Hex(archive)));

      try (ServerProcess server = ServerProcess.start(cacheDir, 1, logs,
          "--grpc_address", grpc, "--experimental_remote_asset_api")) {
        List<String> remote = List.of("--remote_cache=grpc://" + grpc,
            "--experimental_remote_downloader=grpc://" + grpc,
            "--experimental_remote_downloader_local_fallback=false");

        // 1. Through the downloader: the cache fetches the archive from the origin.
        build(bazel, remote, ws.resolve("rc1"));
        assertThat(output(bazel)).isEqualTo(expected);
        assertThat(origin.hits("/releases/dep-1.0.tar.gz")).isEqualTo(1);

        // 2. Origin gone, output base and repository cache gone: the cache alone serves the archive.
        origin.close();
        bazel.run("clean", List.of("--expunge")).assertSuccess();
        build(bazel, remote, ws.resolve("rc2"));
        assertThat(output(bazel)).isEqualTo(expected);
        assertThat(origin.hits("/releases/dep-1.0.tar.gz")).isEqualTo(1);
      }

      // 3. No server, no origin: export the cached archives as a repository cache and build from it.
      Path exported = ws.resolve("exported");
      Process export = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
          "-jar", ServerProcess.jar().toString(), "--dir", cacheDir.toString(), "--max_size", "1",
          "assets", "export", "--repository-cache", exported.toString())
          .redirectErrorStream(true).redirectOutput(logs.resolve("assets-export.log").toFile()).start();
      assertThat(export.waitFor(120, TimeUnit.SECONDS)).isTrue();
      assertThat(export.exitValue()).as(E2e.tail(logs.resolve("assets-export.log"), 4000)).isZero();
      assertThat(Files.readAllBytes(exported.resolve("content_addressable/sha256")
          .resolve(E2e.sha256Hex(archive)).resolve("file"))).isEqualTo(archive);
      bazel.run("clean", List.of("--expunge")).assertSuccess();
      build(bazel, List.of(), exported);
      assertThat(output(bazel)).isEqualTo(expected);
    }
  }

  private static void build(Bazel bazel, List<String> flags, Path repositoryCache) {
    List<String> args = new java.util.ArrayList<>(flags);
    args.add("--repository_cache=" + repositoryCache);
    args.add("//:use");
    bazel.build(args.toArray(String[]::new)).assertSuccess();
  }

  private static String output(Bazel bazel) throws IOException {
    return Files.readString(bazel.infoPath("bazel-bin").resolve("out.txt"));
  }
}
