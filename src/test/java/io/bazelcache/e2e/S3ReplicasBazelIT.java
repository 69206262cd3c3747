package io.bazelcache.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import io.bazelcache.storage.s3.S3Testing;
import io.bazelcache.testing.S3ProxyProcess;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * Replicas of bazel-cache, each with its own local directory, sharing one bucket on a real S3 server (S3Proxy as a
 * separate process, SigV4 access keys), driven by real Bazel clients: what one replica uploads, another serves;
 * warm builds do not repeat existence checks; an S3 outage during a build and during uploads costs nothing but
 * remote hits, and the queued uploads arrive once S3 is back.
 *
 * <p>Run: {@code ./mvnw -B verify -Dtest=NoSuchTest -Dsurefire.failIfNoSpecifiedTests=false -Dit.test=S3ReplicasBazelIT
 * -Dbazelcache.requireE2e=true}. The numbers (S3 requests per warm build, warm build times) are printed as
 * {@code [e2e-s3] ...} lines.
 */
class S3ReplicasBazelIT {
  private static final Duration UPLOAD_TIMEOUT = Duration.ofMinutes(4);

  private final List<AutoCloseable> toClose = new ArrayList<>();

  @AfterEach
  void closeAll() throws Exception {
    for (int i = toClose.size() - 1; i >= 0; i--) {
      toClose.get(i).close();
    }
  }

  private <T extends AutoCloseable> T closeLater(T c) {
    toClose.add(c);
    return c;
  }

  private S3Bucket newBucket(S3ProxyProcess s3) {
    String bucket = S3Testing.newBucketName();
    try (S3Client raw = S3Testing.rawClient(s3)) {
      S3Testing.createBucket(raw, bucket);
    }
    return new S3Bucket(s3, bucket);
  }

  private static String[] args(List<String> s3Flags, String... more) {
    List<String> all = new ArrayList<>(List.of(more));
    all.addAll(s3Flags);
    return all.toArray(String[]::new);
  }

