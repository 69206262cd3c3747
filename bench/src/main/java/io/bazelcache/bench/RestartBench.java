package io.bazelcache.bench;

import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.StoreStats;
import io.bazelcache.storage.disk.DiskStore;
import io.bazelcache.storage.disk.StorageMode;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.ArrayList;
import java.util.List;

/**
 * Restart time of the disk store: fills a directory once with N small, valid CAS files (raw format, real
 * SHA-256 names, 16–200 bytes) written directly in the store's layout, then times {@code DiskStore.open}
 * until it returns (the server starts listening only then) several times.
 *
 * <p>Run: {@code bench/run.sh RestartBench /tmp/bazel-cache-restart-bench 1000000 5}
 */
public final class RestartBench {
  public static void main(String[] args) throws Exception {
    Path dir = Path.of(args.length > 0 ? args[0] : "/tmp/bazel-cache-restart-bench");
    int n = args.length > 1 ? Integer.parseInt(args[1]) : 1_000_000;
    int runs = args.length > 2 ? Integer.parseInt(args[2]) : 5;
    long max = 1L << 50;
    Path done = dir.resolve("bench-populated-" + n);
    if (!Files.exists(done)) {
      populate(dir, n);
      Files.createFile(done);
    }
    com.sun.management.OperatingSystemMXBean os =
        (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();
    for (int r = 1; r <= runs; r++) {
      long c0 = os.getProcessCpuTime();
      long t0 = System.nanoTime();
      DiskStore s = DiskStore.open(dir, max, 0, StorageMode.ZSTD, max);
      long t1 = System.nanoTime();
      long c1 = os.getProcessCpuTime();
      StoreStats st = s.stats();
      s.close();
      System.out.printf("run %d: open took %,d ms wall, %,d ms CPU (all threads, incl. GC) for %,d entries"
          + " (%,d bytes on disk); load average %.1f%n",
          r, (t1 - t0) / 1_000_000, (c1 - c0) / 1_000_000, st.numFiles(), st.currentSize(),
          os.getSystemLoadAverage());
    }
  }

  private static void populate(Path dir, int n) throws Exception {
    DiskStore.open(dir, 1L << 50, 0, StorageMode.ZSTD, 1L << 40).close(); // layout and directories
    long t0 = System.nanoTime();
    int threads = 4;
    try (ExecutorService ex = Executors.newFixedThreadPool(threads)) {
      List<Future<?>> fs = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        int part = t;
        fs.add(ex.submit(() -> {
          byte[] buf = new byte[200];
          for (int i = part; i < n; i += threads) {
            int size = 16 + (int) ((i * 7919L) % 185);
            ByteBuffer.wrap(buf).putLong(i).putLong(0x6265_6e63_6821L);
            byte[] content = java.util.Arrays.copyOf(buf, size);
            String hash = HexFormat.of().formatHex(DigestFunction.SHA256.hashOf(content));
            Path p = dir.resolve("sha256/cas").resolve(hash.substring(0, 2)).resolve(hash + "-" + size);
            Files.write(p, content);
          }
          return null;
        }));
      }
      for (Future<?> f : fs) {
        f.get();
      }
    }
    System.out.printf("populated %,d files in %,d s%n", n, (System.nanoTime() - t0) / 1_000_000_000L);
  }

  private RestartBench() {}
}
