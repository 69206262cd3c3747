package io.bazelcache.metrics;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import build.bazel.remote.execution.v2.ActionCacheGrpc;
import build.bazel.remote.execution.v2.ActionResult;
import build.bazel.remote.execution.v2.ContentAddressableStorageGrpc;
import build.bazel.remote.execution.v2.Digest;
import build.bazel.remote.execution.v2.FindMissingBlobsRequest;
import build.bazel.remote.execution.v2.FindMissingBlobsResponse;
import build.bazel.remote.execution.v2.GetActionResultRequest;
import build.bazel.remote.execution.v2.OutputFile;
import io.bazelcache.config.Config;
import io.bazelcache.config.ConfigLoader;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.server.CacheServer;
import io.bazelcache.storage.s3.S3Testing;
import io.bazelcache.testing.S3ProxyProcess;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpRequest.BodyPublishers;
import java.net.http.HttpResponse;
import java.net.http.HttpResponse.BodyHandlers;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real server (CacheServer from flags, HTTP and gRPC on 127.0.0.1), real traffic, and {@code /metrics} scraped
 * over HTTP.
 */
class MetricsEndpointTest {
  private static final String AC_SERVICE = "build.bazel.remote.execution.v2.ActionCache";
  private static final String CAS_SERVICE = "build.bazel.remote.execution.v2.ContentAddressableStorage";

  @TempDir
  Path tmp;

  private final HttpClient http = HttpClient.newHttpClient();
  private final List<AutoCloseable> toClose = new ArrayList<>();

  @AfterEach
  void tearDown() throws Exception {
    for (int i = toClose.size() - 1; i >= 0; i--) {
      toClose.get(i).close();
    }
  }

  private CacheServer start(String... extraFlags) throws Exception {
    List<String> args = new ArrayList<>(List.of("--dir=" + tmp.resolve("cache"), "--max_size=1",
        "--http_address=127.0.0.1:0", "--grpc_address=127.0.0.1:0"));
    args.addAll(List.of(extraFlags));
    Config config = ConfigLoader.load(args.toArray(String[]::new), Map.of());
    CacheServer s = CacheServer.start(config);
    toClose.add(s);
    return s;
  }

  private ManagedChannel channel(CacheServer s) {
    ManagedChannel ch = NettyChannelBuilder.forAddress("127.0.0.1", s.grpcPort()).usePlaintext().build();
    toClose.add(() -> {
      ch.shutdownNow();
      ch.awaitTermination(5, TimeUnit.SECONDS);
    });
    return ch;
  }

