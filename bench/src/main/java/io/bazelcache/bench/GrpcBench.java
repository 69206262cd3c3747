package io.bazelcache.bench;

import build.bazel.remote.execution.v2.ContentAddressableStorageGrpc;
import build.bazel.remote.execution.v2.FindMissingBlobsRequest;
import build.bazel.remote.execution.v2.FindMissingBlobsResponse;
import com.google.bytestream.ByteStreamGrpc;
import com.google.bytestream.ByteStreamProto.ReadRequest;
import com.google.bytestream.ByteStreamProto.ReadResponse;
import com.google.bytestream.ByteStreamProto.WriteRequest;
import com.google.bytestream.ByteStreamProto.WriteResponse;
import com.google.protobuf.UnsafeByteOperations;
import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.digest.Hasher;
import io.bazelcache.grpc.GrpcCacheServer;
import io.bazelcache.grpc.GrpcOptions;
import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.BlobSizeMismatchException;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.BlobWriter;
import io.bazelcache.storage.DigestMismatchException;
import io.bazelcache.storage.StoreStats;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * gRPC transport benchmark over loopback, against an in-memory store (the default: measures the
 * transport, hashing and copying, not the disk) or the DiskStore:
 *
 * <ul>
 *   <li>FindMissingBlobs with 10,000 digests (half present): p50/p99/max latency;
 *   <li>ByteStream Read of a 64 MiB blob: GB/s;
 *   <li>ByteStream Write of a 64 MiB blob (the server verifies SHA-256): GB/s, next to the machine's
 *       single-thread SHA-256 rate measured in the same run.
 * </ul>
 *
 * Run: {@code bench/run.sh GrpcBench [iterations] [memory|disk-zstd|disk-uncompressed]
 * [findmissing,write,read]} (the last argument picks the parts, all by default; disk stores
 * live in a temporary directory under {@code -Dbench.dir}, default java.io.tmpdir, deleted afterwards).
 */
public final class GrpcBench {
  private static final int MIB = 1024 * 1024;

  /**
   * Unmeasured runs before the measured ones, so that the JIT has compiled the paths: on two cores the
   * compiler threads otherwise compete with the measured runs for a long time. Default: as many as
   * measured runs ({@code -Dbench.warmup=N} to change); writes and reads also warm up for at least
   * {@link #WARMUP_SECONDS}, FindMissingBlobs for at least that long too.
   */
  private static int warmup;

  /**
   * Unmeasured time before the measured uploads and reads, on top of the {@link #warmup} runs: 10 s by
   * default ({@code -Dbench.warmupSeconds=S}), as one JMH warm-up iteration. A 64 MiB upload calls the
   * per-chunk code only 64 times, so it takes about a hundred uploads before the JIT has compiled that
   * code at its top tier; until then the compiler threads take CPU from the measured runs. A server in
   * production has long passed that point. The JIT time that still falls into the measured runs is
   * printed with their results.
   */
  private static final double WARMUP_SECONDS = Double.parseDouble(System.getProperty("bench.warmupSeconds", "10"));

  /** Warm-up runs: at least {@link #warmup} and at least {@link #WARMUP_SECONDS}. */
  static final class Warmup {
    private final long start = System.nanoTime();
    private int runs;

    boolean more() {
      return runs++ < warmup || (System.nanoTime() - start) / 1e9 < WARMUP_SECONDS;
    }

    int runs() {
      return runs - 1;
    }
  }

  /** Milliseconds the JIT compiler threads have spent so far. */
  static long jitMillis() {
    return java.lang.management.ManagementFactory.getCompilationMXBean().getTotalCompilationTime();
  }

