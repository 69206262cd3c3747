package io.bazelcache.storage.layers;

import static org.assertj.core.api.Assertions.assertThat;

import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.FileSlice;
import io.bazelcache.storage.s3.CasblobVectors;
import io.bazelcache.storage.s3.S3Options;
import io.bazelcache.storage.s3.S3Stats.Operation;
import io.bazelcache.storage.s3.S3Stats.Status;
import io.bazelcache.storage.s3.S3Testing;
import io.bazelcache.testing.S3ProxyProcess;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.services.s3.S3Client;

/** The layers over real DiskStores and a real S3 server (S3Proxy), as two replicas sharing a bucket. */
class S3LayersTest {
  private static S3ProxyProcess server;
  private static S3Client raw;

  @TempDir Path tmp;
  private String bucket;
  private final List<Replica> replicas = new ArrayList<>();

  @BeforeAll
  static void startServer() throws IOException {
    server = S3ProxyProcess.shared();
    raw = S3Testing.rawClient(server);
  }

  @BeforeEach
  void newBucket() {
    bucket = S3Testing.newBucketName();
    S3Testing.createBucket(raw, bucket);
  }

  @AfterEach
  void closeReplicas() throws IOException {
    for (Replica r : replicas) {
      r.close();
    }
  }

  private static S3Layers.Options layerOptions() {
    return S3Layers.Options.defaults()
        .withUploads(4, 1000)
        .withUploadRetry(new Uploader.Retry(Duration.ofMillis(50), Duration.ofMillis(500), Duration.ofSeconds(30)),
            Duration.ofSeconds(30));
  }

  private Replica replica(String name, S3Options s3, S3Layers.Options o) throws IOException {
    Replica r = new Replica(tmp.resolve(name), s3, o);
    replicas.add(r);
    return r;
  }

  private Replica replica(String name) throws IOException {
    return replica(name, S3Testing.options(server, bucket, tmp), layerOptions());
  }

  private static byte[] data(int size, long seed) {
    Random r = new Random(seed);
    byte[] b = new byte[size];
    for (int i = 0; i < size; i++) {
      b[i] = (byte) ('a' + r.nextInt(6));
    }
    return b;
  }

  private static BlobKey cas(byte[] d) {
    return BlobKey.cas(Digest.of(DigestFunction.SHA256, d));
  }

  private static byte[] read(Blob b) throws IOException {
    assertThat(b).isNotNull();
    try (b) {
      return b.readAllBytes();
    }
  }

  private static byte[] readSlice(FileSlice s) throws IOException {
    ByteBuffer buf = ByteBuffer.allocate((int) s.count());
    long pos = s.position();
    while (buf.hasRemaining()) {
      int n = s.channel().read(buf, pos);
      if (n < 0) {
        break;
      }
      pos += n;
    }
    return buf.array();
  }

  @Test
  void aSecondReplicaReadsWhatTheFirstUploaded() throws Exception {
    Replica a = replica("a");
    byte[] big = data(2 * 1024 * 1024 + 12345, 1);
    byte[] small = "small".getBytes(StandardCharsets.UTF_8);
    byte[] acValue = "action result bytes".getBytes(StandardCharsets.UTF_8);
    BlobKey ac = BlobKey.ac(Digest.of(DigestFunction.SHA256, "an action".getBytes(StandardCharsets.UTF_8)));
    a.store().put(cas(big), big);
    a.store().put(cas(small), small);
    a.store().put(ac, acValue);
    assertThat(a.layers.uploader().awaitIdle(Duration.ofSeconds(30))).isTrue();
    assertThat(a.stats.uploadsDone.get()).isEqualTo(3);

    // The local casblob file went up as it is.
    String bigObject = a.s3.objectKey(cas(big));
    assertThat(bigObject).isEqualTo("cas.v2/" + cas(big).hash().substring(0, 2) + "/" + cas(big).hash());
    byte[] uploaded = S3Testing.getObject(raw, bucket, bigObject);
    try (Blob local = a.disk.get(cas(big))) {
      assertThat(uploaded).isEqualTo(readSlice(local.zstdFile().orElseThrow()));
    }
    // ...and it is what bazel-remote expects (checked against the format, independently of the codec).
    assertThat(CasblobVectors.checkAndDecode(uploaded, big)).isEqualTo(big);
    assertThat(S3Testing.getObject(raw, bucket, a.s3.objectKey(ac))).isEqualTo(acValue);

    Replica b = replica("b");
    List<BlobKey> all = List.of(cas(big), cas(small), ac);
    assertThat(b.store().findMissing(all)).isEmpty();
    assertThat(b.disk.findMissing(all)).containsExactlyElementsOf(all);

    assertThat(read(b.store().get(cas(big)))).isEqualTo(big);
    assertThat(read(b.store().get(ac))).isEqualTo(acValue);
    assertThat(b.disk.contains(cas(big))).isTrue();
    assertThat(b.stats.requests(Operation.GET, Status.OK)).isEqualTo(2);
    assertThat(b.stats.cacheHits.get()).isEqualTo(2);

    // Now local: no further GETs, and nothing fetched is uploaded again.
    assertThat(read(b.store().get(cas(big)))).isEqualTo(big);
    assertThat(b.stats.requests(Operation.GET)).isEqualTo(2);
    assertThat(b.stats.uploadsQueued.get()).isZero();
    assertThat(b.stats.requests(Operation.PUT)).isZero();
  }