  /**
   * Bazel 7.7.1 over gRPC: a cold build through replica A fills the bucket; after {@code bazel clean} a build
   * through replica B (empty local directory) is served entirely from the cache with identical outputs. Then the
   * existence cache: two warm builds through replica C with {@code --remote_download_minimal} (outputs stay in S3,
   * so the AC completeness check has to ask S3 about them): the second sends no HEAD and no GET at all.
   */
  @Test
  @Timeout(value = 40, unit = TimeUnit.MINUTES)
  void replicasShareOneBucketOverGrpc() throws IOException {
    Bazel.Version version = Bazel.Version.BAZEL_7_7_1;
    E2e.assumePrerequisite(version.unavailableReason() == null, version.unavailableReason());
    Path runDir = E2e.runDir("S3ReplicasBazelIT-grpc");
    Path logs = runDir.resolve("logs");
    S3ProxyProcess s3 = closeLater(new S3ProxyProcess(runDir.resolve("s3proxy"), S3ProxyProcess.freePort()))
        .withMetrics();
    s3.start();
    S3Bucket bucket = newBucket(s3);

    String grpcA = "127.0.0.1:" + E2e.freePort();
    ServerProcess a = closeLater(ServerProcess.start(runDir.resolve("cacheA"), 1, logs,
        args(bucket.serverFlags(), "--grpc_address", grpcA)));
    String grpcB = "127.0.0.1:" + E2e.freePort();
    ServerProcess b = closeLater(ServerProcess.start(runDir.resolve("cacheB"), 1, logs,
        args(bucket.serverFlags(), "--grpc_address", grpcB)));

    TestWorkspace workspace = TestWorkspace.write(runDir, UUID.randomUUID().toString());
    Bazel bazel = closeLater(Bazel.open(version, workspace, logs));

    Bazel.Result cold = bazel.build("--remote_cache=grpc://" + grpcA, "//...").assertSuccess();
    int spawns = spawns(cold);
    assertThat(hits(cold)).as("hits in the cold build: %s", cold.processes()).isZero();
    assertThat(spawns).isGreaterThanOrEqualTo(TestWorkspace.MIN_SPAWNS);
    Path bin = bazel.infoPath("bazel-bin");
    Map<String, byte[]> built = readOutputs(bin);

    // A's uploads have drained once every entry of its local directory is in the bucket.
    Set<String> expected = S3Bucket.expectedKeys(runDir.resolve("cacheA"));
    assertThat(expected).as("entries of replica A").hasSizeGreaterThan(spawns);
    Duration drain = bucket.awaitKeys(expected, UPLOAD_TIMEOUT);
    Map<String, Integer> objects = bucket.assertLayoutAndContent();
    System.out.printf("[e2e-s3] replica A uploaded %d entries, all in the bucket %d ms after the build; objects %s%n",
        expected.size(), drain.toMillis(), objects);

    // Replica B has an empty local directory: everything comes from the bucket. Both replicas have talked to S3
    // before the timed builds (as long-running replicas have), so neither time includes the S3 client's warm-up.
    warmUp(a);
    warmUp(b);
    bazel.clean().assertSuccess();
    Map<String, Long> before = bucket.settledRequestCounts();
    Map<String, Long> microsBefore = bucket.requestMicros();
    long start = System.nanoTime();
    Bazel.Result throughB = bazel.build("--remote_cache=grpc://" + grpcB, "//...").assertSuccess();
    long emptyReplicaMillis = (System.nanoTime() - start) / 1_000_000;
    Map<String, Long> emptyReplicaRequests = S3Bucket.delta(before, bucket.settledRequestCounts());
    Map<String, Long> emptyReplicaS3Micros = S3Bucket.delta(microsBefore, bucket.requestMicros());
    assertAllHits(throughB, spawns);
    assertThat(readOutputs(bin)).as("outputs through replica B").containsOnlyKeys(built.keySet())
        .allSatisfy((name, bytes) -> assertThat(bytes).as(name).isEqualTo(built.get(name)));
    assertThat(S3Bucket.requests(emptyReplicaRequests, "GET"))
        .as("S3 GETs of replica B, which had nothing locally: %s", emptyReplicaRequests).isGreaterThan(0);

    // Replica A has everything locally: no S3 request at all.
    bazel.clean().assertSuccess();
    before = bucket.settledRequestCounts();
    start = System.nanoTime();
    Bazel.Result throughA = bazel.build("--remote_cache=grpc://" + grpcA, "//...").assertSuccess();
    long fullReplicaMillis = (System.nanoTime() - start) / 1_000_000;
    Map<String, Long> fullReplicaRequests = S3Bucket.delta(before, bucket.settledRequestCounts());
    assertAllHits(throughA, spawns);
    assertThat(fullReplicaRequests).as("S3 requests of a warm build through the replica that has everything")
        .isEmpty();

    // The existence cache: outputs that stay in S3 (remote_download_minimal) are HEADed once, not per build.
    String grpcC = "127.0.0.1:" + E2e.freePort();
    ServerProcess c = closeLater(ServerProcess.start(runDir.resolve("cacheC"), 1, logs,
        args(bucket.serverFlags(), "--grpc_address", grpcC)));
    List<Map<String, Long>> minimal = new ArrayList<>();
    for (int i = 0; i < 2; i++) {
      bazel.clean().assertSuccess();
      before = bucket.settledRequestCounts();
      Bazel.Result r = bazel.build("--remote_cache=grpc://" + grpcC, "--remote_download_minimal", "//...")
          .assertSuccess();
      minimal.add(S3Bucket.delta(before, bucket.settledRequestCounts()));
      assertAllHits(r, spawns);
    }
    assertThat(S3Bucket.requests(minimal.get(0), "HEAD"))
        .as("HEADs of the first minimal build through replica C (outputs not local): %s", minimal.get(0))
        .isGreaterThan(0);
    assertThat(S3Bucket.requests(minimal.get(1), "HEAD"))
        .as("HEADs of the second minimal build through replica C: %s", minimal.get(1)).isZero();
    assertThat(S3Bucket.requests(minimal.get(1), "GET"))
        .as("GETs of the second minimal build through replica C: %s", minimal.get(1)).isZero();

    System.out.printf("[e2e-s3] %s over gRPC, %d cacheable actions, %d objects in the bucket%n",
        version, spawns, expected.size());
    System.out.printf("[e2e-s3] warm build through replica B (empty local dir): %d ms, S3 requests %s,"
        + " S3Proxy busy answering them (µs) %s%n", emptyReplicaMillis, emptyReplicaRequests, emptyReplicaS3Micros);
    System.out.printf("[e2e-s3] Bazel's own timing: through B %s; through A %s%n", elapsed(throughB),
        elapsed(throughA));
    System.out.printf("[e2e-s3] warm build through replica A (everything local): %d ms, S3 requests %s%n",
        fullReplicaMillis, fullReplicaRequests);
    System.out.printf("[e2e-s3] --remote_download_minimal through replica C: 1st build S3 requests %s, 2nd %s%n",
        minimal.get(0), minimal.get(1));
    a.close();
    b.close();
    c.close();
  }