  public static void main(String[] args) throws Exception {
    int iterations = args.length > 0 ? Integer.parseInt(args[0]) : 10;
    warmup = Integer.getInteger("bench.warmup", iterations);
    String storeName = args.length > 1 ? args[1] : "memory";
    java.util.Set<String> parts = java.util.Set.of(
        (args.length > 2 ? args[2] : "findmissing,write,read").split(","));
    java.nio.file.Path tmp = null;
    BlobStore store = null;
    io.bazelcache.server.CacheServer full = null;
    switch (storeName) {
      case "memory" -> store = new HeapStore(true);
      case "hash-only" -> store = new HeapStore(false); // verifies uploads, keeps only their keys
      case "disk-zstd", "disk-uncompressed" -> {
        tmp = java.nio.file.Files.createTempDirectory(
            java.nio.file.Path.of(System.getProperty("bench.dir", System.getProperty("java.io.tmpdir"))),
            "grpcbench");
        // 1 GiB: older 64 MiB uploads are evicted as new ones arrive, as in a cache in steady state, so
        // the runs reuse page cache instead of claiming ever more fresh memory (which on this VM is far
        // slower to write the first time).
        store = io.bazelcache.storage.disk.DiskStore.open(tmp, 1L << 30, 0,
            storeName.equals("disk-zstd") ? io.bazelcache.storage.disk.StorageMode.ZSTD
                : io.bazelcache.storage.disk.StorageMode.UNCOMPRESSED, 1L << 30);
      }
      case "server-zstd", "server-uncompressed" -> {
        // The whole server as deployed, built from its configuration (store layers, metrics, access
        // log, interceptors), in this JVM.
        tmp = java.nio.file.Files.createTempDirectory(
            java.nio.file.Path.of(System.getProperty("bench.dir", System.getProperty("java.io.tmpdir"))),
            "grpcbench");
        full = io.bazelcache.server.CacheServer.start(io.bazelcache.config.ConfigLoader.load(new String[] {
            "--dir", tmp.toString(), "--max_size", "1", "--http_address", "127.0.0.1:0",
            "--grpc_address", "127.0.0.1:0", "--storage_mode", storeName.substring("server-".length())},
            Map.of()));
      }
      default -> throw new IllegalArgumentException(
          "store: memory, hash-only, disk-zstd, disk-uncompressed, server-zstd or server-uncompressed");
    }
    GrpcCacheServer server = full != null ? null : new GrpcCacheServer(
        new InetSocketAddress("127.0.0.1", 0), store, store, GrpcOptions.defaults()).start();
    ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1",
            full != null ? full.grpcPort() : server.port())
        .usePlaintext().maxInboundMessageSize(16 * MIB).build();
    Cas cas = store != null ? new StoreCas(store) : new GrpcCas(channel);
    try {
      System.out.printf("cores=%d java=%s store=%s%n", Runtime.getRuntime().availableProcessors(),
          System.getProperty("java.version"), storeName);
      if (parts.contains("findmissing")) {
        findMissing(channel, cas, Math.max(200, iterations * 20));
      }
      byte[] blob = new byte[64 * MIB];
      new Random(42).nextBytes(blob);
      if (parts.contains("write") || parts.contains("read")) {
        double sha = sha256Rate(blob, iterations);
        System.out.printf("sha256 (1 thread, 64 MiB): %.2f GB/s%n", sha);
        System.out.printf("sha256 (1 thread, 64 MiB from a direct buffer, as the server hashes received "
            + "bytes: 4 KiB pieces through a small array): %.2f GB/s%n", sha256RateDirect(blob, iterations));
      }
      if (parts.contains("write")) {
        // Chunk sizes in KiB, -Dbench.writeChunks=1024,64,16 by default (16 KiB: what Bazel sends).
        int series = 0;
        for (String kib : System.getProperty("bench.writeChunks", "1024,64,16").split(",")) {
          write(channel, cas, blob, iterations, Integer.parseInt(kib.trim()) * 1024, ++series);
        }
      }
      if (parts.contains("read")) {
        if (!parts.contains("write")) {
          cas.put(Digest.of(DigestFunction.SHA256, blob), blob);
        }
        Digest d = Digest.of(DigestFunction.SHA256, blob); // as the last write left it: stored
        read(channel, d, iterations);
      }
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      if (server != null) {
        server.close();
        store.close();
      } else {
        full.close();
      }
      if (tmp != null) {
        try (var paths = java.nio.file.Files.walk(tmp)) {
          paths.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
      }
    }
  }

