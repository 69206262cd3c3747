package io.bazelcache.storage.disk;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.BlobSizeMismatchException;
import io.bazelcache.storage.BlobWriter;
import io.bazelcache.storage.DigestMismatchException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code DiskWriter}'s {@code write(List, Runnable release)}: large writes are hashed on the caller's thread
 * while the file side writes them; the caller's buffers are handed back through {@code release}, exactly
 * once, at the latest when commit or close returns, and never read afterwards.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class DiskWriterReleaseTest {
  private static final int KIB = 1024;
  private static final int MIB = 1024 * KIB;
  private static final long GIB = 1024L * MIB;
  private static final byte GARBAGE = 0x5A;
  private static final byte[] GARBAGE_BYTES = filled(512 * KIB, GARBAGE);

  @TempDir Path dir;
  @RegisterExtension final OpenStores open = new OpenStores();

  private DiskStore store(StorageMode mode) throws IOException {
    return open.open(dir, GIB, 0, mode, Long.MAX_VALUE);
  }

  // ------------------------------------------------------------------------------------------------
  // Helpers

  private static byte[] filled(int n, byte b) {
    byte[] a = new byte[n];
    Arrays.fill(a, b);
    return a;
  }

  static byte[] random(int n, long seed) {
    byte[] b = new byte[n];
    new SplittableRandom(seed).nextBytes(b);
    return b;
  }

  /** Repeated text: compresses well, so the zstd file side does real compression work. */
  static byte[] text(int n, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    StringBuilder sb = new StringBuilder(n + 100);
    String[] words = {"bazel", "remote", "cache", "action", "digest", "blob", "upload", "casblob", "zstd"};
    while (sb.length() < n) {
      sb.append("line ").append(r.nextInt(1000)).append(": ");
      for (int i = 0; i < 8; i++) {
        sb.append(words[r.nextInt(words.length)]).append(' ');
      }
      sb.append('\n');
    }
    return Arrays.copyOf(sb.toString().getBytes(StandardCharsets.US_ASCII), n);
  }

  static BlobKey cas(byte[] content) {
    return BlobKey.cas(Digest.of(DigestFunction.SHA256, content));
  }

  /** A direct buffer holding {@code content[off, off+len)} between a random position and its limit. */
  static ByteBuffer direct(byte[] content, int off, int len, SplittableRandom r) {
    int pad = r.nextInt(17);
    ByteBuffer b = ByteBuffer.allocateDirect(len + pad + r.nextInt(17));
    b.position(pad);
    b.put(content, off, len);
    b.position(pad).limit(pad + len);
    return b;
  }

  /** Overwrites the whole buffer with garbage; its position and limit stay as they are. */
  static void trash(ByteBuffer b) {
    ByteBuffer whole = b.duplicate().clear(); // absolute bulk puts stop at the limit: use a full view
    for (int at = 0; at < whole.capacity(); at += GARBAGE_BYTES.length) {
      whole.put(at, GARBAGE_BYTES, 0, Math.min(GARBAGE_BYTES.length, whole.capacity() - at));
    }
  }

  /** One write(List, release) call: its buffers and how often its release ran. */
  static final class Call {
    final List<ByteBuffer> buffers;
    final long bytes;
    final AtomicInteger releases = new AtomicInteger();

    Call(List<ByteBuffer> buffers) {
      this.buffers = buffers;
      this.bytes = buffers.stream().mapToLong(ByteBuffer::remaining).sum();
    }
  }

  /**
   * Feeds one writer: records every async call; each release counts itself and then trashes the call's
   * buffers, so a store that reads a buffer after releasing it writes garbage.
   */
  static class Feeder {
    final BlobWriter w;
    final List<Call> calls = new ArrayList<>();
    final AtomicInteger released = new AtomicInteger();
    long plainWrites;

    Feeder(BlobWriter w) {
      this.w = w;
    }

    Call async(List<ByteBuffer> buffers) throws IOException {
      Call c = new Call(buffers);
      calls.add(c);
      w.write(c.buffers, () -> {
        int n = c.releases.incrementAndGet();
        released.incrementAndGet();
        if (n == 1) {
          c.buffers.forEach(DiskWriterReleaseTest::trash);
        }
      });
      return c;
    }

    /** Writes {@code content} as a mix of async list writes (1 B .. 300 KiB pieces) and small plain writes. */
    void feed(byte[] content, long seed) throws IOException {
      SplittableRandom r = new SplittableRandom(seed);
      int off = 0;
      int ops = 0;
      while (off < content.length) {
        if (ops++ % 7 == 3) {
          int n = Math.min(content.length - off, 1 + r.nextInt(8 * KIB));
          ByteBuffer heap = ByteBuffer.wrap(Arrays.copyOfRange(content, off, off + n)); // the store consumes it
          w.write(heap);
          plainWrites++;
          off += n;
          continue;
        }
        int pieces = 1 + r.nextInt(5);
        List<ByteBuffer> list = new ArrayList<>();
        for (int i = 0; i < pieces && off < content.length; i++) {
          int want = r.nextInt(4) == 0 ? 1 + r.nextInt(64) : 1 + r.nextInt(300 * KIB);
          int n = Math.min(content.length - off, want);
          list.add(direct(content, off, n, r));
          off += n;
        }
        async(list);
      }
    }

    void assertEachReleasedOnce() {
      for (int i = 0; i < calls.size(); i++) {
        assertThat(calls.get(i).releases.get()).as("releases of call %d of %d", i, calls.size()).isEqualTo(1);
      }
      assertThat(released.get()).isEqualTo(calls.size());
    }
  }

  private static byte[] read(DiskStore s, BlobKey k) throws IOException {
    try (Blob b = s.get(k)) {
      return b == null ? null : b.readAllBytes();
    }
  }

  /** Files under the store a discarded upload must not leave: temp files ({@code *.tmp}) and entries. */
  private List<Path> leftovers() throws IOException {
    try (Stream<Path> s = Files.walk(dir)) {
      return s.filter(Files::isRegularFile)
          .filter(p -> !p.getFileName().toString().equals(DiskStore.MARKER_NAME))
          .sorted()
          .toList();
    }
  }

  private List<Path> tempFiles() throws IOException {
    try (Stream<Path> s = Files.walk(dir)) {
      return s.filter(p -> p.getFileName().toString().endsWith(DiskStore.TEMP_SUFFIX)).toList();
    }
  }

  private void assertNothingStored(DiskStore s, BlobKey k) throws IOException {
    assertThat(s.contains(k)).isFalse();
    assertThat(s.get(k)).isNull();
    assertThat(tempFiles()).isEmpty();
    assertThat(leftovers()).isEmpty();
    assertThat(s.stats().numFiles()).isZero();
    assertThat(s.stats().reservedSize()).isZero();
  }

  /** {@code count} async calls of {@code callBytes} each, as 3 direct buffers, from {@code content[from..]}. */
  private static int feedLarge(Feeder f, byte[] content, int from, int count, int callBytes, long seed)
      throws IOException {
    SplittableRandom r = new SplittableRandom(seed);
    int off = from;
    for (int i = 0; i < count; i++) {
      int a = 1 + r.nextInt(callBytes / 2);
      int b = 1 + r.nextInt(callBytes - a - 1);
      int c = callBytes - a - b;
      f.async(List.of(direct(content, off, a, r), direct(content, off + a, b, r), direct(content, off + a + b, c, r)));
      off += callBytes;
    }
    return off;
  }

  static Stream<Arguments> modesAndContents() {
    List<Arguments> a = new ArrayList<>();
    for (StorageMode m : StorageMode.values()) {
      a.add(Arguments.of(m, false));
      a.add(Arguments.of(m, true));
    }
    return a.stream();
  }

  // ------------------------------------------------------------------------------------------------
  // 1 + 2: round trip; releases exactly once, all by the time commit returns; no reads after release

  @ParameterizedTest(name = "{0}, compressible={1}")
  @MethodSource("modesAndContents")
  void asyncWritesRoundTripAndReleaseEachCallOnceBeforeCommitReturns(StorageMode mode, boolean compressible)
      throws IOException {
    DiskStore s = store(mode);
    long seed = mode.ordinal() * 2 + (compressible ? 1 : 0);
    int size = 10 * MIB + new SplittableRandom(seed).nextInt(10 * MIB);
    byte[] content = compressible ? text(size, seed) : random(size, seed);
    BlobKey k = cas(content);
    Feeder f;
    try (BlobWriter w = s.newWriter(k, size)) {
      f = new Feeder(w);
      f.feed(content, seed + 100);
      assertThat(w.bytesWritten()).isEqualTo(size);
      w.commit();
      // Every release has run when commit returns (each one trashed its buffers).
      f.assertEachReleasedOnce();
    }
    // The test exercised both paths: calls below and above PARALLEL_HASH_BYTES, and plain writes.
    assertThat(f.calls).anyMatch(c -> c.bytes < DiskStore.PARALLEL_HASH_BYTES);
    assertThat(f.calls.stream().filter(c -> c.bytes >= DiskStore.PARALLEL_HASH_BYTES).count())
        .isGreaterThan(10);
    assertThat(f.plainWrites).isPositive();
    // The content is intact although every buffer was overwritten with garbage as soon as it was released.
    assertThat(s.contains(k)).isTrue();
    assertThat(read(s, k)).isEqualTo(content);
    assertThat(tempFiles()).isEmpty();
    assertThat(Files.exists(dir.resolve(k.function().lowerName()).resolve(k.kind().dirName())
        .resolve(k.hash().substring(0, 2))
        .resolve(DiskStore.fileName(k.hash(), size, mode == StorageMode.ZSTD)))).isTrue();
    // Reopened, the file is checked against its digest from disk: it holds the content, not garbage.
    s.close();
    open.remove(s);
    DiskStore r = store(mode);
    assertThat(read(r, k)).isEqualTo(content);
    f.assertEachReleasedOnce(); // still exactly once: no late second run
  }

  /**
   * A caller may recycle a buffer as soon as it is released (e.g. hand the object to the next read). The
   * store must then leave it alone entirely, including its position and limit. BLAKE3 (pure Java here)
   * hashes slower than the file side writes random, incompressible bytes, so most releases run on the
   * writing thread, right after its hashing is done: the case where a late touch would show.
   */
  @ParameterizedTest
  @EnumSource(StorageMode.class)
  void releasedBuffersAreNotModifiedAfterRelease(StorageMode mode) throws IOException {
    DiskStore s = store(mode);
    int callBytes = MIB;
    int calls = 12;
    byte[] content = random(calls * callBytes, 7);
    BlobKey k = BlobKey.cas(Digest.of(DigestFunction.BLAKE3, content));
    Thread caller = Thread.currentThread();
    AtomicInteger releasedOnCallerThread = new AtomicInteger();
    List<ByteBuffer> all = new ArrayList<>();
    List<AtomicInteger> counts = new ArrayList<>();
    try (BlobWriter w = s.newWriter(k, content.length)) {
      SplittableRandom r = new SplittableRandom(8);
      for (int i = 0; i < calls; i++) {
        ByteBuffer b = direct(content, i * callBytes, callBytes, r);
        all.add(b);
        AtomicInteger count = new AtomicInteger();
        counts.add(count);
        w.write(List.of(b), () -> {
          count.incrementAndGet();
          if (Thread.currentThread() == caller) {
            releasedOnCallerThread.incrementAndGet();
          }
          trash(b);
          b.clear(); // "recycled": position 0, limit capacity, as a new owner would set it up
        });
      }
      w.commit();
    }
    assertThat(counts).allMatch(c -> c.get() == 1);
    assertThat(read(s, k)).isEqualTo(content);
    for (int i = 0; i < all.size(); i++) {
      ByteBuffer b = all.get(i);
      assertThat(b.position())
          .as("position of buffer %d after its release (%d of %d releases ran on the writing thread)",
              i, releasedOnCallerThread.get(), calls)
          .isZero();
      assertThat(b.limit()).as("limit of buffer %d after its release", i).isEqualTo(b.capacity());
    }
  }

  // ------------------------------------------------------------------------------------------------
  // 3: close without commit

  @ParameterizedTest
  @EnumSource(StorageMode.class)
  void closeWithoutCommitWaitsForAllReleasesAndLeavesNothing(StorageMode mode) throws IOException {
    DiskStore s = store(mode);
    byte[] content = text(12 * MIB, 3);
    BlobKey k = cas(content);
    BlobWriter w = s.newWriter(k, content.length);
    Feeder f = new Feeder(w);
    int off = feedLarge(f, content, 0, 14, 512 * KIB, 4); // 7 MiB: all of it may still be on the file side
    assertThat(w.bytesWritten()).isEqualTo(off);
    w.close();
    f.assertEachReleasedOnce();
    w.close(); // idempotent
    f.assertEachReleasedOnce();
    assertNothingStored(s, k);
    // The store (and the pooled compressor the discarded upload gave back) still works.
    s.put(k, content);
    assertThat(read(s, k)).isEqualTo(content);
    assertThat(tempFiles()).isEmpty();
  }

  // ------------------------------------------------------------------------------------------------
  // 4: digest mismatch

  @ParameterizedTest
  @EnumSource(StorageMode.class)
  void digestMismatchStoresNothingAndReleasesEverything(StorageMode mode) throws IOException {
    DiskStore s = store(mode);
    byte[] content = random(6 * MIB + 12_345, 5);
    byte[] other = content.clone();
    other[other.length - 1] ^= 1; // same size, differs only in the last call
    BlobKey k = cas(other);
    Feeder f;
    try (BlobWriter w = s.newWriter(k, content.length)) {
      f = new Feeder(w);
      f.feed(content, 6);
      assertThatThrownBy(w::commit).isInstanceOf(DigestMismatchException.class);
      f.assertEachReleasedOnce();
      assertThatThrownBy(w::commit).isInstanceOf(IOException.class); // the upload is over
    }
    f.assertEachReleasedOnce();
    assertNothingStored(s, k);
    assertThat(s.contains(cas(content))).isFalse();
  }

  // ------------------------------------------------------------------------------------------------
  // 5: more bytes than announced

  static Stream<Arguments> modesAndOverflowSizes() {
    List<Arguments> a = new ArrayList<>();
    for (StorageMode m : StorageMode.values()) {
      a.add(Arguments.of(m, 6)); // a small (synchronous) write
      a.add(Arguments.of(m, 300 * KIB)); // a large (parallel) write
    }
    return a.stream();
  }

  @ParameterizedTest(name = "{0}, overflowing call of {1} bytes")
  @MethodSource("modesAndOverflowSizes")
  void overflowThrowsAndStillReleases(StorageMode mode, int overflowBytes) throws IOException {
    DiskStore s = store(mode);
    int size = 2 * 512 * KIB + 5;
    byte[] content = random(size + overflowBytes, 9);
    BlobKey k = cas(Arrays.copyOf(content, size));
    Feeder f;
    try (BlobWriter w = s.newWriter(k, size)) {
      f = new Feeder(w);
      int off = feedLarge(f, content, 0, 2, 512 * KIB, 10); // 5 bytes short of the announced size
      SplittableRandom r = new SplittableRandom(11);
      List<ByteBuffer> over = List.of(direct(content, off, 1, r), direct(content, off + 1, overflowBytes - 1, r));
      assertThatThrownBy(() -> f.async(over)).isInstanceOf(BlobSizeMismatchException.class);
      assertThat(f.calls.get(f.calls.size() - 1).releases.get()).isEqualTo(1);
      f.assertEachReleasedOnce(); // the failed write discarded the upload: the earlier calls are back too
      assertThatThrownBy(w::commit).isInstanceOf(IOException.class);
    }
    f.assertEachReleasedOnce();
    assertNothingStored(s, k);
  }

  // ------------------------------------------------------------------------------------------------
  // 6: writes after the end

  @ParameterizedTest
  @EnumSource(StorageMode.class)
  void writeAfterCommitOrCloseThrowsAndStillReleases(StorageMode mode) throws IOException {
    DiskStore s = store(mode);
    byte[] content = random(MIB, 12);
    BlobKey k = cas(content);
    SplittableRandom r = new SplittableRandom(13);
    Feeder f;
    try (BlobWriter w = s.newWriter(k, content.length)) {
      f = new Feeder(w);
      feedLarge(f, content, 0, 2, 512 * KIB, 14);
      w.commit();
      f.assertEachReleasedOnce();
      Call small = new Call(List.of(direct(content, 0, 10, r)));
      Call large = new Call(List.of(direct(content, 0, 300 * KIB, r)));
      for (Call c : List.of(small, large)) {
        assertThatThrownBy(() -> w.write(c.buffers, c.releases::incrementAndGet)).isInstanceOf(IOException.class);
        assertThat(c.releases.get()).isEqualTo(1);
      }
    }
    assertThat(read(s, k)).isEqualTo(content); // the committed blob is unaffected

    byte[] content2 = random(MIB, 15);
    BlobKey k2 = cas(content2);
    BlobWriter w2 = s.newWriter(k2, content2.length);
    Feeder f2 = new Feeder(w2);
    feedLarge(f2, content2, 0, 1, 512 * KIB, 16);
    w2.close();
    f2.assertEachReleasedOnce();
    Call small = new Call(List.of(direct(content2, 0, 10, r)));
    Call large = new Call(List.of(direct(content2, 512 * KIB, 300 * KIB, r)));
    for (Call c : List.of(small, large)) {
      assertThatThrownBy(() -> w2.write(c.buffers, c.releases::incrementAndGet)).isInstanceOf(IOException.class);
      assertThat(c.releases.get()).isEqualTo(1);
    }
    assertThatThrownBy(w2::commit).isInstanceOf(IOException.class);
    assertThat(s.contains(k2)).isFalse();
    assertThat(tempFiles()).isEmpty();
  }

  // ------------------------------------------------------------------------------------------------
  // 7: concurrent uploads

  @ParameterizedTest
  @EnumSource(StorageMode.class)
  void concurrentAsyncUploadsRoundTrip(StorageMode mode) throws Exception {
    DiskStore s = store(mode);
    int threads = 8;
    int blobsPerThread = 3;
    AtomicLong calls = new AtomicLong();
    AtomicLong releases = new AtomicLong();
    List<BlobKey> keys = java.util.Collections.synchronizedList(new ArrayList<>());
    CountDownLatch start = new CountDownLatch(1);
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<?>> futures = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        int thread = t;
        futures.add(pool.submit(() -> {
          start.await();
          // Released buffers go back to this thread's pool (trashed) and are reused for later calls.
          ConcurrentLinkedQueue<ByteBuffer> free = new ConcurrentLinkedQueue<>();
          SplittableRandom r = new SplittableRandom(1000 + thread);
          for (int i = 0; i < blobsPerThread; i++) {
            int size = 3 * MIB + r.nextInt(6 * MIB);
            long seed = thread * 100L + i;
            byte[] content = (i + thread) % 2 == 0 ? random(size, seed) : text(size, seed);
            BlobKey k = cas(content);
            List<AtomicInteger> counts = new ArrayList<>();
            try (BlobWriter w = s.newWriter(k, size)) {
              int off = 0;
              while (off < size) {
                int pieces = 1 + r.nextInt(4);
                List<ByteBuffer> list = new ArrayList<>();
                for (int p = 0; p < pieces && off < size; p++) {
                  int n = Math.min(size - off, 1 + r.nextInt(300 * KIB));
                  ByteBuffer b = free.poll();
                  if (b == null) {
                    b = ByteBuffer.allocateDirect(300 * KIB);
                  }
                  b.clear();
                  b.put(content, off, n).flip();
                  list.add(b);
                  off += n;
                }
                AtomicInteger count = new AtomicInteger();
                counts.add(count);
                calls.incrementAndGet();
                w.write(list, () -> {
                  count.incrementAndGet();
                  releases.incrementAndGet();
                  for (ByteBuffer b : list) {
                    trash(b);
                    free.add(b);
                  }
                });
              }
              w.commit();
            }
            assertThat(counts).allMatch(c -> c.get() == 1);
            try (Blob b = s.get(k); InputStream in = b.openStream(0)) {
              assertThat(b.size()).isEqualTo(size);
              assertThat(in.readAllBytes()).isEqualTo(content);
            }
            keys.add(k);
          }
          return null;
        }));
      }
      start.countDown();
      for (Future<?> fu : futures) {
        fu.get(100, TimeUnit.SECONDS);
      }
    } finally {
      pool.shutdownNow();
    }
    assertThat(keys).hasSize(threads * blobsPerThread);
    assertThat(s.findMissing(keys)).isEmpty();
    assertThat(s.stats().numFiles()).isEqualTo(threads * blobsPerThread);
    assertThat(s.stats().reservedSize()).isZero();
    assertThat(releases.get()).isEqualTo(calls.get()).isGreaterThan(threads * blobsPerThread * 10L);
    assertThat(tempFiles()).isEmpty();
  }

  // ------------------------------------------------------------------------------------------------
  // 8: the file side's backlog is bounded

  /**
   * Calls not yet released never exceed what {@link DiskStore#FILE_BACKLOG_BYTES} allows. To make the
   * backlog actually build up, the first release that runs on the file side blocks it until the writing
   * thread is seen waiting (which it may only do once the file side is more than the backlog behind, or in
   * commit). The bound is checked whether or not that happens.
   */
  @ParameterizedTest
  @EnumSource(StorageMode.class)
  void unreleasedCallsStayWithinTheBacklog(StorageMode mode) throws Exception {
    DiskStore s = store(mode);
    int callBytes = 512 * KIB;
    int callCount = 48;
    byte[] content = text(callCount * callBytes, 17);
    BlobKey k = cas(content);
    Thread caller = Thread.currentThread();
    AtomicInteger outstanding = new AtomicInteger();
    AtomicInteger maxOutstanding = new AtomicInteger();
    AtomicBoolean committing = new AtomicBoolean();
    AtomicBoolean fileSideBlocked = new AtomicBoolean();
    AtomicBoolean gateTimedOut = new AtomicBoolean();
    AtomicInteger outstandingWhileCallerWaited = new AtomicInteger(-1);
    AtomicBoolean callerWaitedDuringWrites = new AtomicBoolean();
    CountDownLatch gate = new CountDownLatch(1);
    AtomicBoolean stop = new AtomicBoolean();
    Thread watcher = Thread.ofPlatform().daemon().start(() -> {
      while (!stop.get() && gate.getCount() > 0) {
        if (fileSideBlocked.get()) {
          Thread.State st = caller.getState();
          if (st == Thread.State.WAITING || st == Thread.State.TIMED_WAITING) {
            callerWaitedDuringWrites.set(!committing.get());
            outstandingWhileCallerWaited.set(outstanding.get());
            gate.countDown();
            return;
          }
        }
        java.util.concurrent.locks.LockSupport.parkNanos(50_000);
      }
    });
    Feeder f;
    try (BlobWriter w = s.newWriter(k, content.length)) {
      f = new Feeder(w) {
        @Override
        Call async(List<ByteBuffer> buffers) throws IOException {
          maxOutstanding.accumulateAndGet(outstanding.incrementAndGet(), Math::max);
          Call c = new Call(buffers);
          calls.add(c);
          w.write(c.buffers, () -> {
            if (Thread.currentThread().getName().equals("disk-file-side")
                && gate.getCount() > 0 && fileSideBlocked.compareAndSet(false, true)) {
              try {
                if (!gate.await(60, TimeUnit.SECONDS)) {
                  gateTimedOut.set(true);
                }
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
              }
            }
            outstanding.decrementAndGet();
            c.releases.incrementAndGet();
            released.incrementAndGet();
            c.buffers.forEach(DiskWriterReleaseTest::trash);
          });
          return c;
        }
      };
      feedLarge(f, content, 0, callCount, callBytes, 18);
      committing.set(true);
      w.commit();
    } finally {
      stop.set(true);
      watcher.join(10_000);
    }
    f.assertEachReleasedOnce();
    assertThat(gateTimedOut).isFalse();
    assertThat(outstanding.get()).isZero();
    assertThat(read(s, k)).isEqualTo(content);
    long bound = DiskStore.FILE_BACKLOG_BYTES / callBytes + 1; // the backlog plus the call being written
    assertThat((long) maxOutstanding.get()).isLessThanOrEqualTo(bound);
    if (callerWaitedDuringWrites.get()) {
      // The file side was held and the writer stopped exactly when one more call would exceed the backlog.
      assertThat((long) outstandingWhileCallerWaited.get()).isEqualTo(bound);
      assertThat((long) maxOutstanding.get()).isEqualTo(bound);
    }
  }
}