  @Test
  void aCasblobFetchedFromS3IsKeptAsItIsNotRecompressed() throws Exception {
    // As another writer (bazel-remote, another level or version of zstd) would have written it: not
    // byte-identical to what this server's compressor makes of the same content.
    byte[] content = data(3 * 1024 * 1024 + 7, 21);
    byte[] theirs = CasblobVectors.build(content, 1024 * 1024, 1, 19);
    Replica b = replica("b");
    S3Testing.putObject(raw, bucket, b.s3.objectKey(cas(content)), theirs);

    assertThat(read(b.store().get(cas(content)))).isEqualTo(content);
    try (Blob local = b.disk.get(cas(content))) {
      byte[] kept = readSlice(local.zstdFile().orElseThrow());
      assertThat(kept).isEqualTo(theirs);
    }
    // A damaged one (content that does not match its key) stores nothing and is a miss.
    byte[] other = data(3 * 1024 * 1024 + 7, 22);
    BlobKey wrongKey = cas(content.clone());
    byte[] damaged = CasblobVectors.build(other, 1024 * 1024, 1, 3);
    Replica c = replica("c");
    S3Testing.putObject(raw, bucket, c.s3.objectKey(wrongKey), damaged);
    assertThat(c.store().get(wrongKey)).isNull();
    assertThat(c.disk.contains(wrongKey)).isFalse();
    assertThat(c.stats.corruptObjects.get()).isEqualTo(1);
  }

  @Test
  void concurrentMissesForOneKeyCauseOneGet() throws Exception {
    Replica a = replica("a");
    byte[] blob = data(8 * 1024 * 1024, 2);
    a.store().put(cas(blob), blob);
    assertThat(a.layers.uploader().awaitIdle(Duration.ofSeconds(30))).isTrue();

    Replica b = replica("b");
    int n = 32;
    CountDownLatch go = new CountDownLatch(1);
    List<Future<byte[]>> results = new ArrayList<>();
    try (ExecutorService ex = Executors.newVirtualThreadPerTaskExecutor()) {
      for (int i = 0; i < n; i++) {
        results.add(ex.submit(() -> {
          go.await();
          return read(b.store().get(cas(blob)));
        }));
      }
      go.countDown();
      for (Future<byte[]> f : results) {
        assertThat(f.get()).isEqualTo(blob);
      }
    }
    assertThat(b.stats.requests(Operation.GET)).isEqualTo(1);
    assertThat(b.stats.cacheHits.get()).isEqualTo(1);
    assertThat(b.layers.readThrough().fetchesInFlight()).isZero();
  }