  /** How the benchmark stores its fixtures and checks uploads: in the store, or through the server. */
  interface Cas {
    void put(Digest d, byte[] data) throws Exception;

    boolean contains(Digest d) throws Exception;
  }

  record StoreCas(BlobStore store) implements Cas {
    @Override
    public void put(Digest d, byte[] data) throws Exception {
      store.put(BlobKey.cas(d), data);
    }

    @Override
    public boolean contains(Digest d) throws Exception {
      return store.contains(BlobKey.cas(d));
    }
  }

  record GrpcCas(ManagedChannel channel) implements Cas {
    @Override
    public void put(Digest d, byte[] data) {
      var stub = ContentAddressableStorageGrpc.newBlockingStub(channel);
      var resp = stub.batchUpdateBlobs(build.bazel.remote.execution.v2.BatchUpdateBlobsRequest.newBuilder()
          .addRequests(build.bazel.remote.execution.v2.BatchUpdateBlobsRequest.Request.newBuilder()
              .setDigest(proto(d)).setData(com.google.protobuf.ByteString.copyFrom(data)))
          .build());
      if (resp.getResponses(0).getStatus().getCode() != 0) {
        throw new IllegalStateException("seeding failed: " + resp.getResponses(0).getStatus());
      }
    }

    @Override
    public boolean contains(Digest d) {
      return ContentAddressableStorageGrpc.newBlockingStub(channel).findMissingBlobs(
          FindMissingBlobsRequest.newBuilder().addBlobDigests(proto(d)).build()).getMissingBlobDigestsCount() == 0;
    }

    private static build.bazel.remote.execution.v2.Digest proto(Digest d) {
      return build.bazel.remote.execution.v2.Digest.newBuilder().setHash(d.hash()).setSizeBytes(d.sizeBytes())
          .build();
    }
  }

  static void findMissing(ManagedChannel channel, Cas store, int rounds) throws Exception {
    FindMissingBlobsRequest.Builder req = FindMissingBlobsRequest.newBuilder();
    Random r = new Random(1);
    for (int i = 0; i < 10_000; i++) {
      byte[] b = new byte[32];
      r.nextBytes(b);
      Digest d = Digest.of(DigestFunction.SHA256, b);
      if (i % 2 == 0) {
        store.put(d, b);
      }
      // The hash as UTF-8 bytes, not a String: the same wire bytes, but the client does not encode
      // 10,000 strings again for every call (it shares the two cores with the server being measured).
      req.addBlobDigests(build.bazel.remote.execution.v2.Digest.newBuilder()
          .setHashBytes(com.google.protobuf.ByteString.copyFromUtf8(d.hash()))
          .setSizeBytes(d.sizeBytes()));
    }
    FindMissingBlobsRequest request = req.build();
    var stub = ContentAddressableStorageGrpc.newBlockingStub(channel);
    long warm0 = System.nanoTime();
    for (int i = 0; i < Math.max(50, warmup * 20) || (System.nanoTime() - warm0) / 1e9 < WARMUP_SECONDS; i++) {
      stub.findMissingBlobs(request); // warm-up
    }
    // Like JMH's -gc option: one full collection before measuring moves what the setup and warm-up left
    // alive (the 10,000-digest request, the stored entries) to the old generation. Otherwise each young
    // collection copies those megabytes again until they reach the tenuring age (15 collections), which
    // a long-running server has done long ago.
    System.gc();
    long[] nanos = new long[rounds];
    long[] starts = new long[rounds];
    long uptime0 = java.lang.management.ManagementFactory.getRuntimeMXBean().getUptime();
    long base = System.nanoTime();
    for (int i = 0; i < rounds; i++) {
      long t0 = System.nanoTime();
      starts[i] = t0;
      FindMissingBlobsResponse resp = stub.findMissingBlobs(request);
      nanos[i] = System.nanoTime() - t0;
      if (resp.getMissingBlobDigestsCount() != 5_000) {
        throw new IllegalStateException("wrong answer: " + resp.getMissingBlobDigestsCount());
      }
    }
    if (Boolean.getBoolean("bench.slowest")) { // where the slowest calls fall in the run
      Integer[] order = new Integer[rounds];
      for (int i = 0; i < rounds; i++) {
        order[i] = i;
      }
      Arrays.sort(order, (a, b) -> Long.compare(nanos[b], nanos[a]));
      StringBuilder sb = new StringBuilder("  slowest calls (index: ms):");
      for (int i = 0; i < Math.min(12, rounds); i++) {
        sb.append(String.format(" %d@%.3fs:%.1f", order[i],
            (uptime0 + (starts[order[i]] - base) / 1e6) / 1e3, nanos[order[i]] / 1e6));
      }
      System.out.println(sb);
    }
    Arrays.sort(nanos);
    System.out.printf("FindMissingBlobs 10000 digests (%d calls): p50 %.2f ms, p90 %.2f ms, p99 %.2f ms,"
        + " max %.2f ms%n", rounds, nanos[rounds / 2] / 1e6, nanos[(int) Math.ceil(rounds * 0.9) - 1] / 1e6,
        nanos[(int) Math.ceil(rounds * 0.99) - 1] / 1e6, nanos[rounds - 1] / 1e6);
  }