  /**
   * Bazel 4.2.3 over HTTP: S3 is killed as soon as replica A's first upload lands, in the middle of the cold build.
   * The build succeeds; with S3 still down a build through replica B (empty) executes locally and uploads to B.
   * Both replicas keep answering. S3 restarts on the same port and data directory; the queued and retried uploads
   * of both replicas arrive, every object is valid, and a build through a fresh replica C is all remote hits with
   * identical outputs.
   */
  @Test
  @Timeout(value = 40, unit = TimeUnit.MINUTES)
  void s3OutageDuringBuildAndUploads() throws Exception {
    Bazel.Version version = Bazel.Version.BAZEL_4_2_3;
    E2e.assumePrerequisite(version.unavailableReason() == null, version.unavailableReason());
    Path runDir = E2e.runDir("S3ReplicasBazelIT-outage");
    Path logs = runDir.resolve("logs");
    S3ProxyProcess s3 = closeLater(new S3ProxyProcess(runDir.resolve("s3proxy"), S3ProxyProcess.freePort()));
    s3.start();
    S3Bucket bucket = newBucket(s3);
    ServerProcess a = closeLater(ServerProcess.start(runDir.resolve("cacheA"), 1, logs,
        args(bucket.serverFlags())));
    TestWorkspace workspace = TestWorkspace.write(runDir, UUID.randomUUID().toString());
    Bazel bazel = closeLater(Bazel.open(version, workspace, logs));

    CompletableFuture<Bazel.Result> coldBuild = CompletableFuture.supplyAsync(
        () -> bazel.build("--remote_cache=" + a.baseUri(), "//..."),
        r -> Thread.ofVirtual().start(r));
    long deadline = System.nanoTime() + Duration.ofMinutes(10).toNanos();
    while (bucket.keys().isEmpty() && !coldBuild.isDone() && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    boolean buildWasRunning = !coldBuild.isDone();
    s3.kill();
    int objectsBeforeKill = bucket.keys().size(); // after the kill: uploads land concurrently until then
    Bazel.Result cold = coldBuild.get(Bazel.COMMAND_TIMEOUT.toMinutes() + 1, TimeUnit.MINUTES).assertSuccess();
    assertThat(buildWasRunning).as("the cold build was still running when S3 was killed (after %d uploads)",
        objectsBeforeKill).isTrue();
    int spawns = spawns(cold);
    assertThat(hits(cold)).isZero();
    Path bin = bazel.infoPath("bazel-bin");
    Map<String, byte[]> built = readOutputs(bin);
    assertThat(status(a)).as("replica A's /status with S3 down").isEqualTo(200);

    // S3 still down: replica B (empty) cannot get anything, the actions run locally, B queues their uploads.
    ServerProcess b = closeLater(ServerProcess.start(runDir.resolve("cacheB"), 1, logs, args(bucket.serverFlags())));
    bazel.clean().assertSuccess();
    long start = System.nanoTime();
    Bazel.Result local = bazel.build("--remote_cache=" + b.baseUri(), "//...").assertSuccess();
    long outageBuildMillis = (System.nanoTime() - start) / 1_000_000;
    assertThat(hits(local)).as("remote hits through B while S3 is down: %s", local.processes()).isZero();
    assertThat(spawns(local)).isEqualTo(spawns);
    Map<String, byte[]> rebuilt = readOutputs(bin);
    for (String genrule : List.of("gen1.txt", "gen2.txt", "gen3.txt", "gen4.txt", "gen5.txt", "joined.txt")) {
      assertThat(rebuilt.get(genrule)).as("%s rebuilt locally", genrule).isEqualTo(built.get(genrule));
    }
    assertThat(status(b)).as("replica B's /status with S3 down").isEqualTo(200);
    assertThat(bucket.keys()).as("S3 is down: nothing new in the bucket").hasSize(objectsBeforeKill);

    // S3 back on the same port and data directory: the uploads of both replicas arrive.
    s3.start();
    Set<String> expected = new TreeSet<>(S3Bucket.expectedKeys(runDir.resolve("cacheA")));
    expected.addAll(S3Bucket.expectedKeys(runDir.resolve("cacheB")));
    Duration arrival = bucket.awaitKeys(expected, UPLOAD_TIMEOUT);
    Map<String, Integer> objects = bucket.assertLayoutAndContent();

    // A fresh replica serves everything from the bucket, byte for byte.
    ServerProcess c = closeLater(ServerProcess.start(runDir.resolve("cacheC"), 1, logs, args(bucket.serverFlags())));
    bazel.clean().assertSuccess();
    Bazel.Result throughC = bazel.build("--remote_cache=" + c.baseUri(), "//...").assertSuccess();
    assertAllHits(throughC, spawns);
    Map<String, byte[]> fromC = readOutputs(bin);
    for (String output : TestWorkspace.OUTPUTS) {
      assertThat(fromC.get(output)).as("%s through replica C", output).isEqualTo(rebuilt.get(output));
    }
    System.out.printf("[e2e-s3] %s over HTTP: S3 killed after %d objects during the cold build; build through B with"
            + " S3 down %d ms (%s); after the restart %d objects arrived within %d ms (%s)%n",
        version, objectsBeforeKill, outageBuildMillis, local.processes(), expected.size(), arrival.toMillis(),
        objects);
    a.close();
    b.close();
    c.close();
  }

  /** Bazel's "Elapsed time: ..., Critical Path: ..." line. */
  private static String elapsed(Bazel.Result r) {
    return r.output().lines().filter(l -> l.contains("Elapsed time:")).reduce((x, y) -> y)
        .map(l -> l.substring(l.indexOf("Elapsed time:"))).orElse("?");
  }

  private static int spawns(Bazel.Result r) {
    return r.totalProcesses() - r.processes().getOrDefault("internal", 0);
  }

  private static int hits(Bazel.Result r) {
    return r.processes().getOrDefault("remote cache hit", 0);
  }

  private static void assertAllHits(Bazel.Result r, int spawns) {
    assertThat(spawns(r)).as("non-internal actions of `bazel %s`: %s", r.command(), r.processes()).isEqualTo(spawns);
    assertThat(hits(r)).as("remote cache hits of `bazel %s`: %s (log %s)", r.command(), r.processes(), r.log())
        .isEqualTo(spawns);
    assertThat(r.output().lines().filter(l -> l.contains("Remote Cache") || l.contains("remote cache:")))
        .as("Bazel's complaints about the remote cache (log %s)", r.log()).isEmpty();
  }

  /** Twenty GETs of absent CAS blobs over HTTP: each is a local miss and an S3 GET that finds nothing. */
  private static void warmUp(ServerProcess server) {
    HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    for (int i = 0; i < 20; i++) {
      String hash = E2e.sha256Hex(UUID.randomUUID().toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
      try {
        int code = client.send(HttpRequest.newBuilder(server.baseUri().resolve("/cas/" + hash))
            .timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.discarding()).statusCode();
        assertThat(code).as("GET of an absent blob from %s", server).isEqualTo(404);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
    }
  }

  private static int status(ServerProcess server) {
    try {
      HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
      return client.send(HttpRequest.newBuilder(S3Bucket.statusUri(server)).timeout(Duration.ofSeconds(10)).build(),
          HttpResponse.BodyHandlers.discarding()).statusCode();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  private static Map<String, byte[]> readOutputs(Path bin) {
    Map<String, byte[]> outputs = new LinkedHashMap<>();
    for (String output : TestWorkspace.OUTPUTS) {
      try {
        outputs.put(output, Files.readAllBytes(bin.resolve(output)));
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return outputs;
  }
}
