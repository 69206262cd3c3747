package io.bazelcache.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
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
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Durability under SIGKILL: many parallel CAS uploads of random blobs (a few bytes to several MiB), {@code kill -9}
 * while uploads are in flight, restart on the same directory. Every upload the server acknowledged with 200 must
 * be served back intact, and whatever else it serves must match its digest. Repeated for several rounds on the
 * same directory, so leftovers of earlier crashes are exercised too.
 */
class CrashIT {
  private static final int ROUNDS = 3;
  private static final int BLOBS_PER_ROUND = 160;
  private static final int CONCURRENCY = 16;
  private static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(60);

  /** A blob that can be regenerated from its seed instead of being held in memory. */
  record BlobSpec(long seed, int size, String sha256) {
    static BlobSpec random(SplittableRandom random) {
      double kind = random.nextDouble();
      int size;
      if (kind < 0.35) {
        size = random.nextInt(1, 257);
      } else if (kind < 0.65) {
        size = random.nextInt(257, 64 * 1024 + 1);
      } else if (kind < 0.9) {
        size = random.nextInt(64 * 1024 + 1, 1024 * 1024 + 1);
      } else {
        size = random.nextInt(1024 * 1024 + 1, 6 * 1024 * 1024 + 1);
      }
      long seed = random.nextLong();
      return new BlobSpec(seed, size, E2e.sha256Hex(bytes(seed, size)));
    }

    byte[] bytes() {
      return bytes(seed, size);
    }

    private static byte[] bytes(long seed, int size) {
      byte[] data = new byte[size];
      new SplittableRandom(seed).nextBytes(data);
      return data;
    }
  }

  private final HttpClient client = HttpClient.newBuilder()
      .version(HttpClient.Version.HTTP_1_1)
      .connectTimeout(Duration.ofSeconds(5))
      .build();

  /** Acknowledged (200) uploads, over all rounds. */
  private final Map<String, BlobSpec> acknowledged = new ConcurrentHashMap<>();
  /** Uploads that were sent but never acknowledged: the server may or may not have them. */
  private final Map<String, BlobSpec> unacknowledged = new ConcurrentHashMap<>();

  @Test
  @Timeout(value = 20, unit = TimeUnit.MINUTES)
  void acknowledgedUploadsSurviveKill9AndNothingCorruptIsServed() throws Exception {
    Path runDir = E2e.runDir("CrashIT");
    Path cacheDir = runDir.resolve("cache");
    Path logs = runDir.resolve("logs");
    long seed = Long.getLong("bazelcache.e2e.crashSeed", System.nanoTime());
    System.out.println("[e2e] CrashIT seed " + seed + " (rerun with -Dbazelcache.e2e.crashSeed=" + seed + ")");
    SplittableRandom random = new SplittableRandom(seed);

    ServerProcess server = ServerProcess.start(cacheDir, 4, logs);
    try {
      for (int round = 1; round <= ROUNDS; round++) {
        List<BlobSpec> blobs = new ArrayList<>();
        for (int i = 0; i < BLOBS_PER_ROUND; i++) {
          blobs.add(BlobSpec.random(random));
        }
        int killAfterAcks = random.nextInt(BLOBS_PER_ROUND / 4, BLOBS_PER_ROUND * 3 / 5);
        uploadAndKill(server, blobs, killAfterAcks, round);

        server = ServerProcess.start(cacheDir, 4, logs);
        verify(server, round);
      }
    } finally {
      server.close();
    }
    E2e.deleteTree(cacheDir); // a few hundred MiB; kept (with the logs) only when the test fails
  }

