package io.bazelcache.bench;

import io.bazelcache.storage.disk.BlobIndex;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.util.SplittableRandom;

/**
 * Heap cost per entry of the disk store's index: inserts N entries with random 32-byte hashes (as the
 * store does, starting from a small table that grows), then compares heap used after full GCs before and
 * after. Also prints the index arrays' own size and lookup/insert rates (informational only).
 *
 * <p>Run: {@code bench/run.sh IndexMemoryBench 10000000}
 */
public final class IndexMemoryBench {
  public static void main(String[] args) {
    int n = args.length > 0 ? Integer.parseInt(args[0]) : 10_000_000;
    MemoryMXBean mem = ManagementFactory.getMemoryMXBean();
    long before = usedAfterGc(mem);
    SplittableRandom rnd = new SplittableRandom(1);
    BlobIndex index = new BlobIndex(1024, 42);
    long t0 = System.nanoTime();
    for (int i = 0; i < n; i++) {
      index.insert(rnd.nextInt(6), rnd.nextLong(), rnd.nextLong(), rnd.nextLong(), rnd.nextLong(),
          1 + rnd.nextInt(1 << 20), 1 + rnd.nextInt(256), 0, true);
    }
    long t1 = System.nanoTime();
    long after = usedAfterGc(mem);
    // Look every entry up again (same random sequence).
    rnd = new SplittableRandom(1);
    long found = 0;
    long t2 = System.nanoTime();
    for (int i = 0; i < n; i++) {
      int code = rnd.nextInt(6);
      long h0 = rnd.nextLong();
      long h1 = rnd.nextLong();
      long h2 = rnd.nextLong();
      long h3 = rnd.nextLong();
      rnd.nextInt(1 << 20);
      rnd.nextInt(256);
      if (index.find(code, h0, h1, h2, h3) >= 0) {
        found++;
      }
    }
    long t3 = System.nanoTime();
    System.out.printf("entries:                 %,d (found again: %,d)%n", index.count(), found);
    System.out.printf("heap used before/after:  %,d / %,d bytes%n", before, after);
    System.out.printf("heap bytes per entry:    %.1f%n", (after - before) / (double) n);
    System.out.printf("index arrays per entry:  %.1f (%,d bytes)%n", index.arrayBytes() / (double) n, index.arrayBytes());
    System.out.printf("insert: %.0f ns/entry, find: %.0f ns/entry (single thread, informational)%n",
        (t1 - t0) / (double) n, (t3 - t2) / (double) n);
    java.lang.ref.Reference.reachabilityFence(index);
  }

  private static long usedAfterGc(MemoryMXBean mem) {
    for (int i = 0; i < 3; i++) {
      System.gc();
      try {
        Thread.sleep(200);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    return mem.getHeapMemoryUsage().getUsed();
  }
}
