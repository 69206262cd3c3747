package io.bazelcache.storage.file;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.bazelcache.storage.casblob.CasBlobReader;
import io.bazelcache.storage.casblob.CasBlobWriter;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link FileOutput}: the buffered and the direct ({@code O_DIRECT}) output must put exactly the same
 * bytes in the file, whatever the sizes, piece patterns and reserved region, and the direct output's pooled
 * staging buffers must never be shared or reused while a write may still read them.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class FileOutputTest {
  private static final int STAGING = DirectOutput.STAGING_BYTES;
  private static final int MIB = 1024 * 1024;

  /** Random bytes shared (read-only) by the tests: slices of it are the appended content. */
  private static final byte[] POOL_BYTES = random(7 * STAGING + 64 * 1024, 42);

  @TempDir Path dir;

  private final AtomicInteger names = new AtomicInteger();

  enum Mode {
    BUFFERED,
    DIRECT
  }

  /** An output with the channel it writes through; closing closes both. */
  private record Out(Path path, FileChannel ch, FileOutput out) implements AutoCloseable {
    @Override
    public void close() throws IOException {
      try {
        out.close();
      } finally {
        ch.close();
      }
    }
  }

  private Out open(Mode mode, long reserved) throws IOException {
    return open(mode, dir.resolve("f" + names.incrementAndGet()), reserved);
  }

  private static Out open(Mode mode, Path p, long reserved) throws IOException {
    FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
    try {
      FileOutput o = mode == Mode.BUFFERED ? FileOutput.buffered(ch, reserved) : FileOutput.direct(p, ch, reserved);
      return new Out(p, ch, o);
    } catch (IOException | RuntimeException e) {
      ch.close();
      throw e;
    }
  }

  static byte[] random(int n, long seed) {
    byte[] b = new byte[n];
    new SplittableRandom(seed).nextBytes(b);
    return b;
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] r = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, r, a.length, b.length);
    return r;
  }

  /** Asserts the file holds exactly {@code expected}, reporting the first difference rather than 10 MB of hex. */
  private static void assertFileBytes(Path p, byte[] expected) throws IOException {
    byte[] got = Files.readAllBytes(p);
    assertThat(got.length).as("length of %s", p).isEqualTo(expected.length);
    int mismatch = Arrays.mismatch(got, expected);
    assertThat(mismatch).as("first differing byte of %s", p).isEqualTo(-1);
  }

  /** Appends {@code content[from, to)} in pieces of about {@code step} bytes, of varying sizes and kinds. */
  private static void appendInPieces(FileOutput out, byte[] content, int from, int to, int step) throws IOException {
    int i = 0;
    for (int off = from; off < to; i++) {
      int n = Math.min(to - off, step + (i % 3) * 977);
      ByteBuffer b;
      if (i % 2 == 0) {
        b = ByteBuffer.wrap(content, off, n); // heap, position != 0
      } else {
        b = ByteBuffer.allocateDirect(n).put(content, off, n).flip();
      }
      out.append(b);
      assertThat(b.hasRemaining()).isFalse();
      off += n;
    }
  }

  // ------------------------------------------------------------------------------------------------
  // 1. Sizes around the boundaries

  static Stream<Arguments> sizes() {
    int[] appended = {0, 1, 4095, 4096, 4097, STAGING - 1, STAGING, STAGING + 1, 3 * STAGING + 12345, 7 * STAGING};
    long[] reserved = {0, 1, 100, 4096, 4097, 9000};
    List<Arguments> args = new ArrayList<>();
    for (Mode m : Mode.values()) {
      for (long r : reserved) {
        for (int a : appended) {
          args.add(Arguments.of(m, r, a));
        }
      }
    }
    return args.stream();
  }

  @ParameterizedTest(name = "{0} reserved={1} appended={2}")
  @MethodSource("sizes")
  void sizesAroundBoundariesGiveExactFile(Mode mode, long reserved, int appended) throws IOException {
    byte[] head = random((int) reserved, reserved * 31 + appended);
    byte[] body = Arrays.copyOfRange(POOL_BYTES, 7, 7 + appended);
    Path p;
    try (Out o = open(mode, reserved)) {
      p = o.path();
      assertThat(o.out().length()).isEqualTo(reserved);
      // Pieces that straddle staging-buffer boundaries: a prime step.
      appendInPieces(o.out(), body, 0, appended, 257_111);
      assertThat(o.out().length()).isEqualTo(reserved + appended);
      ByteBuffer h = ByteBuffer.wrap(head);
      o.out().writeReserved(h);
      assertThat(h.hasRemaining()).isFalse();
      o.out().finish();
      assertThat(o.out().length()).isEqualTo(reserved + appended);
      assertThat(o.ch().size()).isEqualTo(reserved + appended);
    }
    assertFileBytes(p, concat(head, body));
  }

  @ParameterizedTest
  @EnumSource(Mode.class)
  void reservedWrittenFirstOrInTheMiddleOrTwiceEndsUpAtTheStart(Mode mode) throws IOException {
    for (long reserved : new long[] {1, 100, 4096, 9000}) {
      for (int when = 0; when < 3; when++) {
        int appended = 2 * STAGING + 4321;
        byte[] head = random((int) reserved, reserved + when);
        byte[] body = Arrays.copyOfRange(POOL_BYTES, 1000, 1000 + appended);
        Path p;
        try (Out o = open(mode, reserved)) {
          p = o.path();
          if (when == 0) {
            o.out().writeReserved(ByteBuffer.wrap(head)); // before the first staging buffer is written
          }
          appendInPieces(o.out(), body, 0, STAGING + 17, 300_007);
          if (when == 1) {
            o.out().writeReserved(ByteBuffer.wrap(head)); // after: the head is kept back
          }
          if (when == 2) {
            o.out().writeReserved(ByteBuffer.wrap(random((int) reserved, 999))); // overwritten below
          }
          appendInPieces(o.out(), body, STAGING + 17, appended, 300_007);
          if (when == 2) {
            o.out().writeReserved(ByteBuffer.wrap(head));
          }
          o.out().finish();
        }
        assertFileBytes(p, concat(head, body));
      }
    }
  }

  // ------------------------------------------------------------------------------------------------
  // 2. Piece patterns

  @ParameterizedTest
  @EnumSource(Mode.class)
  void piecePatternsGiveIdenticalFilesAndConsumeTheirSources(Mode mode) throws IOException {
    for (int seed = 0; seed < 4; seed++) {
      SplittableRandom rnd = new SplittableRandom(seed);
      long reserved = new long[] {0, 100, 4097, 9000}[seed];
      int total = 2 * STAGING + rnd.nextInt(STAGING);
      byte[] body = Arrays.copyOfRange(POOL_BYTES, seed, seed + total);
      byte[] head = random((int) reserved, seed + 100);
      byte[] expected = concat(head, body);

      // a) one buffer
      Path one;
      try (Out o = open(mode, reserved)) {
        one = o.path();
        ByteBuffer b = ByteBuffer.wrap(body);
        o.out().append(b);
        assertThat(b.position()).isEqualTo(b.limit());
        o.out().writeReserved(ByteBuffer.wrap(head));
        o.out().finish();
      }
      assertFileBytes(one, expected);

      // b) many small heap and direct pieces, one append each (some empty)
      Path many;
      try (Out o = open(mode, reserved)) {
        many = o.path();
        for (int off = 0; off < total; ) {
          int n = Math.min(total - off, rnd.nextInt(20_000));
          ByteBuffer b = piece(rnd, body, off, n);
          o.out().append(b);
          assertThat(b.position()).isEqualTo(b.limit());
          off += n;
        }
        assertThat(o.out().length()).isEqualTo(reserved + total);
        ByteBuffer h = ByteBuffer.allocateDirect(head.length).put(head).flip();
        o.out().writeReserved(h);
        assertThat(h.position()).isEqualTo(h.limit());
        o.out().finish();
      }
      assertFileBytes(many, expected);

      // c) gathered arrays with off/len, including empty pieces, more than MAX_IOV pieces at once, and
      // sentinel buffers outside [off, off + len) that must be left alone
      Path gathered;
      try (Out o = open(mode, reserved)) {
        gathered = o.path();
        int off = 0;
        while (off < total) {
          int count = rnd.nextInt(10) == 0 ? FileOutput.MAX_IOV * 2 + 37 : 1 + rnd.nextInt(40);
          ByteBuffer[] arr = new ByteBuffer[count + 3];
          int first = 1 + rnd.nextInt(2);
          for (int i = 0; i < arr.length; i++) {
            arr[i] = ByteBuffer.wrap(new byte[] {1, 2, 3});
          }
          for (int i = first; i < first + count; i++) {
            int n = rnd.nextInt(4) == 0 ? 0 : Math.min(total - off, rnd.nextInt(8_000));
            arr[i] = piece(rnd, body, off, n);
            off += n;
          }
          o.out().append(arr, first, count);
          for (int i = 0; i < arr.length; i++) {
            if (i >= first && i < first + count) {
              assertThat(arr[i].position()).as("piece %d", i).isEqualTo(arr[i].limit());
            } else {
              assertThat(arr[i].position()).as("sentinel %d", i).isZero();
              assertThat(arr[i].remaining()).isEqualTo(3);
            }
          }
        }
        o.out().append(new ByteBuffer[0], 0, 0);
        o.out().append(ByteBuffer.allocate(0));
        o.out().writeReserved(ByteBuffer.wrap(head));
        o.out().finish();
      }
      assertFileBytes(gathered, expected);
      assertThat(Files.readAllBytes(gathered)).isEqualTo(Files.readAllBytes(one)).isEqualTo(Files.readAllBytes(many));
    }
  }

  /** {@code body[off, off + n)} as a heap buffer, a heap slice with an offset, or a direct buffer. */
  private static ByteBuffer piece(SplittableRandom rnd, byte[] body, int off, int n) {
    switch (rnd.nextInt(3)) {
      case 0:
        return ByteBuffer.wrap(body, off, n);
      case 1: {
        // within a larger array, with bytes before and after that must not be written
        byte[] a = new byte[n + 10];
        Arrays.fill(a, (byte) 0x77);
        System.arraycopy(body, off, a, 5, n);
        return ByteBuffer.wrap(a).position(5).limit(5 + n);
      }
      default: {
        ByteBuffer d = ByteBuffer.allocateDirect(n + 8);
        d.position(3);
        d.put(body, off, n);
        return d.flip().position(3);
      }
    }
  }

  // ------------------------------------------------------------------------------------------------
  // 3. Misuse and lifecycle

  @ParameterizedTest
  @EnumSource(Mode.class)
  void writeReservedLongerThanTheRegionIsRefused(Mode mode) throws IOException {
    try (Out o = open(mode, 100)) {
      ByteBuffer tooLong = ByteBuffer.allocate(101);
      assertThatThrownBy(() -> o.out().writeReserved(tooLong)).isInstanceOf(IllegalArgumentException.class);
      assertThat(tooLong.position()).isZero();
      o.out().append(ByteBuffer.wrap(POOL_BYTES, 0, 5000));
      o.out().writeReserved(ByteBuffer.wrap(POOL_BYTES, 10, 100));
      o.out().finish();
      assertFileBytes(o.path(), concat(Arrays.copyOfRange(POOL_BYTES, 10, 110), Arrays.copyOf(POOL_BYTES, 5000)));
    }
    try (Out o = open(mode, 0)) {
      assertThatThrownBy(() -> o.out().writeReserved(ByteBuffer.allocate(1)))
          .isInstanceOf(IllegalArgumentException.class);
      o.out().writeReserved(ByteBuffer.allocate(0)); // nothing to write is fine
      o.out().finish();
      assertThat(o.ch().size()).isZero();
    }
  }

  @Test
  void negativeReservedIsRefused() throws IOException {
    Path p = dir.resolve("neg");
    try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
      assertThatThrownBy(() -> FileOutput.buffered(ch, -1)).isInstanceOf(IllegalArgumentException.class);
      assertThatThrownBy(() -> FileOutput.direct(p, ch, -1)).isInstanceOf(IllegalArgumentException.class);
    }
  }

  @Test
  void directRefusesAReservedRegionTooLargeToStage() throws IOException {
    Path p = dir.resolve("big-reserved");
    try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
      int max = (int) FileOutput.MAX_DIRECT_RESERVED;
      assertThatThrownBy(() -> FileOutput.direct(p, ch, max + 1)).isInstanceOf(IllegalArgumentException.class);
      try (FileOutput o = FileOutput.direct(p, ch, max)) { // the largest allowed
        o.append(ByteBuffer.wrap(POOL_BYTES, 0, 2 * STAGING));
        byte[] head = random(max, 5);
        o.writeReserved(ByteBuffer.wrap(head));
        o.finish();
        assertFileBytes(p, concat(head, Arrays.copyOf(POOL_BYTES, 2 * STAGING)));
      }
    }
  }

  @Test
  void directAfterFinishOrCloseIsRefused() throws IOException {
    checkRefusedAfterFinishAndClose(Mode.DIRECT);
  }

  /**
   * The brief's contract: append/writeReserved after finish or close throw IllegalStateException. The
   * buffered output has no state at all: it goes on writing to the channel after finish and close.
   */
  @Test
  void bufferedAfterFinishOrCloseIsRefused() throws IOException {
    checkRefusedAfterFinishAndClose(Mode.BUFFERED);
  }

  private void checkRefusedAfterFinishAndClose(Mode mode) throws IOException {
    byte[] body = Arrays.copyOf(POOL_BYTES, STAGING + 5);
    byte[] head = random(64, 1);
    try (Out o = open(mode, 64)) {
      o.out().append(ByteBuffer.wrap(body));
      o.out().writeReserved(ByteBuffer.wrap(head));
      o.out().finish();
      ByteBuffer more = ByteBuffer.wrap(new byte[] {1, 2, 3});
      assertThatThrownBy(() -> o.out().append(more)).isInstanceOf(IllegalStateException.class);
      assertThatThrownBy(() -> o.out().append(new ByteBuffer[] {more}, 0, 1))
          .isInstanceOf(IllegalStateException.class);
      assertThatThrownBy(() -> o.out().writeReserved(ByteBuffer.wrap(new byte[] {9})))
          .isInstanceOf(IllegalStateException.class);
      o.out().finish(); // idempotent
      assertThat(o.out().length()).isEqualTo(64 + body.length);
      o.out().close();
      assertThatThrownBy(() -> o.out().append(more)).isInstanceOf(IllegalStateException.class);
      assertThatThrownBy(() -> o.out().writeReserved(ByteBuffer.wrap(new byte[] {9})))
          .isInstanceOf(IllegalStateException.class);
      o.out().finish(); // still idempotent once finished
      o.out().close(); // idempotent
      assertFileBytes(o.path(), concat(head, body));
    }
    // closed without finishing
    try (Out o = open(mode, 10)) {
      o.out().append(ByteBuffer.wrap(body));
      o.out().close();
      assertThatThrownBy(() -> o.out().append(ByteBuffer.wrap(new byte[] {1})))
          .isInstanceOf(IllegalStateException.class);
      assertThatThrownBy(() -> o.out().writeReserved(ByteBuffer.wrap(new byte[] {1})))
          .isInstanceOf(IllegalStateException.class);
      assertThatThrownBy(() -> o.out().finish()).isInstanceOf(IllegalStateException.class);
    }
  }

  @ParameterizedTest
  @EnumSource(Mode.class)
  void finishTwiceCloseTwiceAndCloseWithoutFinishAreFine(Mode mode) throws IOException {
    byte[] body = Arrays.copyOf(POOL_BYTES, 3 * STAGING + 1);
    try (Out o = open(mode, 4097)) {
      o.out().append(ByteBuffer.wrap(body));
      byte[] head = random(4097, 3);
      o.out().writeReserved(ByteBuffer.wrap(head));
      o.out().finish();
      o.out().finish();
      assertThat(o.ch().size()).isEqualTo(4097 + body.length);
      o.out().close();
      o.out().close();
      assertFileBytes(o.path(), concat(head, body));
    }
    for (int appended : new int[] {0, 10, STAGING, 2 * STAGING + 3}) {
      try (Out o = open(mode, 100)) {
        o.out().append(ByteBuffer.wrap(body, 0, appended));
        assertThatCode(() -> o.out().close()).doesNotThrowAnyException();
        assertThatCode(() -> o.out().close()).doesNotThrowAnyException();
      }
    }
  }

  // ------------------------------------------------------------------------------------------------
  // 4. tmpfs

  @Test
  void directOnTmpfsIsRefusedWithIOException() throws IOException {
    Path shm = Path.of("/dev/shm");
    Assumptions.assumeTrue(Files.isDirectory(shm) && Files.isWritable(shm), "no writable /dev/shm");
    Path d = Files.createTempDirectory(shm, "fileoutput-test");
    Path p = d.resolve("f");
    try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
      FileOutput o;
      try {
        o = FileOutput.direct(p, ch, 100);
      } catch (IOException expected) {
        return; // the expected outcome
      }
      // Some kernels (Linux 6.6+) let tmpfs take O_DIRECT: then the output must simply work.
      try (o) {
        byte[] body = Arrays.copyOf(POOL_BYTES, STAGING + 3);
        byte[] head = random(100, 4);
        o.append(ByteBuffer.wrap(body));
        o.writeReserved(ByteBuffer.wrap(head));
        o.finish();
        assertFileBytes(p, concat(head, body));
      }
      Assumptions.abort("this kernel's tmpfs accepts O_DIRECT");
    } finally {
      Files.deleteIfExists(p);
      Files.deleteIfExists(d);
    }
  }

  // ------------------------------------------------------------------------------------------------
  // 5. Concurrency

  @Test
  void concurrentDirectOutputsNeverShareStagingBuffers() throws Exception {
    int threads = 8;
    int size = 5 * MIB;
    CyclicBarrier start = new CyclicBarrier(threads);
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<?>> futures = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        int id = t;
        futures.add(pool.submit(() -> {
          byte[] body = random(size, 1000 + id);
          long reserved = new long[] {0, 1, 100, 4096, 4097, 9000, 45, 8192}[id];
          byte[] head = random((int) reserved, 2000 + id);
          Path p = dir.resolve("concurrent-" + id);
          start.await();
          try (Out o = open(Mode.DIRECT, p, reserved)) {
            appendInPieces(o.out(), body, 0, size, 65_536 + 4099 * id);
            o.out().writeReserved(ByteBuffer.wrap(head));
            o.out().finish();
          }
          assertFileBytes(p, concat(head, body));
          return null;
        }));
      }
      for (Future<?> f : futures) {
        f.get(60, TimeUnit.SECONDS);
      }
    } finally {
      pool.shutdownNow();
    }
  }

  // ------------------------------------------------------------------------------------------------
  // 6. Pool sanity

  @Test
  void manyOutputsClosedWithoutFinishLeaveThePoolSane() throws IOException {
    for (int i = 0; i < 200; i++) {
      try (Out o = open(Mode.DIRECT, i % 3 == 0 ? 0 : 100)) {
        int n = switch (i % 4) {
          case 0 -> 0;
          case 1 -> 4096;
          case 2 -> STAGING; // one buffer handed to a writer
          default -> 100;
        };
        o.out().append(ByteBuffer.wrap(POOL_BYTES, i, n));
      }
    }
    // Closed while writes are in flight: then a correct file must still follow.
    for (int i = 0; i < 5; i++) {
      try (Out o = open(Mode.DIRECT, 4097)) {
        o.out().append(ByteBuffer.wrap(POOL_BYTES, 0, 3 * STAGING));
        o.out().close();
      }
    }
    // Several outputs open at once, each with DEPTH buffers, then a correct file each.
    List<Out> outs = new ArrayList<>();
    try {
      for (int i = 0; i < 4; i++) {
        outs.add(open(Mode.DIRECT, 100 * i));
      }
      byte[][] bodies = new byte[outs.size()][];
      for (int i = 0; i < outs.size(); i++) {
        bodies[i] = random(4 * STAGING + 77 * i, 50 + i);
      }
      // Interleave the appends of the four outputs.
      for (int off = 0; off < 4 * STAGING + 300; off += 200_000) {
        for (int i = 0; i < outs.size(); i++) {
          int from = Math.min(off, bodies[i].length);
          int to = Math.min(off + 200_000, bodies[i].length);
          outs.get(i).out().append(ByteBuffer.wrap(bodies[i], from, to - from));
        }
      }
      for (int i = 0; i < outs.size(); i++) {
        Out o = outs.get(i);
        byte[] head = random(100 * i, 60 + i);
        o.out().writeReserved(ByteBuffer.wrap(head));
        o.out().finish();
        o.close();
        assertFileBytes(o.path(), concat(head, bodies[i]));
      }
    } finally {
      for (Out o : outs) {
        o.close();
      }
    }
  }

  @Test
  void closingWhileWritesAreInFlightIsSafe() throws IOException {
    for (int round = 0; round < 5; round++) {
      Out doomed = open(Mode.DIRECT, 100);
      doomed.out().append(ByteBuffer.wrap(POOL_BYTES, 0, 3 * STAGING));
      doomed.close(); // immediately: up to DEPTH - 1 writes may still be running
      byte[] body = random(3 * STAGING + 12345, round);
      byte[] head = random(100, round + 10);
      Path p;
      try (Out o = open(Mode.DIRECT, 100)) {
        p = o.path();
        appendInPieces(o.out(), body, 0, body.length, 123_457);
        o.out().writeReserved(ByteBuffer.wrap(head));
        o.out().finish();
      }
      assertFileBytes(p, concat(head, body));
      // The closed output's file is not written to afterwards: what it holds now stays.
      byte[] before = Files.readAllBytes(doomed.path());
      assertThat(before.length).isLessThanOrEqualTo(3 * STAGING);
      assertThat(Files.readAllBytes(doomed.path())).isEqualTo(before);
    }
  }

  @Test
  void bufferedReservedBytesNotWrittenAreZeros() throws IOException {
    checkReservedBytesNotWrittenAreZeros(Mode.BUFFERED);
  }

  /**
   * DirectOutput's constructor says "the reserved bytes stay zero in staging until writeReserved", and
   * the buffered output leaves unwritten reserved bytes as zeros (a hole in the new file). But pooled
   * staging buffers are not cleared when they go back to the pool, so a direct output that gets a used
   * buffer writes its previous content into the part of the reserved region that writeReserved did not
   * fill (or all of it, without writeReserved).
   */
  @Test
  void directReservedBytesNotWrittenAreZeros() throws IOException {
    checkReservedBytesNotWrittenAreZeros(Mode.DIRECT);
  }

  private void checkReservedBytesNotWrittenAreZeros(Mode mode) throws IOException {
    dirtyThePool();
    byte[] body = Arrays.copyOf(POOL_BYTES, 5000);
    // writeReserved covering only half of the region
    try (Out o = open(mode, 100)) {
      o.out().append(ByteBuffer.wrap(body));
      o.out().writeReserved(ByteBuffer.wrap(random(50, 1)));
      o.out().finish();
      byte[] file = Files.readAllBytes(o.path());
      assertThat(Arrays.copyOfRange(file, 50, 100)).containsOnly((byte) 0);
      assertThat(Arrays.copyOfRange(file, 100, file.length)).isEqualTo(body);
    }
    dirtyThePool();
    // no writeReserved at all
    try (Out o = open(mode, 100)) {
      o.out().append(ByteBuffer.wrap(body));
      o.out().finish();
      byte[] file = Files.readAllBytes(o.path());
      assertThat(Arrays.copyOfRange(file, 0, 100)).containsOnly((byte) 0);
      assertThat(Arrays.copyOfRange(file, 100, file.length)).isEqualTo(body);
    }
  }

  /** Cycles every pooled staging buffer through an output that fills its start with 0xFF. */
  private void dirtyThePool() throws IOException {
    byte[] ff = new byte[8192];
    Arrays.fill(ff, (byte) 0xFF);
    Path p = dir.resolve("dirty" + names.incrementAndGet());
    try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
      // More rounds than the pool holds (DEPTH * max(8, 4 * cores)): the pool is FIFO, so afterwards
      // every buffer in it has been through one of these.
      int rounds = DirectOutput.DEPTH * Math.max(8, 4 * Runtime.getRuntime().availableProcessors()) + 1;
      for (int i = 0; i < rounds; i++) {
        try (FileOutput o = FileOutput.direct(p, ch, 0)) {
          o.append(ByteBuffer.wrap(ff));
        }
      }
    }
  }

  // ------------------------------------------------------------------------------------------------
  // 7. CasBlobWriter over a direct output

  static Stream<Arguments> casblobInputs() {
    byte[] text = "the quick brown fox jumps over the lazy dog; 0123456789 bazel remote cache\n"
        .getBytes(StandardCharsets.US_ASCII);
    byte[] compressible = new byte[6 * MIB];
    for (int i = 0; i < compressible.length; i++) {
      compressible[i] = text[i % text.length];
    }
    return Stream.of(
        Arguments.of("random", random(6 * MIB, 77)),
        Arguments.of("repeating text", compressible),
        Arguments.of("random, odd size", random(6 * MIB + 12345, 78)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("casblobInputs")
  void casBlobWriterOverDirectOutputMatchesBuffered(String name, byte[] data) throws IOException {
    Path buffered = writeCasblob(Mode.BUFFERED, data);
    Path direct = writeCasblob(Mode.DIRECT, data);
    byte[] b = Files.readAllBytes(buffered);
    assertFileBytes(direct, b);
    assertThat(readCasblob(direct)).isEqualTo(data);
    assertThat(readCasblob(buffered)).isEqualTo(data);
    if (name.startsWith("repeating")) {
      assertThat(b.length).isLessThan(data.length / 10);
    } else {
      assertThat(b.length).isGreaterThan(data.length);
    }
  }

  private Path writeCasblob(Mode mode, byte[] data) throws IOException {
    long reserved = CasBlobWriter.headerLength(data.length);
    Path p;
    try (Out o = open(mode, reserved); CasBlobWriter w = new CasBlobWriter(o.out(), data.length)) {
      p = o.path();
      int off = 0;
      int step = 7919;
      while (off < data.length) {
        int n = Math.min(step, data.length - off);
        if (step % 2 == 0) {
          w.write(new ByteBuffer[] {ByteBuffer.wrap(data, off, n / 2), ByteBuffer.wrap(data, off + n / 2, n - n / 2)});
        } else {
          w.write(ByteBuffer.wrap(data, off, n));
        }
        off += n;
        step = step * 3 % 700_001 + 1;
      }
      long len = w.finish();
      assertThat(len).isEqualTo(o.ch().size()).isEqualTo(o.out().length());
    }
    return p;
  }

  private static byte[] readCasblob(Path p) throws IOException {
    try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
      CasBlobReader r = CasBlobReader.open(ch, ch.size());
      try (InputStream in = r.openStream(0)) {
        return in.readAllBytes();
      }
    }
  }

  @Test
  void checkDirectWritesReadsBackAndDeletesItsFile() throws IOException {
    Path probe = dir.resolve("probe.tmp");
    FileOutput.checkDirect(probe);
    assertThat(Files.exists(probe)).isFalse();
    Files.write(probe, new byte[] {1});
    assertThatThrownBy(() -> FileOutput.checkDirect(probe)).isInstanceOf(IOException.class);
  }
}
