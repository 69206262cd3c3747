package io.bazelcache.storage.disk;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.github.luben.zstd.Zstd;
import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.BlobSizeMismatchException;
import io.bazelcache.storage.BlobTooLargeException;
import io.bazelcache.storage.BlobWriter;
import io.bazelcache.storage.DigestMismatchException;
import io.bazelcache.storage.FileSlice;
import io.bazelcache.storage.InsufficientStorageException;
import io.bazelcache.storage.Kind;
import io.bazelcache.storage.StoreStats;
import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class DiskStoreTest {
  private static final int MIB = 1024 * 1024;
  private static final long GIB = 1024L * MIB;
  private static final int B = 4096;

  @TempDir Path dir;
  @RegisterExtension final OpenStores open = new OpenStores();

  private DiskStore store(long maxSize, StorageMode mode) throws IOException {
    return store(maxSize, 0, mode, Long.MAX_VALUE);
  }

  private DiskStore store(long maxSize, long hard, StorageMode mode, long maxBlob) throws IOException {
    return open.open(dir, maxSize, hard, mode, maxBlob);
  }

  private DiskStore reopen(DiskStore old, long maxSize, StorageMode mode) throws IOException {
    old.close();
    open.remove(old);
    return store(maxSize, mode);
  }

  static byte[] data(int n, long seed) {
    Random r = new Random(seed);
    byte[] b = new byte[n];
    for (int i = 0; i < n; i++) {
      b[i] = (byte) ('a' + r.nextInt(20)); // compressible, not trivially
    }
    return b;
  }

  static BlobKey cas(DigestFunction f, byte[] content) {
    return BlobKey.cas(Digest.of(f, content));
  }

  static BlobKey ac(DigestFunction f, long seed) {
    byte[] h = new byte[32];
    new Random(seed).nextBytes(h);
    return new BlobKey(Kind.AC, f, java.util.HexFormat.of().formatHex(h));
  }

  static byte[] read(DiskStore s, BlobKey k) throws IOException {
    try (Blob b = s.get(k)) {
      return b == null ? null : b.readAllBytes();
    }
  }

  private Path fileOf(BlobKey k, long size, boolean zstd) {
    return dir.resolve(k.function().lowerName()).resolve(k.kind().dirName()).resolve(k.hash().substring(0, 2))
        .resolve(k.hash() + "-" + size + (zstd ? ".zst" : ""));
  }

  /** Every regular file under the store other than the layout marker. */
  private List<Path> dataFiles() throws IOException {
    try (Stream<Path> s = Files.walk(dir)) {
      return s.filter(Files::isRegularFile)
          .filter(p -> !p.getFileName().toString().equals(DiskStore.MARKER_NAME))
          .sorted()
          .toList();
    }
  }

  static Stream<Arguments> modesAndFunctions() {
    List<Arguments> a = new ArrayList<>();
    for (StorageMode m : StorageMode.values()) {
      for (DigestFunction f : DigestFunction.values()) {
        a.add(Arguments.of(m, f));
      }
    }
    return a.stream();
  }

  @ParameterizedTest
  @MethodSource("modesAndFunctions")
  void roundTripsEveryKindInEveryModeAndFunction(StorageMode mode, DigestFunction f) throws IOException {
    DiskStore s = store(GIB, mode);
    boolean zstd = mode == StorageMode.ZSTD;
    for (int size : new int[] {1, 4096, 100_000, 3 * MIB + MIB / 2}) {
      byte[] content = data(size, size);
      BlobKey k = cas(f, content);
      s.put(k, content);
      assertThat(Files.exists(fileOf(k, size, zstd))).isTrue();
      try (Blob b = s.get(k)) {
        assertThat(b.size()).isEqualTo(size);
        assertThat(b.readAllBytes()).isEqualTo(content);
        assertThat(b.rawFile().isPresent()).isEqualTo(!zstd);
        assertThat(b.zstdFile().isPresent()).isEqualTo(zstd);
        if (zstd) {
          FileSlice z = b.zstdFile().orElseThrow();
          ByteBuffer whole = ByteBuffer.allocate((int) z.count());
          z.channel().read(whole, z.position());
          assertThat(Zstd.decompress(whole.array(), size)).isEqualTo(content);
        } else {
          FileSlice r = b.rawFile().orElseThrow();
          assertThat(r.count()).isEqualTo(size);
        }
      }
    }
    BlobKey acKey = ac(f, 7);
    byte[] acValue = data(300, 8);
    s.put(acKey, acValue);
    assertThat(read(s, acKey)).isEqualTo(acValue);
    assertThat(Files.exists(fileOf(acKey, 300, false))).isTrue();
    BlobKey rawKey = new BlobKey(Kind.RAW, f, acKey.hash());
    s.put(rawKey, new byte[] {1, 2, 3});
    assertThat(read(s, rawKey)).containsExactly(1, 2, 3);
    assertThat(read(s, acKey)).isEqualTo(acValue);
    assertThat(s.stats().numFiles()).isEqualTo(6);
  }

  @ParameterizedTest
  @MethodSource("modesAndFunctions")
  void streamsFromAnyOffsetIncludingChunkBoundaries(StorageMode mode, DigestFunction f) throws IOException {
    DiskStore s = store(GIB, mode);
    byte[] content = data(3 * MIB + MIB / 2, 42);
    BlobKey k = cas(f, content);
    s.put(k, content);
    s = reopen(s, GIB, mode); // also through the first-get verification path
    try (Blob b = s.get(k)) {
      long[] offsets = {0, 1, MIB - 1, MIB, MIB + 1, 2L * MIB, 3L * MIB - 1, 3L * MIB, content.length - 1, content.length};
      for (long off : offsets) {
        try (InputStream in = b.openStream(off)) {
          assertThat(in.readAllBytes()).as("offset %d", off)
              .isEqualTo(Arrays.copyOfRange(content, (int) off, content.length));
        }
      }
    }
  }

  @Test
  void emptyCasBlobIsAlwaysPresentAndNeverStored() throws IOException {
    DiskStore s = store(GIB, StorageMode.ZSTD);
    for (DigestFunction f : DigestFunction.values()) {
      BlobKey empty = BlobKey.cas(Digest.empty(f));
      assertThat(s.contains(empty)).isTrue();
      try (Blob b = s.get(empty)) {
        assertThat(b.size()).isZero();
        assertThat(b.readAllBytes()).isEmpty();
      }
      s.put(empty, new byte[0]);
      assertThatThrownBy(() -> s.put(empty, new byte[] {1})).isInstanceOf(DigestMismatchException.class);
      assertThat(s.findMissing(List.of(empty))).isEmpty();
    }
    assertThat(dataFiles()).isEmpty();
    assertThat(s.stats().numFiles()).isZero();
  }

  @ParameterizedTest
  @MethodSource("modesAndFunctions")
  void badUploadsStoreNothing(StorageMode mode, DigestFunction f) throws IOException {
    DiskStore s = store(GIB, mode);
    byte[] content = data(2 * MIB + 3, 1);
    BlobKey k = cas(f, content);
    byte[] wrong = content.clone();
    wrong[MIB] ^= 1;
    assertThatThrownBy(() -> s.put(k, wrong)).isInstanceOf(DigestMismatchException.class);
    // Short: announce the right size, send one byte less.
    try (BlobWriter w = s.newWriter(k, content.length)) {
      w.write(ByteBuffer.wrap(content, 0, content.length - 1));
      assertThatThrownBy(w::commit).isInstanceOf(BlobSizeMismatchException.class);
    }
    // Long: one byte more than announced.
    try (BlobWriter w = s.newWriter(k, content.length)) {
      w.write(ByteBuffer.wrap(content));
      assertThatThrownBy(() -> w.write(ByteBuffer.wrap(new byte[1]))).isInstanceOf(BlobSizeMismatchException.class);
      assertThatThrownBy(w::commit).isInstanceOf(IOException.class);
    }
    // Abandoned: closed without commit.
    try (BlobWriter w = s.newWriter(k, content.length)) {
      w.write(ByteBuffer.wrap(content));
    }
    // AC value shorter than announced.
    BlobKey a = ac(f, 3);
    try (BlobWriter w = s.newWriter(a, 10)) {
      w.write(ByteBuffer.wrap(new byte[9]));
      assertThatThrownBy(w::commit).isInstanceOf(BlobSizeMismatchException.class);
    }
    assertThat(s.get(k)).isNull();
    assertThat(s.contains(k)).isFalse();
    assertThat(s.get(a)).isNull();
    assertThat(dataFiles()).isEmpty();
    assertThat(s.stats()).isEqualTo(new StoreStats(0, 0, 0, GIB, 0));
    // A good upload afterwards works.
    s.put(k, content);
    assertThat(read(s, k)).isEqualTo(content);
  }

  @Test
  void evictsLeastRecentlyUsedAndCountsFourKiBBlocks() throws Exception {
    DiskStore s = store(6 * B, StorageMode.UNCOMPRESSED);
    BlobKey[] k = new BlobKey[7];
    for (int i = 0; i < 7; i++) {
      k[i] = ac(DigestFunction.SHA256, i);
    }
    s.put(k[0], new byte[1]); // 1 block
    s.put(k[1], new byte[B]); // 1 block
    s.put(k[2], new byte[B + 1]); // 2 blocks
    s.put(k[3], new byte[100]); // 1 block
    assertThat(s.stats()).isEqualTo(new StoreStats(5L * B, 1 + B + B + 1 + 100, 0, 6 * B, 4));
    assertThat(s.get(k[0])).isNotNull().satisfies(Blob::close); // k0 becomes most recent
    assertThat(s.contains(k[1])).isTrue(); // so does k1; LRU order now k2, k3, k0, k1
    s.put(k[4], new byte[2 * B]); // 5 + 2 > 6: evicts k2 (2 blocks)
    s.awaitDeletions();
    assertThat(s.contains(k[2])).isFalse();
    assertThat(Files.exists(fileOf(k[2], B + 1, false))).isFalse();
    assertThat(s.findMissing(List.of(k[0], k[1], k[3], k[4]))).isEmpty();
    assertThat(s.stats().currentSize()).isEqualTo(5L * B); // findMissing hits refresh: LRU k0, k1, k3, k4
    s.put(k[5], new byte[1]); // 6 blocks: fits without eviction
    assertThat(s.stats().numFiles()).isEqualTo(5);
    s.put(k[6], new byte[B + 1]); // 6 + 2 > 6: evicts k0 and k1
    s.awaitDeletions();
    assertThat(s.findMissing(List.of(k[0], k[1], k[2], k[3], k[4], k[5], k[6])))
        .containsExactly(k[0], k[1], k[2]);
    assertThat(s.stats()).isEqualTo(new StoreStats(6L * B, 100 + 2 * B + 1 + B + 1, 0, 6 * B, 4));
    assertThat(dataFiles()).hasSize(4);
    assertThat(s.pendingDeleteBytes()).isZero();
  }

  @Test
  void zstdEntriesAreCountedByTheirCompressedSize() throws IOException {
    DiskStore s = store(GIB, StorageMode.ZSTD);
    byte[] content = new byte[MIB]; // zeros compress to almost nothing
    BlobKey k = cas(DigestFunction.SHA256, content);
    s.put(k, content);
    long fileLen = Files.size(fileOf(k, MIB, true));
    assertThat(fileLen).isLessThan(B);
    assertThat(s.stats()).isEqualTo(new StoreStats(B, MIB, 0, GIB, 1));
  }

  @Test
  void reservationsCountUploadsInFlightAnd507WhenNothingFits() throws IOException {
    DiskStore s = store(10 * B, StorageMode.UNCOMPRESSED);
    BlobKey a = ac(DigestFunction.SHA256, 1);
    BlobKey b = ac(DigestFunction.SHA256, 2);
    BlobKey c = ac(DigestFunction.SHA256, 3);
    s.put(c, new byte[3 * B]);
    BlobWriter wa = s.newWriter(a, 6 * B);
    assertThat(s.stats().reservedSize()).isEqualTo(6L * B);
    assertThat(s.contains(c)).isTrue(); // 3 + 6 reserved fits
    assertThatThrownBy(() -> s.newWriter(b, 5 * B)).isInstanceOf(InsufficientStorageException.class);
    assertThat(s.stats().reservedSize()).isEqualTo(6L * B);
    BlobWriter wb = s.newWriter(b, 4 * B); // fits after evicting c
    assertThat(s.contains(c)).isFalse();
    assertThat(s.stats().reservedSize()).isEqualTo(10L * B);
    wa.write(ByteBuffer.wrap(new byte[6 * B]));
    wa.commit();
    wa.close();
    wb.close(); // abandoned: reservation released
    assertThat(s.stats()).isEqualTo(new StoreStats(6L * B, 6L * B, 0, 10 * B, 1));
    assertThat(read(s, a)).hasSize(6 * B);
  }

  @Test
  void hardLimitCountsEvictionsNotYetDeleted() throws Exception {
    DiskStore s = store(10 * B, 12 * B, StorageMode.UNCOMPRESSED, Long.MAX_VALUE);
    for (int i = 0; i < 10; i++) {
      s.put(ac(DigestFunction.SHA256, i), new byte[B]);
    }
    s.holdDeletions(true);
    try {
      s.put(ac(DigestFunction.SHA256, 100), new byte[2 * B]); // evicts 2: 10 + 2 pending = 12, ok
      assertThat(s.pendingDeleteBytes()).isEqualTo(2L * B);
      // 10 stored + 2 pending + 1 new would be 13 > 12 after evicting 1 more... rejected.
      assertThatThrownBy(() -> s.newWriter(ac(DigestFunction.SHA256, 101), B))
          .isInstanceOf(InsufficientStorageException.class);
      assertThat(s.stats().reservedSize()).isZero();
    } finally {
      s.holdDeletions(false);
    }
    s.awaitDeletions();
    assertThat(s.pendingDeleteBytes()).isZero();
    s.put(ac(DigestFunction.SHA256, 101), new byte[B]);
    assertThat(s.stats().currentSize()).isLessThanOrEqualTo(10L * B);
  }

  @Test
  void tooLargeBlobs() throws IOException {
    DiskStore s = store(10 * B, 0, StorageMode.ZSTD, 5 * B);
    assertThatThrownBy(() -> s.newWriter(ac(DigestFunction.SHA256, 1), 5 * B + 1))
        .isInstanceOf(BlobTooLargeException.class);
    DiskStore s2 = DiskStore.open(dir.resolve("other"), 10 * B, 0, StorageMode.UNCOMPRESSED, Long.MAX_VALUE);
    open.add(s2);
    assertThatThrownBy(() -> s2.newWriter(ac(DigestFunction.SHA256, 1), 10 * B + 1))
        .isInstanceOf(BlobTooLargeException.class);
    assertThatThrownBy(() -> s2.newWriter(ac(DigestFunction.SHA256, 2), Long.MAX_VALUE))
        .isInstanceOf(BlobTooLargeException.class);
    s2.put(ac(DigestFunction.SHA256, 1), new byte[10 * B]); // exactly the cache fits
    assertThat(s.stats().reservedSize()).isZero();
  }

  @Test
  void concurrentUploadsOfOneDigestLeaveOneGoodFile() throws Exception {
    DiskStore s = store(GIB, StorageMode.ZSTD);
    byte[] content = data(MIB + 12345, 9);
    BlobKey k = cas(DigestFunction.BLAKE3, content);
    int n = 16;
    CountDownLatch go = new CountDownLatch(1);
    try (ExecutorService ex = Executors.newVirtualThreadPerTaskExecutor()) {
      List<Future<?>> fs = new ArrayList<>();
      for (int t = 0; t < n; t++) {
        fs.add(ex.submit(() -> {
          go.await();
          try (BlobWriter w = s.newWriter(k, content.length)) {
            for (int off = 0; off < content.length; off += 65536) {
              w.write(ByteBuffer.wrap(content, off, Math.min(65536, content.length - off)));
              Thread.yield();
            }
            w.commit();
          }
          return null;
        }));
      }
      go.countDown();
      for (Future<?> f : fs) {
        f.get();
      }
    }
    s.awaitDeletions();
    assertThat(read(s, k)).isEqualTo(content);
    assertThat(dataFiles()).containsExactly(fileOf(k, content.length, true));
    StoreStats st = s.stats();
    assertThat(st.numFiles()).isEqualTo(1);
    assertThat(st.reservedSize()).isZero();
    assertThat(st.currentSize()).isEqualTo(BlobIndex.blocksFor(Files.size(fileOf(k, content.length, true))) * B);
  }

  @Test
  void concurrentUploadsGetsAndEvictionsKeepIndexAndFilesConsistent() throws Exception {
    DiskStore s = store(8 * B, StorageMode.UNCOMPRESSED);
    int keys = 12;
    byte[][] contents = new byte[keys][];
    BlobKey[] ks = new BlobKey[keys];
    for (int i = 0; i < keys; i++) {
      contents[i] = data(B + i, i);
      ks[i] = cas(DigestFunction.SHA256, contents[i]);
    }
    try (ExecutorService ex = Executors.newVirtualThreadPerTaskExecutor()) {
      List<Future<?>> fs = new ArrayList<>();
      for (int t = 0; t < 8; t++) {
        int seed = t;
        fs.add(ex.submit(() -> {
          Random r = new Random(seed);
          for (int i = 0; i < 300; i++) {
            int j = r.nextInt(keys);
            if (r.nextBoolean()) {
              try {
                s.put(ks[j], contents[j]);
              } catch (InsufficientStorageException e) {
                // all space reserved by the other threads right now
              }
            } else {
              try (Blob b = s.get(ks[j])) {
                if (b != null) {
                  assertThat(b.readAllBytes()).isEqualTo(contents[j]);
                }
              }
            }
          }
          return null;
        }));
      }
      for (Future<?> f : fs) {
        f.get();
      }
    }
    s.awaitDeletions();
    List<Path> expected = new ArrayList<>();
    long expectedBytes = 0;
    for (int i = 0; i < keys; i++) {
      if (s.contains(ks[i])) {
        expected.add(fileOf(ks[i], contents[i].length, false));
        expectedBytes += BlobIndex.blocksFor(contents[i].length) * B; // key 0 (B bytes) takes 1 block, the rest 2
      }
    }
    assertThat(dataFiles()).containsExactlyInAnyOrderElementsOf(expected);
    assertThat(s.stats().currentSize()).isEqualTo(expectedBytes).isLessThanOrEqualTo(8L * B);
    assertThat(s.stats().reservedSize()).isZero();
  }

  @Test
  void queuedDeletionNeverRemovesANewerFileAtTheSamePath() throws Exception {
    DiskStore s = store(4 * B, StorageMode.ZSTD);
    byte[] c = data(3 * B, 1);
    BlobKey k = cas(DigestFunction.SHA256, c);
    s.put(k, c);
    Path p = fileOf(k, c.length, true);
    s.holdDeletions(true);
    try {
      s.put(ac(DigestFunction.SHA256, 1), new byte[3 * B]); // evicts k; its deletion is queued
      assertThat(s.contains(k)).isFalse();
      assertThat(s.pendingDeleteBytes()).isPositive();
      s.put(k, c); // re-uploaded to the same path before the deletion runs (evicts the AC entry)
    } finally {
      s.holdDeletions(false);
    }
    s.awaitDeletions();
    assertThat(Files.exists(p)).isTrue();
    assertThat(read(s, k)).isEqualTo(c);
    assertThat(dataFiles()).containsExactly(p);
  }

  @Test
  void restartRebuildsIndexWithSizesAndRecencyFromNamesAndStat() throws Exception {
    DiskStore s = store(GIB, StorageMode.ZSTD);
    BlobKey[] ks = new BlobKey[4];
    byte[][] cs = new byte[4][];
    for (int i = 0; i < 4; i++) {
      cs[i] = data(B * (i + 1), 100 + i);
      ks[i] = cas(i % 2 == 0 ? DigestFunction.SHA256 : DigestFunction.BLAKE3, cs[i]);
      s.put(ks[i], cs[i]);
    }
    BlobKey a = ac(DigestFunction.SHA256, 5);
    s.put(a, new byte[5000]);
    StoreStats before = s.stats();
    s.close();
    open.remove(s);
    // Recency from max(atime, mtime): make ks[2] oldest, then ks[0], ks[3], a, ks[1] newest.
    long base = System.currentTimeMillis() - 100_000_000L;
    int[] order = {2, 0, 3, -1, 1};
    for (int pos = 0; pos < order.length; pos++) {
      Path p = order[pos] < 0 ? fileOf(a, 5000, false) : fileOf(ks[order[pos]], cs[order[pos]].length, true);
      FileTime t = FileTime.fromMillis(base + pos * 10_000L);
      Files.setLastModifiedTime(p, t);
      Files.setAttribute(p, "lastAccessTime", t);
    }
    // Proof that open reads no content: garble one file's bytes (same length); it still loads.
    Path garbled = fileOf(ks[3], cs[3].length, true);
    byte[] g = Files.readAllBytes(garbled);
    Arrays.fill(g, 100, g.length, (byte) 0x5a);
    Files.write(garbled, g);
    Files.setLastModifiedTime(garbled, FileTime.fromMillis(base + 20_000L));
    Files.setAttribute(garbled, "lastAccessTime", FileTime.fromMillis(base + 20_000L));

    DiskStore r = store(GIB, StorageMode.ZSTD);
    assertThat(r.stats()).isEqualTo(before);
    // LRU order follows the timestamps: evict one at a time by reopening smaller and checking survivors.
    long total = before.currentSize();
    long ks2Size = BlobIndex.blocksFor(Files.size(fileOf(ks[2], cs[2].length, true))) * B;
    DiskStore smaller = reopen(r, total - ks2Size, StorageMode.ZSTD);
    smaller.awaitDeletions();
    assertThat(smaller.findMissing(List.of(ks[0], ks[1], ks[2], ks[3], a))).containsExactly(ks[2]);
    long ks0Size = BlobIndex.blocksFor(Files.size(fileOf(ks[0], cs[0].length, true))) * B;
    DiskStore smaller2 = reopen(smaller, total - ks2Size - ks0Size, StorageMode.ZSTD);
    smaller2.awaitDeletions();
    assertThat(smaller2.findMissing(List.of(ks[0], ks[1], ks[2], ks[3], a))).containsExactly(ks[0], ks[2]);
    // Loaded entries are verified on first get: the garbled one is a miss and is dropped.
    assertThat(smaller2.get(ks[3])).isNull();
    smaller2.awaitDeletions();
    assertThat(Files.exists(garbled)).isFalse();
    assertThat(smaller2.contains(ks[3])).isFalse();
    assertThat(read(smaller2, ks[1])).isEqualTo(cs[1]);
    assertThat(read(smaller2, a)).hasSize(5000);
  }

  @ParameterizedTest
  @MethodSource("modesAndFunctions")
  void flippedByteAfterRestartIsAMissAndDropped(StorageMode mode, DigestFunction f) throws Exception {
    DiskStore s = store(GIB, mode);
    byte[] content = data(2 * MIB + 77, 5);
    BlobKey k = cas(f, content);
    s.put(k, content);
    boolean zstd = mode == StorageMode.ZSTD;
    Path p = fileOf(k, content.length, zstd);
    s.close();
    open.remove(s);
    try (RandomAccessFile raf = new RandomAccessFile(p.toFile(), "rw")) {
      long pos = raf.length() - 1000; // in the data (last chunk for casblob)
      raf.seek(pos);
      int b = raf.read();
      raf.seek(pos);
      raf.write(b ^ 0x01);
    }
    DiskStore r = store(GIB, mode);
    assertThat(r.contains(k)).isTrue(); // loaded without reading
    assertThat(r.get(k)).isNull();
    r.awaitDeletions();
    assertThat(r.contains(k)).isFalse();
    assertThat(Files.exists(p)).isFalse();
    assertThat(r.stats().numFiles()).isZero();
    assertThat(r.stats().currentSize()).isZero();
  }

  @Test
  void truncatedFilesAreMisses() throws Exception {
    DiskStore s = store(GIB, StorageMode.ZSTD);
    byte[] c1 = data(MIB + 5, 1);
    byte[] c2 = data(MIB + 6, 2);
    BlobKey k1 = cas(DigestFunction.SHA256, c1);
    BlobKey k2 = cas(DigestFunction.SHA256, c2);
    s.put(k1, c1);
    s.put(k2, c2);
    BlobKey a = ac(DigestFunction.BLAKE3, 1);
    s.put(a, data(9000, 3));
    // While running (entries verified at write): truncation is caught by the header/size check.
    Path p1 = fileOf(k1, c1.length, true);
    try (RandomAccessFile raf = new RandomAccessFile(p1.toFile(), "rw")) {
      raf.setLength(raf.length() - 1);
    }
    assertThat(s.get(k1)).isNull();
    s.awaitDeletions();
    assertThat(Files.exists(p1)).isFalse();
    // After a restart.
    s.close();
    open.remove(s);
    Path p2 = fileOf(k2, c2.length, true);
    try (RandomAccessFile raf = new RandomAccessFile(p2.toFile(), "rw")) {
      raf.setLength(raf.length() - 10);
    }
    Path pa = fileOf(a, 9000, false);
    try (RandomAccessFile raf = new RandomAccessFile(pa.toFile(), "rw")) {
      raf.setLength(8999);
    }
    DiskStore r = store(GIB, StorageMode.ZSTD);
    assertThat(r.contains(a)).isFalse(); // raw file shorter than its name says: dropped at load
    assertThat(Files.exists(pa)).isFalse();
    assertThat(r.get(k2)).isNull();
    r.awaitDeletions();
    assertThat(Files.exists(p2)).isFalse();
    assertThat(r.stats().numFiles()).isZero();
  }

  @Test
  void vanishedFileIsAMissAndDropped() throws Exception {
    DiskStore s = store(GIB, StorageMode.UNCOMPRESSED);
    byte[] c = data(10_000, 1);
    BlobKey k = cas(DigestFunction.SHA256, c);
    s.put(k, c);
    Files.delete(fileOf(k, c.length, false));
    assertThat(s.contains(k)).isTrue();
    assertThat(s.get(k)).isNull();
    assertThat(s.contains(k)).isFalse();
    assertThat(s.stats()).isEqualTo(new StoreStats(0, 0, 0, GIB, 0));
  }

  @Test
  void openBlobSurvivesEvictionOfItsFile() throws Exception {
    DiskStore s = store(3 * B, StorageMode.UNCOMPRESSED);
    byte[] c = data(2 * B, 1);
    BlobKey k = cas(DigestFunction.SHA256, c);
    s.put(k, c);
    try (Blob b = s.get(k)) {
      s.put(ac(DigestFunction.SHA256, 1), new byte[2 * B]); // evicts k
      s.awaitDeletions();
      assertThat(Files.exists(fileOf(k, c.length, false))).isFalse();
      assertThat(b.readAllBytes()).isEqualTo(c);
    }
  }

  @Test
  void startupDeletesTempFilesAndIgnoresUnknownFiles() throws Exception {
    DiskStore s = store(GIB, StorageMode.ZSTD);
    byte[] c = data(100, 1);
    BlobKey k = cas(DigestFunction.SHA256, c);
    s.put(k, c);
    s.close();
    open.remove(s);
    Path hhDir = fileOf(k, 100, true).getParent();
    Path temp = hhDir.resolve(k.hash() + "-100.zst.abc-1.tmp");
    Files.write(temp, new byte[50]);
    Path unknown = hhDir.resolve("notes.txt");
    Files.writeString(unknown, "hello");
    Path misplaced = dir.resolve("sha256/cas/00").resolve(k.hash() + "-100.zst");
    if (!k.hash().startsWith("00")) {
      Files.write(misplaced, new byte[100]);
    }
    Path topLevel = dir.resolve("something-else");
    Files.createDirectories(topLevel);
    DiskStore r = store(GIB, StorageMode.ZSTD);
    assertThat(Files.exists(temp)).isFalse();
    assertThat(Files.exists(unknown)).isTrue();
    assertThat(r.stats().numFiles()).isEqualTo(1);
    assertThat(read(r, k)).isEqualTo(c);
  }

  @Test
  void sameHexUnderDifferentFunctionsAndKindsIsKeptApart() throws IOException {
    DiskStore s = store(GIB, StorageMode.ZSTD);
    BlobKey shaAc = ac(DigestFunction.SHA256, 77);
    BlobKey b3Ac = new BlobKey(Kind.AC, DigestFunction.BLAKE3, shaAc.hash());
    BlobKey shaRaw = new BlobKey(Kind.RAW, DigestFunction.SHA256, shaAc.hash());
    s.put(shaAc, new byte[] {1});
    s.put(b3Ac, new byte[] {2, 2});
    s.put(shaRaw, new byte[] {3, 3, 3});
    assertThat(read(s, shaAc)).containsExactly(1);
    assertThat(read(s, b3Ac)).containsExactly(2, 2);
    assertThat(read(s, shaRaw)).containsExactly(3, 3, 3);
    byte[] c = data(1000, 1);
    BlobKey b3Cas = cas(DigestFunction.BLAKE3, c);
    s.put(b3Cas, c);
    BlobKey shaSameHex = new BlobKey(Kind.CAS, DigestFunction.SHA256, b3Cas.hash());
    assertThat(s.contains(shaSameHex)).isFalse();
    assertThat(s.get(shaSameHex)).isNull();
    s = reopen(s, GIB, StorageMode.ZSTD);
    assertThat(read(s, shaAc)).containsExactly(1);
    assertThat(read(s, b3Ac)).containsExactly(2, 2);
    assertThat(read(s, shaRaw)).containsExactly(3, 3, 3);
    assertThat(s.get(shaSameHex)).isNull();
    assertThat(read(s, b3Cas)).isEqualTo(c);
  }

  @Test
  void filesOfBothFormatsCoexistAcrossModeChanges() throws Exception {
    DiskStore s = store(GIB, StorageMode.ZSTD);
    byte[] z = data(MIB + 1, 1);
    BlobKey kz = cas(DigestFunction.SHA256, z);
    s.put(kz, z);
    s = reopen(s, GIB, StorageMode.UNCOMPRESSED);
    byte[] u = data(MIB + 2, 2);
    BlobKey ku = cas(DigestFunction.SHA256, u);
    s.put(ku, u);
    assertThat(read(s, kz)).isEqualTo(z);
    s = reopen(s, GIB, StorageMode.ZSTD);
    assertThat(read(s, kz)).isEqualTo(z);
    assertThat(read(s, ku)).isEqualTo(u);
    // Re-uploading in the other format replaces the old file.
    s.put(ku, u);
    s.awaitDeletions();
    assertThat(dataFiles()).containsExactlyInAnyOrder(fileOf(kz, z.length, true), fileOf(ku, u.length, true));
    assertThat(s.stats().numFiles()).isEqualTo(2);
  }

  private byte[] casblobOf(byte[] content) throws IOException {
    Path p = Files.createTempFile(dir, "src", ".tmp-casblob");
    try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(p, java.nio.file.StandardOpenOption.WRITE);
        io.bazelcache.storage.casblob.CasBlobWriter w = new io.bazelcache.storage.casblob.CasBlobWriter(ch, content.length)) {
      w.write(ByteBuffer.wrap(content));
      w.finish();
    }
    byte[] b = Files.readAllBytes(p);
    Files.delete(p);
    return b;
  }

  @ParameterizedTest
  @MethodSource("modesAndFunctions")
  void putCasblobKeepsTheGivenBytesAndChecksThem(StorageMode mode, DigestFunction f) throws Exception {
    DiskStore s = store(GIB, mode);
    byte[] content = data(2 * MIB + 17, 3);
    BlobKey k = cas(f, content);
    byte[] casblob = casblobOf(content);
    s.putCasblob(k, content.length, new java.io.ByteArrayInputStream(casblob));
    assertThat(Files.readAllBytes(fileOf(k, content.length, true))).isEqualTo(casblob);
    assertThat(read(s, k)).isEqualTo(content);

    byte[] other = data(1000, 4);
    BlobKey wrongKey = cas(f, data(1000, 5));
    assertThatThrownBy(() -> s.putCasblob(wrongKey, 1000, new java.io.ByteArrayInputStream(casblobOf(other))))
        .isInstanceOf(DigestMismatchException.class);
    BlobKey ok = cas(f, other);
    byte[] damaged = casblobOf(other);
    damaged[0] ^= 1;
    assertThatThrownBy(() -> s.putCasblob(ok, 1000, new java.io.ByteArrayInputStream(damaged)))
        .isInstanceOf(io.bazelcache.storage.casblob.CasBlobFormatException.class);
    assertThatThrownBy(() -> s.putCasblob(ok, 999, new java.io.ByteArrayInputStream(casblobOf(other))))
        .isInstanceOf(BlobSizeMismatchException.class);
    assertThat(s.contains(wrongKey)).isFalse();
    assertThat(s.contains(ok)).isFalse();
    assertThat(dataFiles()).containsExactly(fileOf(k, content.length, true));
    assertThat(s.stats().reservedSize()).isZero();
    assertThat(s.stats().numFiles()).isEqualTo(1);
  }

  @Test
  void overwritingAnAcEntryDeletesTheOldFile() throws Exception {
    DiskStore s = store(GIB, StorageMode.ZSTD);
    BlobKey a = ac(DigestFunction.SHA256, 1);
    s.put(a, new byte[10]);
    s.put(a, new byte[20]);
    s.awaitDeletions();
    assertThat(read(s, a)).hasSize(20);
    assertThat(dataFiles()).containsExactly(fileOf(a, 20, false));
    assertThat(s.stats()).isEqualTo(new StoreStats(B, 20, 0, GIB, 1));
  }

  @Test
  void findMissingForTenThousandKeys() throws IOException {
    DiskStore s = store(GIB, StorageMode.UNCOMPRESSED);
    List<BlobKey> keys = new ArrayList<>();
    List<BlobKey> absent = new ArrayList<>();
    for (int i = 0; i < 10_000; i++) {
      BlobKey k = ac(DigestFunction.values()[i % 2], i);
      keys.add(k);
      if (i % 37 == 0) {
        s.put(k, new byte[] {(byte) i});
      } else {
        absent.add(k);
      }
    }
    assertThat(s.findMissing(keys)).containsExactlyElementsOf(absent);
  }

  @Test
  void layoutMarkerIsWrittenAndChecked() throws IOException {
    DiskStore s = store(GIB, StorageMode.ZSTD);
    s.close();
    open.remove(s);
    assertThat(Files.readString(dir.resolve(DiskStore.MARKER_NAME))).isEqualTo(DiskStore.MARKER_CONTENT);
    assertThat(Files.isDirectory(dir.resolve("blake3/raw/ff"))).isTrue();
    Files.writeString(dir.resolve(DiskStore.MARKER_NAME), "bazel-cache disk layout 99\n");
    assertThatThrownBy(() -> DiskStore.open(dir, GIB, 0, StorageMode.ZSTD, GIB)).isInstanceOf(IOException.class);
  }
}