  private void uploadAndKill(ServerProcess server, List<BlobSpec> blobs, int killAfterAcks, int round)
      throws InterruptedException {
    CountDownLatch enoughAcks = new CountDownLatch(killAfterAcks);
    Semaphore slots = new Semaphore(CONCURRENCY);
    AtomicBoolean killed = new AtomicBoolean();
    AtomicInteger inFlight = new AtomicInteger();
    List<CompletableFuture<?>> uploads = Collections.synchronizedList(new ArrayList<>());
    List<String> unexpected = Collections.synchronizedList(new ArrayList<>());

    Thread sender = Thread.ofVirtual().start(() -> {
      for (BlobSpec blob : blobs) {
        try {
          slots.acquire();
        } catch (InterruptedException e) {
          return;
        }
        if (killed.get()) {
          slots.release();
          return;
        }
        unacknowledged.put(blob.sha256(), blob);
        inFlight.incrementAndGet();
        HttpRequest put = HttpRequest.newBuilder(cas(server.baseUri(), blob.sha256()))
            .timeout(REQUEST_TIMEOUT)
            .PUT(HttpRequest.BodyPublishers.ofByteArray(blob.bytes()))
            .build();
        uploads.add(client.sendAsync(put, HttpResponse.BodyHandlers.discarding()).whenComplete((response, error) -> {
          inFlight.decrementAndGet();
          slots.release();
          if (response == null) {
            return; // the connection died with the server: not acknowledged
          }
          if (response.statusCode() == 200) {
            acknowledged.put(blob.sha256(), blob);
            unacknowledged.remove(blob.sha256());
            enoughAcks.countDown();
          } else {
            unexpected.add("PUT " + blob + " -> " + response.statusCode());
          }
        }));
      }
    });

    if (!enoughAcks.await(5, TimeUnit.MINUTES)) {
      fail("only " + (killAfterAcks - enoughAcks.getCount()) + " of " + killAfterAcks
          + " uploads acknowledged within 5 minutes; log " + server.log());
    }
    int inFlightAtKill = inFlight.get();
    killed.set(true);
    server.kill9();
    sender.join(TimeUnit.MINUTES.toMillis(2));
    for (CompletableFuture<?> upload : List.copyOf(uploads)) {
      try {
        upload.get(2, TimeUnit.MINUTES);
      } catch (Exception expected) {
        // Failed with the server; accounted for in 'unacknowledged'.
      }
    }
    System.out.printf("[e2e] CrashIT round %d: kill -9 after %d acks with %d uploads in flight; "
            + "%d acknowledged and %d unacknowledged so far%n",
        round, killAfterAcks, inFlightAtKill, acknowledged.size(), unacknowledged.size());
    assertThat(unexpected).as("answers other than 200 to valid uploads before the kill").isEmpty();
    assertThat(inFlightAtKill).as("uploads in flight when the server was killed").isPositive();
  }

  private void verify(ServerProcess server, int round) throws IOException, InterruptedException {
    for (BlobSpec blob : acknowledged.values()) {
      HttpResponse<byte[]> response = get(server, blob);
      assertThat(response.statusCode())
          .as("round %d: GET of %s, acknowledged before a kill -9", round, blob).isEqualTo(200);
      assertThat(E2e.sha256Hex(response.body())).as("round %d: content of acknowledged %s", round, blob)
          .isEqualTo(blob.sha256());
    }
    int served = 0;
    List<BlobSpec> missing = new ArrayList<>();
    for (BlobSpec blob : List.copyOf(unacknowledged.values())) {
      HttpResponse<byte[]> response = get(server, blob);
      if (response.statusCode() == 404) {
        missing.add(blob);
        continue;
      }
      assertThat(response.statusCode()).as("round %d: GET of unacknowledged %s", round, blob).isEqualTo(200);
      assertThat(E2e.sha256Hex(response.body()))
          .as("round %d: a blob the server serves matches its digest: %s", round, blob).isEqualTo(blob.sha256());
      served++;
    }
    // Whatever a crash left behind must not stand in the way of uploading the missing blobs again.
    for (BlobSpec blob : missing) {
      HttpRequest put = HttpRequest.newBuilder(cas(server.baseUri(), blob.sha256()))
          .timeout(REQUEST_TIMEOUT)
          .PUT(HttpRequest.BodyPublishers.ofByteArray(blob.bytes()))
          .build();
      assertThat(client.send(put, HttpResponse.BodyHandlers.discarding()).statusCode())
          .as("round %d: upload again after the crash: %s", round, blob).isEqualTo(200);
      assertThat(E2e.sha256Hex(get(server, blob).body())).isEqualTo(blob.sha256());
      acknowledged.put(blob.sha256(), blob);
      unacknowledged.remove(blob.sha256());
    }
    for (BlobSpec blob : List.copyOf(unacknowledged.values())) {
      acknowledged.put(blob.sha256(), blob); // served intact above: from now on it must stay
      unacknowledged.remove(blob.sha256());
    }
    System.out.printf("[e2e] CrashIT round %d after restart: all acknowledged blobs intact; of the unacknowledged, "
        + "%d served intact and %d missing (uploaded again)%n", round, served, missing.size());
  }

  private HttpResponse<byte[]> get(ServerProcess server, BlobSpec blob) throws IOException, InterruptedException {
    HttpRequest get = HttpRequest.newBuilder(cas(server.baseUri(), blob.sha256())).timeout(REQUEST_TIMEOUT).GET().build();
    return client.send(get, HttpResponse.BodyHandlers.ofByteArray());
  }

  private static URI cas(URI base, String sha256) {
    return base.resolve("/cas/" + sha256);
  }
}