  @Test
  void anObjectThatFailsItsDigestIsAMissAndIsNotStored() throws Exception {
    Replica b = replica("b");
    byte[] claimed = data(50_000, 3);
    byte[] actual = data(50_000, 4);
    // A well-formed casblob, as another writer would store it, but of different content.
    Replica w = replica("w", S3Testing.options(server, bucket, tmp), layerOptions().withUploads(0, 1));
    w.disk.put(cas(actual), actual);
    byte[] casblobOfActual;
    try (Blob l = w.disk.get(cas(actual))) {
      casblobOfActual = readSlice(l.zstdFile().orElseThrow());
    }
    S3Testing.putObject(raw, bucket, b.s3.objectKey(cas(claimed)), casblobOfActual);

    assertThat(b.store().get(cas(claimed))).isNull();
    assertThat(b.disk.contains(cas(claimed))).isFalse();
    assertThat(b.disk.stats().numFiles()).isZero();
    assertThat(b.stats.corruptObjects.get()).isEqualTo(1);
    assertThat(b.stats.cacheMisses.get()).isEqualTo(1);
    assertThat(b.stats.cacheHits.get()).isZero();

    // Garbage is a miss too.
    BlobKey junkKey = cas("junk".getBytes(StandardCharsets.UTF_8));
    S3Testing.putObject(raw, bucket, b.s3.objectKey(junkKey), data(3000, 5));
    assertThat(b.store().get(junkKey)).isNull();
    assertThat(b.disk.contains(junkKey)).isFalse();
    assertThat(b.stats.corruptObjects.get()).isEqualTo(2);
  }

  @Test
  void objectsLargerThanMaxProxyBlobSizeAreMisses() throws Exception {
    Replica a = replica("a");
    byte[] large = data(5000, 6);
    byte[] fits = data(900, 7);
    a.store().put(cas(large), large);
    a.store().put(cas(fits), fits);
    assertThat(a.layers.uploader().awaitIdle(Duration.ofSeconds(30))).isTrue();

    Replica b = replica("b", S3Testing.options(server, bucket, tmp), layerOptions().withMaxProxyBlobSize(1000));
    assertThat(b.store().get(cas(large))).isNull();
    assertThat(b.disk.contains(cas(large))).isFalse();
    assertThat(read(b.store().get(cas(fits)))).isEqualTo(fits);
  }

  @Test
  void repeatedExistenceChecksAreAnsweredWithoutHeads() throws Exception {
    Replica a = replica("a");
    List<BlobKey> present = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      byte[] d = ("blob " + i).getBytes(StandardCharsets.UTF_8);
      a.store().put(cas(d), d);
      present.add(cas(d));
    }
    assertThat(a.layers.uploader().awaitIdle(Duration.ofSeconds(30))).isTrue();
    List<BlobKey> absent = List.of(cas("x".getBytes(StandardCharsets.UTF_8)),
        cas("y".getBytes(StandardCharsets.UTF_8)), cas("z".getBytes(StandardCharsets.UTF_8)));
    List<BlobKey> query = new ArrayList<>(present);
    query.addAll(1, absent);

    Replica b = replica("b");
    assertThat(b.store().findMissing(query)).containsExactlyElementsOf(absent);
    assertThat(b.stats.requests(Operation.HEAD)).isEqualTo(23);

    // The same build again: only the absent ones are asked again (negative answers are not cached).
    assertThat(b.store().findMissing(query)).containsExactlyElementsOf(absent);
    assertThat(b.stats.requests(Operation.HEAD)).isEqualTo(26);
    assertThat(b.stats.existenceCacheHits.get()).isEqualTo(20);
    assertThat(b.store().contains(present.get(0))).isTrue();
    assertThat(b.stats.requests(Operation.HEAD)).isEqualTo(26);