  private HttpResponse<byte[]> send(CacheServer s, String method, String path, byte[] body) throws Exception {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + s.httpPort() + path));
    b.method(method, body == null ? BodyPublishers.noBody() : BodyPublishers.ofByteArray(body));
    return http.send(b.build(), BodyHandlers.ofByteArray());
  }

  private Scrape scrape(CacheServer s) throws Exception {
    HttpResponse<byte[]> r = send(s, "GET", "/metrics", null);
    assertThat(r.statusCode()).isEqualTo(200);
    assertThat(r.headers().firstValue("Content-Type").orElse("")).startsWith("text/plain; version=0.0.4");
    return new Scrape(new String(r.body(), StandardCharsets.UTF_8));
  }

  private static String sha(byte[] data) {
    return io.bazelcache.digest.Digest.of(DigestFunction.SHA256, data).hash();
  }

  private static Digest digest(byte[] data) {
    return Digest.newBuilder().setHash(sha(data)).setSizeBytes(data.length).build();
  }

  private static byte[] random(int n, long seed) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    return b;
  }

  @Test
  void realTrafficShowsUpInEveryFamily() throws Exception {
    CacheServer s = start("--enable_endpoint_metrics", "--max_size_hard_limit=2");
    byte[] blob = random(10_000, 1);
    byte[] absent = random(100, 2);
    ActionResult result = ActionResult.newBuilder()
        .addOutputFiles(OutputFile.newBuilder().setPath("out/a").setDigest(digest(blob))).build();
    byte[] resultBytes = result.toByteArray();
    String acKey = sha("action".getBytes(StandardCharsets.UTF_8));
    String absentAcKey = sha("no such action".getBytes(StandardCharsets.UTF_8));

    // HTTP: 2 uploads, CAS get hit + miss, CAS HEAD hit, AC get hit + miss.
    assertThat(send(s, "PUT", "/cas/" + sha(blob), blob).statusCode()).isEqualTo(200);
    assertThat(send(s, "PUT", "/ac/" + acKey, resultBytes).statusCode()).isEqualTo(200);
    HttpResponse<byte[]> got = send(s, "GET", "/cas/" + sha(blob), null);
    assertThat(got.statusCode()).isEqualTo(200);
    assertThat(got.body()).isEqualTo(blob);
    assertThat(send(s, "GET", "/cas/" + sha(absent), null).statusCode()).isEqualTo(404);
    assertThat(send(s, "HEAD", "/cas/" + sha(blob), null).statusCode()).isEqualTo(200);
    HttpResponse<byte[]> gotAc = send(s, "GET", "/ac/" + acKey, null);
    assertThat(gotAc.statusCode()).isEqualTo(200);
    int storedAc = gotAc.body().length; // the stored (normalized) ActionResult
    assertThat(send(s, "GET", "/ac/" + absentAcKey, null).statusCode()).isEqualTo(404);
    assertThat(send(s, "GET", "/status", null).statusCode()).isEqualTo(200);

    // gRPC: AC hit + miss, FindMissingBlobs with one present and one absent blob.
    ManagedChannel ch = channel(s);
    ActionCacheGrpc.ActionCacheBlockingStub ac = ActionCacheGrpc.newBlockingStub(ch);
    ActionResult fetched = ac.getActionResult(GetActionResultRequest.newBuilder()
        .setActionDigest(Digest.newBuilder().setHash(acKey).setSizeBytes(1)).build());
    assertThat(fetched.getOutputFiles(0).getDigest()).isEqualTo(digest(blob));
    assertThatThrownBy(() -> ac.getActionResult(GetActionResultRequest.newBuilder()
        .setActionDigest(Digest.newBuilder().setHash(absentAcKey).setSizeBytes(1)).build()))
        .isInstanceOfSatisfying(StatusRuntimeException.class,
            e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.NOT_FOUND));
    FindMissingBlobsResponse fm = ContentAddressableStorageGrpc.newBlockingStub(ch).findMissingBlobs(
        FindMissingBlobsRequest.newBuilder().addBlobDigests(digest(blob)).addBlobDigests(digest(absent)).build());
    assertThat(fm.getMissingBlobDigestsList()).containsExactly(digest(absent));

    Scrape m = scrape(s);
    String inc = "bazel_remote_incoming_requests_total";

    // Store requests: exactly the ones made above. HTTP GET and HEAD → get (HEAD opens the entry for its size),
    // gRPC FindMissingBlobs → one contains per digest, GetActionResult → get.
    assertThat(m.value(inc, "method=get", "kind=cas", "status=hit")).isEqualTo(2);
    assertThat(m.value(inc, "method=get", "kind=cas", "status=miss")).isEqualTo(1);
    assertThat(m.value(inc, "method=contains", "kind=cas", "status=hit")).isEqualTo(1);
    assertThat(m.value(inc, "method=contains", "kind=cas", "status=miss")).isEqualTo(1);
    assertThat(m.value(inc, "method=get", "kind=ac", "status=hit")).isEqualTo(2);
    assertThat(m.value(inc, "method=get", "kind=ac", "status=miss")).isEqualTo(2);
    assertThat(m.value(inc, "method=get", "kind=raw", "status=hit")).isZero();
    assertThat(m.value(inc, "method=contains", "kind=ac")).isZero();

    // HTTP: go-http-metrics families (unprefixed by default) and our always-prefixed ones.
    for (String name : List.of("http_request_duration_seconds_count",
        "bazel_remote_http_request_duration_seconds_count")) {
      assertThat(m.value(name, "handler=GET", "method=GET", "code=200")).as(name).isEqualTo(2);
      assertThat(m.value(name, "handler=GET", "method=GET", "code=404")).as(name).isEqualTo(2);
      assertThat(m.value(name, "handler=PUT", "method=PUT", "code=200")).as(name).isEqualTo(2);
      assertThat(m.value(name, "handler=HEAD", "method=HEAD", "code=200")).as(name).isEqualTo(1);
      assertThat(m.value(name, "handler=status", "method=GET", "code=200")).as(name).isEqualTo(1);
    }
    assertThat(m.labelValues("bazel_remote_http_request_duration_seconds_bucket", "le"))
        .containsExactly("0.5", "1.0", "2.5", "5.0", "10.0", "20.0", "40.0", "80.0", "160.0", "320.0", "+Inf");
    assertThat(m.value("bazel_remote_http_request_duration_seconds_sum")).isGreaterThan(0).isLessThan(60);
    assertThat(m.value("bazel_remote_http_request_total", "code=200")).isEqualTo(6);
    assertThat(m.value("bazel_remote_http_request_total", "code=404")).isEqualTo(2);
    // The 10,000-byte blob and the ActionResult were the GET bodies with status 200.
    assertThat(m.value("http_response_size_bytes_sum", "handler=GET", "code=200"))
        .isEqualTo(blob.length + storedAc);
    assertThat(m.value("http_response_size_bytes_bucket", "handler=GET", "code=200", "le=1000.0")).isEqualTo(1);
    assertThat(m.value("http_response_size_bytes_sum", "handler=HEAD")).isZero();
    // The scrape itself is the one request in flight.
    assertThat(m.value("http_requests_inflight", "handler=metrics")).isEqualTo(1);
    assertThat(m.value("http_requests_inflight", "handler=GET")).isZero();
    assertThat(m.has("bazel_remote_http_requests_inflight")).isFalse();

    // gRPC server metrics, go-grpc-prometheus labels and code spelling.
    String[] getAr = {"grpc_type=unary", "grpc_service=" + AC_SERVICE, "grpc_method=GetActionResult"};
    String[] findMissing = {"grpc_type=unary", "grpc_service=" + CAS_SERVICE, "grpc_method=FindMissingBlobs"};
    assertThat(m.value("grpc_server_started_total", getAr)).isEqualTo(2);
    assertThat(m.value("grpc_server_handled_total", append(getAr, "grpc_code=OK"))).isEqualTo(1);
    assertThat(m.value("grpc_server_handled_total", append(getAr, "grpc_code=NotFound"))).isEqualTo(1);
    assertThat(m.value("grpc_server_msg_received_total", getAr)).isEqualTo(2);
    assertThat(m.value("grpc_server_msg_sent_total", getAr)).isEqualTo(1);
    assertThat(m.value("grpc_server_handling_seconds_count", getAr)).isEqualTo(2);
    assertThat(m.value("grpc_server_handling_seconds_bucket", append(getAr, "le=+Inf"))).isEqualTo(2);
    assertThat(m.value("grpc_server_started_total", findMissing)).isEqualTo(1);
    assertThat(m.value("grpc_server_handled_total", append(findMissing, "grpc_code=OK"))).isEqualTo(1);

    // Disk: two entries stored (the blob, compressed, and the ActionResult), each in 4 KiB blocks.
    double size = m.value("bazel_remote_disk_cache_size_bytes");
    assertThat(size).isPositive();
    assertThat(size % 4096).isZero();
    assertThat(m.value("bazel_remote_disk_cache_logical_bytes")).isEqualTo(blob.length + storedAc);
    assertThat(m.value("bazel_remote_disk_cache_size_bytes_limit", "type=evict")).isEqualTo(1L << 30);
    assertThat(m.value("bazel_remote_disk_cache_size_bytes_limit", "type=reject")).isEqualTo(2L << 30);
    assertThat(m.value("bazel_remote_disk_cache_entry_bytes_count")).isEqualTo(2);
    assertThat(m.value("bazel_remote_disk_cache_entry_bytes_sum")).isEqualTo(blob.length + storedAc);
    assertThat(m.value("bazel_remote_disk_cache_entry_bytes", "quantile=1.0")).isEqualTo(blob.length);
    assertThat(m.value("bazel_remote_disk_cache_evicted_bytes_total")).isZero();
    assertThat(m.value("bazel_remote_disk_cache_overwritten_bytes_total")).isZero();
    assertThat(m.value("bazel_remote_disk_cache_longest_item_idle_time_seconds")).isBetween(0.0, 60.0);

    // Backends: no S3 configured, no HTTP or Azure proxy at all: present and zero, as in bazel-remote.
    for (String name : List.of("bazel_remote_s3_cache_hits", "bazel_remote_s3_cache_misses",
        "bazel_remote_http_cache_hits", "bazel_remote_http_cache_misses", "bazel_remote_azblob_cache_hits",
        "bazel_remote_azblob_cache_misses", "bazel_remote_s3_requests_total", "bazel_remote_s3_upload_queue_length",
        "bazel_remote_s3_uploads_dropped_total")) {
      assertThat(m.value(name)).as(name).isZero();
    }
    assertThat(m.types.get("bazel_remote_s3_cache_hits")).isEqualTo("untyped");

    // JVM and process collectors.
    assertThat(m.value("jvm_memory_used_bytes", "area=heap")).isPositive();
    assertThat(m.value("process_cpu_seconds_total")).isPositive();
    assertThat(m.value("jvm_threads_current")).isPositive();
  }

  @Test
  void overwritesAndEvictionsAreCounted() throws Exception {
    CacheServer s = start("--enable_endpoint_metrics", "--storage_mode=uncompressed");
    String key = sha("k".getBytes(StandardCharsets.UTF_8));
    assertThat(send(s, "PUT", "/ac/" + key, ActionResult.newBuilder().setExitCode(1).build().toByteArray())
        .statusCode()).isEqualTo(200);
    assertThat(send(s, "PUT", "/ac/" + key, ActionResult.newBuilder().setExitCode(2).build().toByteArray())
        .statusCode()).isEqualTo(200);
    Scrape m = scrape(s);
    assertThat(m.value("bazel_remote_disk_cache_overwritten_bytes_total")).isEqualTo(4096);
    assertThat(m.value("bazel_remote_disk_cache_entry_bytes_count")).isEqualTo(2);
  }

  @Test
  void cancelledCallsAndOddMethodsAreLabelledSafely() throws Exception {
    // idle_timeout wraps the HTTP observer; in-flight gauges must still go up and down in pairs.
    CacheServer s = start("--enable_endpoint_metrics", "--idle_timeout=1h");
    int status = send(s, "FROBNICATE", "/cas/" + sha(new byte[] {1}), null).statusCode();
    assertThat(status).isGreaterThanOrEqualTo(400);

    // A ByteStream upload the client abandons half-way.
    ManagedChannel ch = channel(s);
    byte[] data = random(1000, 5);
    java.util.concurrent.CountDownLatch ended = new java.util.concurrent.CountDownLatch(1);
    io.grpc.stub.StreamObserver<com.google.bytestream.ByteStreamProto.WriteRequest> up =
        com.google.bytestream.ByteStreamGrpc.newStub(ch).write(new io.grpc.stub.StreamObserver<>() {
          @Override
          public void onNext(com.google.bytestream.ByteStreamProto.WriteResponse v) {}

          @Override
          public void onError(Throwable t) {
            ended.countDown();
          }

          @Override
          public void onCompleted() {
            ended.countDown();
          }
        });
    up.onNext(com.google.bytestream.ByteStreamProto.WriteRequest.newBuilder()
        .setResourceName("uploads/" + java.util.UUID.randomUUID() + "/blobs/" + sha(data) + "/" + data.length)
        .setData(com.google.protobuf.ByteString.copyFrom(data, 0, 100)).build());
    String[] write = {"grpc_type=client_stream", "grpc_service=google.bytestream.ByteStream", "grpc_method=Write"};
    // Cancel only once the server has the first chunk (a cancel before that may never reach the server).
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    Scrape m = scrape(s);
    while (!(m.value("grpc_server_msg_received_total", write) >= 1) && System.nanoTime() < deadline) {
      Thread.sleep(20);
      m = scrape(s);
    }
    assertThat(m.value("grpc_server_msg_received_total", write)).isEqualTo(1);
    assertThat(m.has("grpc_server_handled_total", write)).isFalse();
    up.onError(new RuntimeException("client gives up"));
    assertThat(ended.await(10, TimeUnit.SECONDS)).isTrue();
    while (Double.isNaN(m.value("grpc_server_handled_total", write)) && System.nanoTime() < deadline) {
      Thread.sleep(50);
      m = scrape(s);
    }
    assertThat(m.value("grpc_server_started_total", write)).isEqualTo(1);
    assertThat(m.value("grpc_server_handled_total", append(write, "grpc_code=Canceled"))).isEqualTo(1);
    assertThat(m.value("grpc_server_handled_total", write)).isEqualTo(1);

    assertThat(m.labelValues("http_request_duration_seconds_count", "method")).contains("other")
        .doesNotContain("FROBNICATE");
    assertThat(m.value("http_requests_inflight", "handler=other")).isZero();
    assertThat(m.value("http_requests_inflight", "handler=metrics")).isEqualTo(1);
    assertThat(m.value("http_response_size_bytes_sum", "handler=metrics")).isPositive();
    assertThat(m.value("bazel_remote_http_request_total", "code=" + status)).isEqualTo(1);
  }

  @Test
  void metricsEndpointIsNotFoundUnlessEnabled() throws Exception {
    CacheServer s = start();
    HttpResponse<byte[]> r = send(s, "GET", "/metrics", null);
    assertThat(r.statusCode()).isEqualTo(404);
    assertThat(new String(r.body(), StandardCharsets.UTF_8)).contains("Endpoint metrics are not enabled");
  }

  @Test
  void customBucketsAndPrefixFromTheConfigFile() throws Exception {
    Path yaml = tmp.resolve("config.yaml");
    Files.writeString(yaml, """
        dir: %s
        max_size: 1
        http_address: 127.0.0.1:0
        grpc_address: 127.0.0.1:0
        enable_endpoint_metrics: true
        http_metrics_prefix: true
        endpoint_metrics_duration_buckets: [0.001, 0.25, 7, 600]
        """.formatted(tmp.resolve("cache")));
    Config config = ConfigLoader.load(new String[] {"--config_file=" + yaml}, Map.of());
    CacheServer s = CacheServer.start(config);
    toClose.add(s);
    assertThat(send(s, "GET", "/status", null).statusCode()).isEqualTo(200);
    ManagedChannel ch = channel(s);
    ContentAddressableStorageGrpc.newBlockingStub(ch).findMissingBlobs(
        FindMissingBlobsRequest.newBuilder().addBlobDigests(digest(new byte[] {1})).build());
    Scrape m = scrape(s);
    List<String> le = List.of("0.001", "0.25", "7.0", "600.0", "+Inf");
    assertThat(m.labelValues("bazel_remote_http_request_duration_seconds_bucket", "le")).containsExactlyElementsOf(le);
    assertThat(m.labelValues("grpc_server_handling_seconds_bucket", "le")).containsExactlyElementsOf(le);
    // With http_metrics_prefix bazel-remote's names carry the prefix, and the unprefixed ones are gone.
    assertThat(m.value("bazel_remote_http_request_duration_seconds_count", "handler=status")).isEqualTo(1);
    assertThat(m.has("http_request_duration_seconds_count")).isFalse();
    assertThat(m.has("bazel_remote_http_response_size_bytes_count")).isTrue();
    assertThat(m.has("http_response_size_bytes_count")).isFalse();
    assertThat(m.value("bazel_remote_http_requests_inflight", "handler=metrics")).isEqualTo(1);
  }

  @Test
  void s3CountersComeFromRealS3Traffic() throws Exception {
    S3ProxyProcess s3 = S3ProxyProcess.shared();
    String bucket = S3Testing.newBucketName();
    try (var raw = S3Testing.rawClient(s3)) {
      S3Testing.createBucket(raw, bucket);
    }
    String[] s3Flags = {"--enable_endpoint_metrics", "--s3.endpoint=" + s3.endpoint(), "--s3.bucket=" + bucket,
        "--s3.bucket_lookup_type=path", "--s3.disable_ssl", "--s3.auth_method=access_key",
        "--s3.access_key_id=" + S3ProxyProcess.ACCESS_KEY, "--s3.secret_access_key=" + S3ProxyProcess.SECRET_KEY};
    CacheServer writer = start(s3Flags);
    byte[] blob = random(5000, 3);
    assertThat(send(writer, "PUT", "/cas/" + sha(blob), blob).statusCode()).isEqualTo(200);
    // A local miss that S3 does not have either: one S3 miss.
    assertThat(send(writer, "GET", "/cas/" + sha(random(10, 4)), null).statusCode()).isEqualTo(404);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    Scrape m = scrape(writer);
    while (!(m.value("bazel_remote_s3_uploads_total", "result=uploaded") >= 1) && System.nanoTime() < deadline) {
      Thread.sleep(50);
      m = scrape(writer);
    }
    assertThat(m.value("bazel_remote_s3_uploads_total", "result=uploaded")).isEqualTo(1);
    assertThat(m.value("bazel_remote_s3_requests_total", "operation=put", "status=ok")).isEqualTo(1);
    assertThat(m.value("bazel_remote_s3_requests_total", "operation=get", "status=not_found")).isEqualTo(1);
    assertThat(m.value("bazel_remote_s3_cache_misses")).isEqualTo(1);
    assertThat(m.value("bazel_remote_s3_cache_hits")).isZero();
    assertThat(m.value("bazel_remote_s3_requests_total", "status=error")).isZero();
    assertThat(m.value("bazel_remote_s3_upload_queue_length")).isZero();
    assertThat(m.value("bazel_remote_s3_uploads_dropped_total")).isZero();

    // Another replica on the same bucket with an empty disk: served from S3, a hit.
    Path otherDir = tmp.resolve("replica");
    Config config = ConfigLoader.load(concat(new String[] {"--dir=" + otherDir, "--max_size=1",
        "--http_address=127.0.0.1:0", "--grpc_address=127.0.0.1:0"}, s3Flags), Map.of());
    CacheServer replica = CacheServer.start(config);
    toClose.add(replica);
    HttpResponse<byte[]> got = send(replica, "GET", "/cas/" + sha(blob), null);
    assertThat(got.statusCode()).isEqualTo(200);
    assertThat(got.body()).isEqualTo(blob);
    Scrape r = scrape(replica);
    assertThat(r.value("bazel_remote_s3_cache_hits")).isEqualTo(1);
    assertThat(r.value("bazel_remote_s3_requests_total", "operation=get", "status=ok")).isEqualTo(1);
    assertThat(r.value("bazel_remote_incoming_requests_total", "method=get", "kind=cas", "status=hit")).isEqualTo(1);
  }

  private static String[] concat(String[] a, String[] b) {
    String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  private static String[] append(String[] a, String b) {
    String[] out = java.util.Arrays.copyOf(a, a.length + 1);
    out[a.length] = b;
    return out;
  }
}