  static double sha256Rate(byte[] blob, int iterations) {
    double best = 0;
    for (int i = 0; i < iterations + warmup; i++) {
      long t0 = System.nanoTime();
      Hasher h = DigestFunction.SHA256.newHasher();
      h.update(blob, 0, blob.length);
      h.finish();
      best = Math.max(best, blob.length / ((System.nanoTime() - t0) / 1e9) / 1e9);
    }
    return best;
  }

  /**
   * SHA-256 of the blob from off-heap memory, the way the server hashes what it receives
   * ({@code MessageDigest.update(ByteBuffer)} copies 4 KiB at a time into a small array that stays in the
   * L1 cache). On this machine that is faster than hashing one large array in place.
   */
  static double sha256RateDirect(byte[] blob, int iterations) {
    ByteBuffer direct = ByteBuffer.allocateDirect(blob.length);
    direct.put(blob).flip();
    double best = 0;
    for (int i = 0; i < iterations + warmup; i++) {
      long t0 = System.nanoTime();
      Hasher h = DigestFunction.SHA256.newHasher();
      h.update(direct.duplicate());
      h.finish();
      best = Math.max(best, blob.length / ((System.nanoTime() - t0) / 1e9) / 1e9);
    }
    return best;
  }

  /** Uploads distinct 64 MiB blobs (the first bytes differ), so none is already present. */
  static void write(ManagedChannel channel, Cas store, byte[] blob, int iterations,
      int chunk, int series) throws Exception {
    // Let a few chunks queue in the transport (gRPC's default goes "not ready" after 32 KiB).
    var stub = ByteStreamGrpc.newStub(channel).withOnReadyThreshold(4 * MIB);
    List<Double> rates = new ArrayList<>();
    List<Double> ratios = new ArrayList<>();
    List<Double> shaRates = new ArrayList<>(); // the reference: the client's SHA-256 before each upload
    List<Double> tails = new ArrayList<>(); // ms from the last chunk handed to gRPC to the response
    var os = (com.sun.management.OperatingSystemMXBean)
        java.lang.management.ManagementFactory.getOperatingSystemMXBean();
    long cpuNanos = 0;
    long machineTicks = 0;
    double wallSecs = 0;
    Warmup warm = new Warmup();
    boolean warming = true;
    long jit0 = 0;
    for (int i = 0, measured = 0; measured < iterations; i++) {
      if (warming && !warm.more()) {
        warming = false;
        jit0 = jitMillis();
      }
      java.nio.ByteBuffer.wrap(blob).putInt(series).putInt(i).putLong(System.nanoTime());
      // The client needs the digest anyway; timed, it is the SHA-256 reference measured right next to
      // this upload, under the same machine conditions (the SHA-256 rate here drifts by 30% over
      // minutes).
      long h0 = System.nanoTime();
      Digest d = Digest.of(DigestFunction.SHA256, blob);
      double hashSecs = (System.nanoTime() - h0) / 1e9;
      String name = "uploads/" + UUID.randomUUID() + "/blobs/" + d.hash() + "/" + d.sizeBytes();
      CompletableFuture<WriteResponse> done = new CompletableFuture<>();
      Object readyLock = new Object();
      long cpu0 = os.getProcessCpuTime();
      long busy0 = machineBusyTicks();
      long t0 = System.nanoTime();
      var responses = new io.grpc.stub.ClientResponseObserver<WriteRequest, WriteResponse>() {
        WriteResponse last;

        @Override
        public void beforeStart(io.grpc.stub.ClientCallStreamObserver<WriteRequest> requestStream) {
          requestStream.setOnReadyHandler(() -> {
            synchronized (readyLock) {
              readyLock.notifyAll();
            }
          });
        }

        @Override
        public void onNext(WriteResponse v) {
          last = v;
        }

        @Override
        public void onError(Throwable t) {
          done.completeExceptionally(t);
          synchronized (readyLock) {
            readyLock.notifyAll();
          }
        }

        @Override
        public void onCompleted() {
          done.complete(last);
        }
      };
      var out = (io.grpc.stub.ClientCallStreamObserver<WriteRequest>) stub.write(responses);
      for (int off = 0; off < blob.length && !done.isDone(); off += chunk) {
        // Wait (without spinning: the client shares the cores with the server) for flow control.
        synchronized (readyLock) {
          while (!out.isReady() && !done.isDone()) {
            readyLock.wait(100);
          }
        }
        int n = Math.min(chunk, blob.length - off);
        WriteRequest.Builder b = WriteRequest.newBuilder().setWriteOffset(off)
            .setData(UnsafeByteOperations.unsafeWrap(blob, off, n))
            .setFinishWrite(off + n == blob.length);
        if (off == 0) {
          b.setResourceName(name);
        }
        out.onNext(b.build());
      }
      out.onCompleted();
      long sent = System.nanoTime();
      WriteResponse resp = done.get(60, TimeUnit.SECONDS);
      long end = System.nanoTime();
      double secs = (end - t0) / 1e9;
      long cpu = os.getProcessCpuTime() - cpu0;
      long busy = machineBusyTicks() - busy0;
      if (resp.getCommittedSize() != blob.length || !store.contains(d)) {
        throw new IllegalStateException("write failed");
      }
      if (!warming) {
        measured++;
        rates.add(blob.length / secs / 1e9);
        ratios.add(hashSecs / secs);
        shaRates.add(blob.length / hashSecs / 1e9);
        tails.add((end - sent) / 1e6);
        cpuNanos += cpu;
        machineTicks += busy;
        wallSecs += secs;
      }
    }
    long jit = jitMillis() - jit0;
    report("ByteStream Write 64 MiB, " + (chunk / 1024) + " KiB chunks", rates);
    System.out.printf("  after %d warm-up uploads; JIT compiling during the measured ones: %.1f ms per upload%n",
        warm.runs(), (double) jit / iterations);
    ratios.sort(null);
    shaRates.sort(null);
    System.out.printf("  write rate / SHA-256 rate of the same blob just before: median %.0f%%, "
        + "best %.0f%% (that SHA-256 rate: median %.2f GB/s)%n", 100 * ratios.get(ratios.size() / 2),
        100 * ratios.get(ratios.size() - 1), shaRates.get(shaRates.size() / 2));
    tails.sort(null);
    System.out.printf("  from the last chunk handed to gRPC to the response: median %.1f ms, max %.1f ms%n",
        tails.get(tails.size() / 2), tails.get(tails.size() - 1));
    System.out.printf("  process CPU (client and server) per upload: %.1f ms, %.2f cores busy%n",
        cpuNanos / 1e6 / iterations, cpuNanos / 1e9 / wallSecs);
    if (machineTicks > 0) {
      // USER_HZ is 100 on Linux: one tick is 10 ms.
      System.out.printf("  machine CPU (every process and kernel thread) per upload: %.1f ms, %.2f cores busy%n",
          machineTicks * 10.0 / iterations, machineTicks / 100.0 / wallSecs);
    }
  }

