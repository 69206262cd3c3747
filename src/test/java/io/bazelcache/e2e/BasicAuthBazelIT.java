package io.bazelcache.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import io.bazelcache.auth.HtpasswdEntries;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Bazel 7.7.1 against a server with {@code --htpasswd_file}: the right credentials give a full cache round trip; a
 * wrong password gets no cache hits and stores nothing. Over HTTP the credentials are in the URL
 * ({@code http://user:pass@host:port}); over gRPC they go in {@code --remote_header=Authorization=Basic ...}, because
 * Bazel 7.7.1 does not send the user info of a {@code grpc://user:pass@host} URL (the capabilities query then fails
 * with UNAUTHENTICATED; seen in this test's first version).
 */
class BasicAuthBazelIT {
  @ParameterizedTest
  @ValueSource(strings = {"grpc", "http"})
  @Timeout(value = 30, unit = TimeUnit.MINUTES)
  void credentialsInTheUrlWorkAndAWrongPasswordGetsNothing(String scheme) throws Exception {
    Bazel.Version version = Bazel.Version.BAZEL_7_7_1;
    E2e.assumePrerequisite(version.unavailableReason() == null, version.unavailableReason());
    Path runDir = E2e.runDir("BasicAuthBazelIT-" + scheme);
    Files.createDirectories(runDir);
    Path htpasswd = Files.writeString(runDir.resolve("htpasswd"),
        HtpasswdEntries.line("builder", "s3cret", HtpasswdEntries.Format.BCRYPT) + "\n");
    String grpcAddress = "127.0.0.1:" + E2e.freePort();
    try (ServerProcess server = ServerProcess.start(runDir.resolve("cache"), 1, runDir.resolve("logs"),
        "--grpc_address", grpcAddress, "--htpasswd_file", htpasswd.toString())) {
      String hostPort = scheme.equals("grpc") ? grpcAddress : "127.0.0.1:" + server.port();
      BazelRemoteCacheScenario.buildCleanBuild(version, url(scheme, hostPort, "s3cret"), runDir.resolve("good"),
          java.util.List.of(), header(scheme, "s3cret"));

      String before = numFiles(server);
      // The same kind of build with a wrong password: Bazel reports the refusal, nothing comes from or goes to the cache.
      TestWorkspace workspace = TestWorkspace.write(runDir.resolve("wrong"), UUID.randomUUID().toString());
      try (Bazel bazel = Bazel.open(version, workspace, runDir.resolve("logs"))) {
        java.util.List<String> args = new java.util.ArrayList<>();
        args.add("--remote_cache=" + url(scheme, hostPort, "wrong"));
        args.addAll(header(scheme, "wrong"));
        args.add("//...");
        Bazel.Result wrong = bazel.build(args.toArray(String[]::new));
        System.out.printf("[e2e] %s wrong password: exit %d%n%s%n", scheme, wrong.exitCode(),
            wrong.output().lines().filter(l -> l.contains("ERROR") || l.contains("WARNING") || l.contains("processes"))
                .limit(20).reduce("", (a, b) -> a + b + "\n"));
        // Bazel builds locally and warns; nothing is a cache hit.
        assertThat(wrong.exitCode()).as("log %s", wrong.log()).isZero();
        Map<String, Integer> parts = wrong.processes();
        assertThat(parts.getOrDefault("remote cache hit", 0)).as("%s", parts).isZero();
        assertThat(parts.getOrDefault("local", 0)).as("%s", parts).isGreaterThanOrEqualTo(TestWorkspace.MIN_SPAWNS);
        assertThat(wrong.output()).contains(scheme.equals("grpc")
            ? "WARNING: Remote Cache: UNAUTHENTICATED: valid basic authentication credentials required"
            : "WARNING: Remote Cache: 401 Unauthorized");
      }
      assertThat(numFiles(server)).as("entries in the cache after the wrong-password build").isEqualTo(before);
    }
  }

  private static String url(String scheme, String hostPort, String password) {
    return scheme.equals("grpc") ? "grpc://" + hostPort : "http://builder:" + password + "@" + hostPort;
  }

  /** The gRPC variant's credentials (the HTTP variant has them in its URL). */
  private static java.util.List<String> header(String scheme, String password) {
    String value = "Basic " + java.util.Base64.getEncoder().encodeToString(("builder:" + password).getBytes());
    return scheme.equals("grpc") ? java.util.List.of("--remote_header=Authorization=" + value) : java.util.List.of();
  }

  /** {@code NumFiles} from the open {@code /status} page. */
  private static String numFiles(ServerProcess server) throws Exception {
    String body = java.net.http.HttpClient.newHttpClient().send(
        java.net.http.HttpRequest.newBuilder(server.baseUri().resolve("/status")).build(),
        java.net.http.HttpResponse.BodyHandlers.ofString()).body();
    java.util.regex.Matcher m = java.util.regex.Pattern.compile("\"NumFiles\": (\\d+)").matcher(body);
    assertThat(m.find()).as(body).isTrue();
    return m.group(1);
  }
}
