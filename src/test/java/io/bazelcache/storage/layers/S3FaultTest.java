package io.bazelcache.storage.layers;

import static org.assertj.core.api.Assertions.assertThat;

import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.s3.S3Options;
import io.bazelcache.storage.s3.S3Stats.Operation;
import io.bazelcache.storage.s3.S3Stats.Status;
import io.bazelcache.storage.s3.S3Testing;
import io.bazelcache.testing.S3ProxyProcess;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.services.s3.S3Client;

/** S3 down or hanging: local hits are still served, misses answered in bounded time, uploads resume. */
class S3FaultTest {
  @TempDir Path tmp;
  private final List<AutoCloseable> toClose = new ArrayList<>();

  @AfterEach
  void cleanUp() throws Exception {
    for (int i = toClose.size() - 1; i >= 0; i--) {
      toClose.get(i).close();
    }
  }

  private static BlobKey cas(byte[] d) {
    return BlobKey.cas(Digest.of(DigestFunction.SHA256, d));
  }

  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static byte[] read(Blob b) throws IOException {
    assertThat(b).isNotNull();
    try (b) {
      return b.readAllBytes();
    }
  }

  private static long millisSince(long start) {
    return (System.nanoTime() - start) / 1_000_000;
  }

  private static S3Layers.Options layerOptions() {
    return S3Layers.Options.defaults()
        .withUploads(2, 100)
        .withChecks(16, Duration.ofSeconds(5))
        .withUploadRetry(new Uploader.Retry(Duration.ofMillis(100), Duration.ofSeconds(1), Duration.ofMinutes(2)),
            Duration.ofSeconds(5));
  }

  @Test
  void s3KilledThenRestarted() throws Exception {
    S3ProxyProcess s3 = S3ProxyProcess.start(tmp.resolve("s3proxy"));
    toClose.add(s3);
    S3Client raw = S3Testing.rawClient(s3);
    toClose.add(raw);
    String bucket = S3Testing.newBucketName();
    S3Testing.createBucket(raw, bucket);
    S3Options o = S3Testing.options(s3, bucket, tmp).withTimeouts(Duration.ofSeconds(1), Duration.ofSeconds(2), 2);
    Replica r = new Replica(tmp.resolve("r"), o, layerOptions());
    toClose.add(r);

    byte[] x = bytes("uploaded while S3 was up");
    r.store().put(cas(x), x);
    assertThat(r.layers.uploader().awaitIdle(Duration.ofSeconds(30))).isTrue();
    assertThat(r.stats.uploadsDone.get()).isEqualTo(1);

    s3.kill();
    assertThat(s3.isAlive()).isFalse();

    // Local hits are served as before.
    long start = System.nanoTime();
    assertThat(read(r.store().get(cas(x)))).isEqualTo(x);
    assertThat(r.store().contains(cas(x))).isTrue();
    assertThat(millisSince(start)).isLessThan(3000);

    // Misses are answered, within a bound.
    List<BlobKey> absent = new ArrayList<>();
    for (int i = 0; i < 50; i++) {
      absent.add(cas(bytes("absent " + i)));
    }
    start = System.nanoTime();
    assertThat(r.store().get(absent.get(0))).isNull();
    assertThat(r.store().contains(absent.get(1))).isFalse();
    assertThat(r.store().findMissing(absent)).containsExactlyElementsOf(absent);
    assertThat(millisSince(start)).as("misses with S3 down").isLessThan(10_000);
    assertThat(r.stats.requests(Operation.GET, Status.ERROR) + r.stats.requests(Operation.HEAD, Status.ERROR))
        .isGreaterThan(0);
    assertThat(r.stats.cacheMisses.get()).isEqualTo(1);

    // Writes succeed locally at once; their uploads wait.
    List<byte[]> written = new ArrayList<>();
    start = System.nanoTime();
    for (int i = 0; i < 5; i++) {
      byte[] d = bytes("written while S3 was down " + i);
      r.store().put(cas(d), d);
      written.add(d);
    }
    assertThat(millisSince(start)).as("local writes with S3 down").isLessThan(5000);
    long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
    while (r.stats.uploadRetries.get() == 0 && System.nanoTime() < deadline) {
      Thread.sleep(50);
    }
    assertThat(r.stats.uploadRetries.get()).isGreaterThan(0);
    assertThat(r.stats.uploadsDone.get()).isEqualTo(1);

    // S3 comes back (same port, same data): the retried uploads arrive.
    s3.start();
    assertThat(r.layers.uploader().awaitIdle(Duration.ofSeconds(60))).isTrue();
    assertThat(r.stats.uploadsDone.get()).isEqualTo(6);
    assertThat(r.stats.uploadsFailed.get()).isZero();
    for (byte[] d : written) {
      assertThat(S3Testing.getObject(raw, bucket, r.s3.objectKey(cas(d)))).isNotNull();
    }
    assertThat(S3Testing.getObject(raw, bucket, r.s3.objectKey(cas(x)))).isNotNull();

    // And another replica reads them through.
    Replica other = new Replica(tmp.resolve("other"), o, layerOptions());
    toClose.add(other);
    for (byte[] d : written) {
      assertThat(read(other.store().get(cas(d)))).isEqualTo(d);
    }
  }