  /** Busy CPU ticks of the whole machine so far (/proc/stat: all but idle and iowait), or 0 elsewhere. */
  static long machineBusyTicks() {
    try {
      String[] f = java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/stat")).get(0).trim().split("\\s+");
      long busy = 0;
      for (int i = 1; i < f.length; i++) {
        if (i != 4 && i != 5) { // idle, iowait
          busy += Long.parseLong(f[i]);
        }
      }
      return busy;
    } catch (java.io.IOException | RuntimeException e) {
      return 0;
    }
  }

  static void read(ManagedChannel channel, Digest d, int iterations) {
    var stub = ByteStreamGrpc.newBlockingStub(channel);
    List<Double> rates = new ArrayList<>();
    String name = "blobs/" + d.hash() + "/" + d.sizeBytes();
    Warmup warm = new Warmup();
    boolean warming = true;
    for (int measured = 0; measured < iterations; ) {
      warming = warming && warm.more();
      long t0 = System.nanoTime();
      long total = 0;
      Iterator<ReadResponse> it = stub.read(ReadRequest.newBuilder().setResourceName(name).build());
      while (it.hasNext()) {
        total += it.next().getData().size();
      }
      double secs = (System.nanoTime() - t0) / 1e9;
      if (total != d.sizeBytes()) {
        throw new IllegalStateException("short read " + total);
      }
      if (!warming) {
        measured++;
        rates.add(total / secs / 1e9);
      }
    }
    report("ByteStream Read 64 MiB", rates);
  }