    // Local entries are never asked about.
    Replica c = replica("c");
    for (int i = 0; i < 5; i++) {
      byte[] d = ("local " + i).getBytes(StandardCharsets.UTF_8);
      c.disk.put(cas(d), d);
      assertThat(c.store().contains(cas(d))).isTrue();
    }
    assertThat(c.stats.requests(Operation.HEAD)).isZero();
  }

  @Test
  void concurrentExistenceChecksOfOneKeyShareOneHead() throws Exception {
    Replica a = replica("a");
    List<BlobKey> present = new ArrayList<>();
    for (int i = 0; i < 10; i++) {
      byte[] d = ("shared " + i).getBytes(StandardCharsets.UTF_8);
      a.store().put(cas(d), d);
      present.add(cas(d));
    }
    assertThat(a.layers.uploader().awaitIdle(Duration.ofSeconds(30))).isTrue();

    Replica b = replica("b");
    CountDownLatch go = new CountDownLatch(1);
    List<Future<List<BlobKey>>> results = new ArrayList<>();
    try (ExecutorService ex = Executors.newVirtualThreadPerTaskExecutor()) {
      for (int i = 0; i < 16; i++) {
        results.add(ex.submit(() -> {
          go.await();
          return b.store().findMissing(present);
        }));
      }
      go.countDown();
      for (Future<List<BlobKey>> f : results) {
        assertThat(f.get()).isEmpty();
      }
    }
    // Each key was asked once: later callers joined the HEAD in flight or found the cached answer.
    assertThat(b.stats.requests(Operation.HEAD)).isEqualTo(10);
  }

  @Test
  void aFullUploadQueueDropsUploadsWithoutBlockingTheClient() throws Exception {
    // A "slow S3": a socket that accepts connections and never answers, so the only uploader hangs.
    try (ServerSocket blackhole = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
      S3Options slow = S3Testing.options("127.0.0.1:" + blackhole.getLocalPort(), bucket, tmp)
          .withTimeouts(Duration.ofSeconds(1), Duration.ofSeconds(3), 1);
      Replica r = replica("r", slow, layerOptions().withUploads(1, 2)
          .withUploadRetry(Uploader.Retry.defaults(), Duration.ofMillis(200)));
      long start = System.nanoTime();
      for (int i = 0; i < 10; i++) {
        byte[] d = ("queued " + i).getBytes(StandardCharsets.UTF_8);
        r.store().put(cas(d), d);
        assertThat(r.disk.contains(cas(d))).isTrue();
      }
      long elapsedMs = (System.nanoTime() - start) / 1_000_000;
      // Were a client to wait for its upload, each write would take the 3 s request timeout.
      assertThat(elapsedMs).as("10 local writes with S3 hanging").isLessThan(10_000);
      // At most one in the worker's hands and two in the queue; the rest dropped and counted.
      assertThat(r.stats.uploadsDropped.get()).isGreaterThanOrEqualTo(7);
      assertThat(r.stats.uploadsDropped.get() + r.stats.uploadsQueued.get()).isEqualTo(10);
      assertThat(r.stats.uploadQueueLength()).isLessThanOrEqualTo(2);
    }
  }

  @Test
  void closeDrainsTheUploadQueue() throws Exception {
    Replica a = replica("a");
    List<BlobKey> keys = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      byte[] d = data(10_000 + i, 100 + i);
      a.store().put(cas(d), d);
      keys.add(cas(d));
    }
    a.close();
    assertThat(a.stats.uploadsDone.get()).isEqualTo(20);
    for (BlobKey k : keys) {
      assertThat(S3Testing.getObject(raw, bucket, a.s3.objectKey(k))).as(k.toString()).isNotNull();
    }
  }

  @Test
  void zeroUploadersMeansNoUploads() throws Exception {
    Replica a = replica("a", S3Testing.options(server, bucket, tmp), layerOptions().withUploads(0, 10));
    byte[] d = "not uploaded".getBytes(StandardCharsets.UTF_8);
    a.store().put(cas(d), d);
    a.close();
    assertThat(a.stats.requests(Operation.PUT)).isZero();
    assertThat(a.stats.uploadsDropped.get()).isZero();
    assertThat(raw.listObjectsV2(x -> x.bucket(bucket)).contents()).isEmpty();
  }

  @Test
  void uncompressedModeUploadsAndReadsRawObjects() throws Exception {
    S3Options o = S3Testing.options(server, bucket, tmp).withZstd(false);
    Replica a = replica("a", o, layerOptions());
    byte[] d = data(200_000, 9);
    a.store().put(cas(d), d);
    assertThat(a.layers.uploader().awaitIdle(Duration.ofSeconds(30))).isTrue();
    assertThat(S3Testing.getObject(raw, bucket, "cas/" + cas(d).hash().substring(0, 2) + "/" + cas(d).hash()))
        .isEqualTo(d);
    Replica b = replica("b", o, layerOptions());
    assertThat(read(b.store().get(cas(d)))).isEqualTo(d);
  }
}
