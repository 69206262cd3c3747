package io.bazelcache.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.fail;

import io.bazelcache.storage.s3.S3Testing;
import io.bazelcache.testing.S3ProxyProcess;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * The SIGTERM lifecycle of the real server process (the shaded jar), with the S3 tier on a real S3Proxy:
 * while many parallel uploads run, SIGTERM; then
 *
 * <ul>
 *   <li>readiness goes false before the listeners close: {@code /status} answers 503 and gRPC health
 *       NOT_SERVING during {@code --shutdown_delay}, and once a 503 was seen no 200 follows;
 *   <li>the process exits with status 0, within the bounds (delay + request grace + upload drain);
 *   <li>no acknowledged blob is lost: a restart on the same directory serves each one, and a fresh server on
 *       an empty directory serves each one from the bucket (so the upload queue drained before exit).
 * </ul>
 */
class ShutdownIT {
  private static final int BLOBS = 400;
  private static final int CONCURRENCY = 16;
  private static final Duration SHUTDOWN_DELAY = Duration.ofSeconds(3);

  private final HttpClient client = HttpClient.newBuilder()
      .version(HttpClient.Version.HTTP_1_1)
      .connectTimeout(Duration.ofSeconds(2))
      .build();
  private final Map<String, CrashIT.BlobSpec> acknowledged = new ConcurrentHashMap<>();

  @Test
  @Timeout(value = 10, unit = TimeUnit.MINUTES)
  void sigtermDrainsReadinessRequestsAndUploadsThenExitsZero() throws Exception {
    Path runDir = E2e.runDir("ShutdownIT");
    Path logs = runDir.resolve("logs");
    long seed = Long.getLong("bazelcache.e2e.shutdownSeed", System.nanoTime());
    System.out.println("[e2e] ShutdownIT seed " + seed + " (rerun with -Dbazelcache.e2e.shutdownSeed=" + seed + ")");
    SplittableRandom random = new SplittableRandom(seed);
    List<CrashIT.BlobSpec> blobs = new ArrayList<>();
    for (int i = 0; i < BLOBS; i++) {
      blobs.add(smallish(random));
    }

    try (S3ProxyProcess s3 = S3ProxyProcess.start(Files.createDirectories(runDir.resolve("s3")))) {
      String bucket = S3Testing.newBucketName();
      try (S3Client raw = S3Testing.rawClient(s3)) {
        S3Testing.createBucket(raw, bucket);
      }
      Path dir = runDir.resolve("cache");
      int grpcPort = E2e.freePort();
      ServerProcess server = ServerProcess.start(dir, 2, logs, s3Args(s3, bucket, grpcPort,
          "--shutdown_delay", SHUTDOWN_DELAY.toSeconds() + "s", "--num_uploaders", "4"));
      ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", grpcPort).usePlaintext().build();
      List<String> statuses = Collections.synchronizedList(new ArrayList<>());
      List<String> healths = Collections.synchronizedList(new ArrayList<>());
      int exit;
      try {
        assertThat(health(channel)).isEqualTo("health=SERVING");
        exit = uploadAndTerminate(server, blobs, channel, statuses, healths);
      } finally {
        channel.shutdownNow();
        server.close();
      }
      System.out.println("[e2e] ShutdownIT after SIGTERM, polled every 50 ms: " + compress(statuses) + "; "
          + compress(healths));
      String log = E2e.tail(server.log(), 200_000);
      assertThat(exit).as("exit status after SIGTERM; log %s", server.log()).isZero();
      assertThat(statuses).as("/status between SIGTERM and exit").contains("status=503");
      assertThat(healths).as("gRPC health between SIGTERM and exit").contains("health=NOT_SERVING");
      int first503 = statuses.indexOf("status=503");
      assertThat(statuses.subList(first503, statuses.size()))
          .as("no /status 200 once readiness went false").doesNotContain("status=200");
      assertThat(healths.subList(healths.indexOf("health=NOT_SERVING"), healths.size()))
          .as("no SERVING once health went NOT_SERVING").doesNotContain("health=SERVING");
      assertThat(log).as("server log").contains("received SIGTERM").doesNotContain("uploads abandoned");
      assertThat(acknowledged).as("acknowledged uploads").hasSizeGreaterThan(BLOBS / 4);

      // The same directory: every acknowledged blob is still there.
      try (ServerProcess again = ServerProcess.start(dir, 2, logs, s3Args(s3, bucket, E2e.freePort()))) {
        verifyAll(again, "restart on the same directory");
      }
      // An empty directory on the same bucket: every acknowledged blob comes back from S3.
      try (ServerProcess fresh = ServerProcess.start(runDir.resolve("cache-empty"), 2, logs,
          s3Args(s3, bucket, E2e.freePort()))) {
        verifyAll(fresh, "fresh replica reading through from the bucket");
      }
    }
    E2e.deleteTree(runDir.resolve("cache"));
    E2e.deleteTree(runDir.resolve("cache-empty"));
  }