  @Test
  void s3Answering503IsCountedAndSkippedWhileItLasts() throws Exception {
    // Every request answered "503 Slow Down / Service Unavailable", as an overloaded S3 does.
    com.sun.net.httpserver.HttpServer http =
        com.sun.net.httpserver.HttpServer.create(new java.net.InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 50);
    java.util.concurrent.atomic.AtomicInteger served = new java.util.concurrent.atomic.AtomicInteger();
    http.createContext("/", ex -> {
      served.incrementAndGet();
      byte[] body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>ServiceUnavailable</Code>"
          + "<Message>Please reduce your request rate.</Message></Error>").getBytes(StandardCharsets.UTF_8);
      ex.getRequestBody().readAllBytes();
      ex.getResponseHeaders().add("Content-Type", "application/xml");
      if (ex.getRequestMethod().equals("HEAD")) {
        ex.sendResponseHeaders(503, -1);
      } else {
        ex.sendResponseHeaders(503, body.length);
        ex.getResponseBody().write(body);
      }
      ex.close();
    });
    http.start();
    try {
      S3Options o = S3Testing.options("127.0.0.1:" + http.getAddress().getPort(), "bucket", tmp)
          .withTimeouts(Duration.ofSeconds(1), Duration.ofSeconds(2), 2);
      Replica r = new Replica(tmp.resolve("r"), o, layerOptions());
      toClose.add(r);
      byte[] local = bytes("still served");
      r.disk.put(cas(local), local);

      long start = System.nanoTime();
      assertThat(read(r.store().get(cas(local)))).isEqualTo(local);
      assertThat(r.store().get(cas(bytes("absent")))).isNull();
      List<BlobKey> absent = new ArrayList<>();
      for (int i = 0; i < 30; i++) {
        absent.add(cas(bytes("503 " + i)));
      }
      assertThat(r.store().findMissing(absent)).containsExactlyElementsOf(absent);
      assertThat(millisSince(start)).isLessThan(10_000);
      assertThat(r.stats.requests(Operation.GET, Status.ERROR)).isEqualTo(1);
      assertThat(r.stats.requests(Operation.HEAD, Status.ERROR)).isEqualTo(30);
      // After a few failures the breaker stops sending: fewer requests reached the server than were made.
      assertThat(r.stats.breakerRejections.get()).isGreaterThan(0);
      assertThat(served.get()).isLessThan(2 * 31);
    } finally {
      http.stop(0);
    }
  }

  @Test
  void s3HangingMissesAreAnsweredWithinTheTimeouts() throws Exception {
    // Accepts TCP connections and never answers: a hung S3.
    try (ServerSocket blackhole = new ServerSocket(0, 200, InetAddress.getLoopbackAddress())) {
      S3Options o = S3Testing.options("127.0.0.1:" + blackhole.getLocalPort(), "bucket", tmp)
          .withTimeouts(Duration.ofSeconds(1), Duration.ofSeconds(1), 2);
      Replica r = new Replica(tmp.resolve("r"), o,
          layerOptions().withChecks(16, Duration.ofSeconds(3)));
      toClose.add(r);
      byte[] local = bytes("local entry");
      r.disk.put(cas(local), local);

      long start = System.nanoTime();
      assertThat(read(r.store().get(cas(local)))).isEqualTo(local);
      assertThat(millisSince(start)).isLessThan(3000);

      start = System.nanoTime();
      assertThat(r.store().get(cas(bytes("absent")))).isNull();
      assertThat(millisSince(start)).as("GET miss against a hung S3").isLessThan(10_000);

      List<BlobKey> absent = new ArrayList<>();
      for (int i = 0; i < 40; i++) {
        absent.add(cas(bytes("hung " + i)));
      }
      start = System.nanoTime();
      assertThat(r.store().findMissing(absent)).containsExactlyElementsOf(absent);
      assertThat(millisSince(start)).as("findMissing against a hung S3").isLessThan(10_000);
      assertThat(r.stats.cacheMisses.get()).isEqualTo(1);
    }
  }
}