  static void report(String what, List<Double> rates) {
    List<Double> sorted = new ArrayList<>(rates);
    sorted.sort(null);
    System.out.printf("%s (%d runs): median %.2f GB/s, best %.2f GB/s%n", what, sorted.size(),
        sorted.get(sorted.size() / 2), sorted.get(sorted.size() - 1));
  }

  /** A minimal in-memory store that verifies digests on commit, like a real one. */
  static final class HeapStore implements BlobStore {
    private final Map<BlobKey, byte[]> map = new ConcurrentHashMap<>();
    private final boolean keep;

    HeapStore(boolean keep) {
      this.keep = keep;
    }

    @Override
    public Blob get(BlobKey key) {
      byte[] data = key.isEmptyCasBlob() ? new byte[0] : map.get(key);
      if (data == null) {
        return null;
      }
      return new Blob() {
        @Override
        public long size() {
          return data.length;
        }

        @Override
        public InputStream openStream(long offset) {
          return new ByteArrayInputStream(data, (int) offset, data.length - (int) offset);
        }

        @Override
        public void close() {}
      };
    }

    @Override
    public boolean contains(BlobKey key) {
      return key.isEmptyCasBlob() || map.containsKey(key);
    }

    @Override
    public BlobWriter newWriter(BlobKey key, long size) {
      byte[] buf = keep ? new byte[(int) size] : null;
      Hasher hasher = key.function().newHasher();
      return new BlobWriter() {
        int pos;

        @Override
        public BlobKey key() {
          return key;
        }

        @Override
        public long expectedSize() {
          return size;
        }

        @Override
        public void write(ByteBuffer data) throws BlobSizeMismatchException {
          if (pos + (long) data.remaining() > size) {
            throw new BlobSizeMismatchException("too many bytes");
          }
          int n = data.remaining();
          if (buf != null) {
            ByteBuffer dup = data.duplicate();
            data.get(buf, pos, n);
            hasher.update(dup);
          } else {
            hasher.update(data);
          }
          pos += n;
        }

        @Override
        public long bytesWritten() {
          return pos;
        }

        @Override
        public void commit() throws java.io.IOException {
          if (pos != size) {
            throw new BlobSizeMismatchException("short");
          }
          String got = HexFormat.of().formatHex(hasher.finish());
          if (key.kind().isContentAddressed() && !got.equals(key.hash())) {
            throw new DigestMismatchException("mismatch");
          }
          map.put(key, buf != null ? buf : new byte[0]);
        }

        @Override
        public void close() {}
      };
    }

    @Override
    public StoreStats stats() {
      return new StoreStats(0, 0, 0, 0, map.size());
    }
  }

  private GrpcBench() {}
}