  private static String[] s3Args(S3ProxyProcess s3, String bucket, int grpcPort, String... more) {
    List<String> args = new ArrayList<>(List.of(
        "--grpc_address", "127.0.0.1:" + grpcPort,
        "--s3.endpoint", s3.endpoint(), "--s3.bucket", bucket, "--s3.disable_ssl",
        "--s3.bucket_lookup_type", "path", "--s3.auth_method", "access_key",
        "--s3.access_key_id", S3ProxyProcess.ACCESS_KEY, "--s3.secret_access_key", S3ProxyProcess.SECRET_KEY));
    args.addAll(List.of(more));
    return args.toArray(String[]::new);
  }

  /** 1 byte to 1 MiB, so the upload queue has real work when SIGTERM comes. */
  private static CrashIT.BlobSpec smallish(SplittableRandom random) {
    int size = random.nextDouble() < 0.6 ? random.nextInt(1, 8 * 1024) : random.nextInt(8 * 1024, 1024 * 1024 + 1);
    long seed = random.nextLong();
    byte[] data = new byte[size];
    new SplittableRandom(seed).nextBytes(data);
    return new CrashIT.BlobSpec(seed, size, E2e.sha256Hex(data));
  }

  private int uploadAndTerminate(ServerProcess server, List<CrashIT.BlobSpec> blobs, ManagedChannel channel,
      List<String> statuses, List<String> healths) throws Exception {
    CountDownLatch enoughAcks = new CountDownLatch(BLOBS / 4);
    Semaphore slots = new Semaphore(CONCURRENCY);
    AtomicBoolean stopSending = new AtomicBoolean();
    AtomicLong inFlight = new AtomicLong();
    List<CompletableFuture<?>> uploads = Collections.synchronizedList(new ArrayList<>());
    List<String> unexpected = Collections.synchronizedList(new ArrayList<>());
    Thread sender = Thread.ofVirtual().start(() -> {
      for (CrashIT.BlobSpec blob : blobs) {
        try {
          slots.acquire();
        } catch (InterruptedException e) {
          return;
        }
        if (stopSending.get()) {
          slots.release();
          return;
        }
        inFlight.incrementAndGet();
        HttpRequest put = HttpRequest.newBuilder(cas(server.baseUri(), blob.sha256()))
            .timeout(Duration.ofSeconds(60))
            .PUT(HttpRequest.BodyPublishers.ofByteArray(blob.bytes()))
            .build();
        uploads.add(client.sendAsync(put, HttpResponse.BodyHandlers.discarding()).whenComplete((response, error) -> {
          inFlight.decrementAndGet();
          slots.release();
          if (response == null) {
            return; // refused or cut: not acknowledged
          }
          if (response.statusCode() == 200) {
            acknowledged.put(blob.sha256(), blob);
            enoughAcks.countDown();
          } else {
            unexpected.add("PUT " + blob + " -> " + response.statusCode());
          }
        }));
      }
    });
    if (!enoughAcks.await(3, TimeUnit.MINUTES)) {
      fail("too few uploads acknowledged within 3 minutes; log " + server.log());
    }
    long inFlightAtTerm = inFlight.get();
    long termAt = System.nanoTime();
    CompletableFuture<Integer> exit = CompletableFuture.supplyAsync(() -> server.stop(Duration.ofSeconds(90)),
        r -> Thread.ofVirtual().start(r));
    // Poll readiness until the process is gone; uploads keep going meanwhile (they are served during the delay).
    while (!exit.isDone()) {
      statuses.add(status(server));
      healths.add(health(channel));
      Thread.sleep(50);
    }
    long exitedAfterMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - termAt);
    stopSending.set(true);
    sender.join(TimeUnit.MINUTES.toMillis(2));
    for (CompletableFuture<?> upload : List.copyOf(uploads)) {
      try {
        upload.get(2, TimeUnit.MINUTES);
      } catch (Exception expected) {
        // Refused after the listeners closed: not acknowledged.
      }
    }
    System.out.printf("[e2e] ShutdownIT: SIGTERM with %d uploads in flight, exit after %d ms, %d of %d acknowledged%n",
        inFlightAtTerm, exitedAfterMs, acknowledged.size(), blobs.size());
    assertThat(unexpected).as("answers other than 200 to valid uploads").isEmpty();
    assertThat(inFlightAtTerm).as("uploads in flight at SIGTERM").isPositive();
    assertThat(exitedAfterMs).as("the process stays up (not ready) for the shutdown delay")
        .isGreaterThanOrEqualTo(SHUTDOWN_DELAY.toMillis());
    return exit.get();
  }

  private String status(ServerProcess server) {
    try {
      HttpRequest get = HttpRequest.newBuilder(server.baseUri().resolve("/status"))
          .timeout(Duration.ofSeconds(2)).GET().build();
      return "status=" + client.send(get, HttpResponse.BodyHandlers.discarding()).statusCode();
    } catch (IOException e) {
      return "status=refused";
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "status=interrupted";
    }
  }

  private static String health(ManagedChannel channel) {
    try {
      ServingStatus s = HealthGrpc.newBlockingStub(channel).withDeadlineAfter(2, TimeUnit.SECONDS)
          .check(HealthCheckRequest.newBuilder().setService("").build()).getStatus();
      return "health=" + s;
    } catch (StatusRuntimeException e) {
      return "health=" + e.getStatus().getCode();
    }
  }

  private void verifyAll(ServerProcess server, String what) throws Exception {
    List<String> missing = new ArrayList<>();
    for (CrashIT.BlobSpec blob : acknowledged.values()) {
      HttpRequest get = HttpRequest.newBuilder(cas(server.baseUri(), blob.sha256()))
          .timeout(Duration.ofSeconds(60)).GET().build();
      HttpResponse<byte[]> r = client.send(get, HttpResponse.BodyHandlers.ofByteArray());
      if (r.statusCode() != 200) {
        missing.add(blob + " -> " + r.statusCode());
        continue;
      }
      assertThat(E2e.sha256Hex(r.body())).as("%s: content of %s", what, blob).isEqualTo(blob.sha256());
    }
    assertThat(missing).as("%s: acknowledged blobs not served (of %d)", what, acknowledged.size()).isEmpty();
  }

  private static URI cas(URI base, String sha256) {
    return base.resolve("/cas/" + sha256);
  }

  /** "a, a, a, b" -> "a x3, b". */
  private static String compress(List<String> seen) {
    StringBuilder sb = new StringBuilder();
    String last = null;
    int n = 0;
    for (String s : List.copyOf(seen)) {
      if (s.equals(last)) {
        n++;
        continue;
      }
      if (last != null) {
        sb.append(last).append(n > 1 ? " x" + n : "").append(", ");
      }
      last = s;
      n = 1;
    }
    if (last != null) {
      sb.append(last).append(n > 1 ? " x" + n : "");
    }
    return sb.toString();
  }
}
