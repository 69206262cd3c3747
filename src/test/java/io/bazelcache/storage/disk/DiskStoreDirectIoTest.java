package io.bazelcache.storage.disk;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.BlobWriter;
import io.bazelcache.storage.DigestMismatchException;
import io.bazelcache.storage.casblob.CasBlobReader;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Large uploads ({@link DiskStore#DIRECT_IO_BYTES} or more) go through a direct-I/O {@code FileOutput}:
 * they must commit and read back exactly like buffered ones, leave no padding, no temp file on failure or
 * discard, survive a reopen, and the store must fall back to buffered writes where direct I/O is refused.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class DiskStoreDirectIoTest {
  private static final int KIB = 1024;
  private static final int MIB = 1024 * KIB;
  private static final long GIB = 1024L * MIB;
  private static final int D = (int) DiskStore.DIRECT_IO_BYTES;
  private static final int NINE_MIB = 9 * MIB + 12_345;
  private static final DigestFunction F = DigestFunction.SHA256;

  @TempDir Path dir;
  @RegisterExtension final OpenStores open = new OpenStores();

  private DiskStore store(Path root, StorageMode mode) throws IOException {
    return store(root, mode, GIB);
  }

  private DiskStore store(Path root, StorageMode mode, long maxSize) throws IOException {
    return open.open(root, maxSize, 0, mode, Long.MAX_VALUE);
  }

  // ------------------------------------------------------------------------------------------------
  // Helpers

  static byte[] random(int n, long seed) {
    byte[] b = new byte[n];
    new SplittableRandom(seed).nextBytes(b);
    return b;
  }

  static byte[] text(int n) {
    byte[] line = "compressible line of text for a casblob, with digits 0123456789\n".getBytes(StandardCharsets.US_ASCII);
    byte[] b = new byte[n];
    for (int i = 0; i < n; i++) {
      b[i] = line[i % line.length];
    }
    return b;
  }

  static BlobKey cas(byte[] content) {
    return BlobKey.cas(Digest.of(F, content));
  }

  private static Path fileOf(Path root, BlobKey k, long size, boolean zstd) {
    return root.resolve(k.function().lowerName()).resolve(k.kind().dirName()).resolve(k.hash().substring(0, 2))
        .resolve(DiskStore.fileName(k.hash(), size, zstd));
  }

  private static List<Path> filesEndingWith(Path root, String suffix) throws IOException {
    try (Stream<Path> s = Files.walk(root)) {
      return s.filter(Files::isRegularFile).filter(p -> p.getFileName().toString().endsWith(suffix)).toList();
    }
  }

  private static List<Path> filesOfKey(Path root, BlobKey k) throws IOException {
    try (Stream<Path> s = Files.walk(root)) {
      return s.filter(Files::isRegularFile).filter(p -> p.getFileName().toString().startsWith(k.hash())).toList();
    }
  }

  private static byte[] read(DiskStore s, BlobKey k) throws IOException {
    try (Blob b = s.get(k)) {
      if (b == null) {
        return null;
      }
      try (InputStream in = b.openStream(0)) {
        return in.readAllBytes();
      }
    }
  }

  private static void assertSameBytes(byte[] got, byte[] want) {
    assertThat(got).isNotNull();
    assertThat(got.length).isEqualTo(want.length);
    assertThat(Arrays.mismatch(got, want)).as("first differing byte").isEqualTo(-1);
  }

  /**
   * Uploads {@code content} in pieces of various sizes through all three write methods: single buffers,
   * lists, and lists with a release callback (some of 256 KiB or more, so the parallel-hash path runs).
   * Returns one counter per release callback handed over. Does not commit.
   */
  private static List<AtomicInteger> writeInPieces(BlobWriter w, byte[] content, long seed, int upTo)
      throws IOException {
    SplittableRandom rnd = new SplittableRandom(seed);
    List<AtomicInteger> releases = new ArrayList<>();
    int off = 0;
    for (int i = 0; off < upTo; i++) {
      switch (i % 4) {
        case 0 -> { // one small heap buffer
          int n = Math.min(upTo - off, 1 + rnd.nextInt(100 * KIB));
          w.write(ByteBuffer.wrap(content, off, n));
          off += n;
        }
        case 1 -> { // a list below the parallel-hash threshold
          List<ByteBuffer> pieces = new ArrayList<>();
          for (int j = 0, count = 1 + rnd.nextInt(6); j < count && off < upTo; j++) {
            int n = Math.min(upTo - off, rnd.nextInt(40 * KIB));
            pieces.add(piece(rnd, content, off, n));
            off += n;
          }
          w.write(pieces);
          for (ByteBuffer b : pieces) {
            assertThat(b.hasRemaining()).isFalse();
          }
        }
        default -> { // a large list with a release: hashed while the file side writes it
          List<ByteBuffer> pieces = new ArrayList<>();
          int target = (int) DiskStore.PARALLEL_HASH_BYTES + rnd.nextInt(MIB + 300 * KIB);
          for (int got = 0; got < target && off < upTo; ) {
            int n = Math.min(upTo - off, Math.min(target - got, 1 + rnd.nextInt(200 * KIB)));
            pieces.add(piece(rnd, content, off, n));
            off += n;
            got += n;
          }
          AtomicInteger released = new AtomicInteger();
          releases.add(released);
          w.write(pieces, released::incrementAndGet);
          for (ByteBuffer b : pieces) {
            assertThat(b.hasRemaining()).isFalse();
          }
        }
      }
      assertThat(w.bytesWritten()).isEqualTo(off);
    }
    return releases;
  }

  private static ByteBuffer piece(SplittableRandom rnd, byte[] content, int off, int n) {
    if (rnd.nextBoolean()) {
      return ByteBuffer.wrap(content, off, n);
    }
    return ByteBuffer.allocateDirect(n).put(content, off, n).flip();
  }

  private static void assertReleasedOnce(List<AtomicInteger> releases) {
    assertThat(releases).isNotEmpty();
    for (AtomicInteger r : releases) {
      assertThat(r.get()).as("release runs").isEqualTo(1);
    }
  }

  /** Uploads and commits; checks the release callbacks. */
  private static void upload(DiskStore s, BlobKey k, byte[] content, long seed) throws IOException {
    List<AtomicInteger> releases;
    try (BlobWriter w = s.newWriter(k, content.length)) {
      releases = writeInPieces(w, content, seed, content.length);
      w.commit();
      assertReleasedOnce(releases);
    }
    assertReleasedOnce(releases);
  }

  /** Checks the stored file: exact length (no padding left), and content. */
  private static void assertStoredFile(DiskStore s, Path root, StorageMode mode, BlobKey k, byte[] content)
      throws IOException {
    boolean zstd = mode == StorageMode.ZSTD;
    Path p = fileOf(root, k, content.length, zstd);
    assertThat(p).isRegularFile();
    assertThat(fileOf(root, k, content.length, !zstd)).doesNotExist();
    if (zstd) {
      try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
        // The header's last offset must be the file's length: no padding after the last chunk.
        CasBlobReader r = CasBlobReader.open(ch, ch.size());
        assertThat(r.uncompressedSize()).isEqualTo(content.length);
        assertThat(r.header().fileLength()).isEqualTo(ch.size());
        try (InputStream in = r.openStream(0)) {
          assertSameBytes(in.readAllBytes(), content);
        }
      }
    } else {
      assertThat(Files.size(p)).isEqualTo(content.length);
      assertSameBytes(Files.readAllBytes(p), content);
    }
    assertSameBytes(read(s, k), content);
  }

  // ------------------------------------------------------------------------------------------------
  // Is the direct path really taken? (Linux: an O_DIRECT descriptor on the upload's temp file.)

  /** O_DIRECT in /proc/self/fdinfo's octal flags, or 0 where unknown. */
  private static int oDirect() {
    String arch = System.getProperty("os.arch");
    if (!Files.isDirectory(Path.of("/proc/self/fdinfo"))) {
      return 0;
    }
    return switch (arch) {
      case "amd64", "x86_64", "x86" -> 040000;
      case "aarch64", "arm" -> 0200000;
      default -> 0;
    };
  }

  /** The open-file flags of every descriptor of this process on a temp file under {@code root}. */
  private static List<Integer> tempFileFlags(Path root) throws IOException {
    String prefix = root.toRealPath().toString();
    List<Integer> flags = new ArrayList<>();
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(Path.of("/proc/self/fd"))) {
      for (Path fd : ds) {
        String target;
        String info;
        try {
          target = Files.readSymbolicLink(fd).toString();
          if (!target.startsWith(prefix) || !target.endsWith(DiskStore.TEMP_SUFFIX)) {
            continue;
          }
          info = Files.readString(Path.of("/proc/self/fdinfo").resolve(fd.getFileName().toString()));
        } catch (IOException e) {
          continue; // closed meanwhile (e.g. the directory stream's own descriptor)
        }
        for (String line : info.split("\n")) {
          if (line.startsWith("flags:")) {
            flags.add(Integer.parseInt(line.substring("flags:".length()).strip(), 8));
          }
        }
      }
    }
    return flags;
  }

  /** Whether an upload in progress under {@code root} writes its temp file with O_DIRECT. */
  private static boolean writesDirect(Path root) throws IOException {
    List<Integer> flags = tempFileFlags(root);
    assertThat(flags).as("descriptors on the upload's temp file").isNotEmpty();
    return flags.stream().anyMatch(f -> (f & oDirect()) != 0);
  }

  // ------------------------------------------------------------------------------------------------
  // Tests

  static Stream<Arguments> modesAndSizes() {
    List<Arguments> args = new ArrayList<>();
    for (StorageMode m : StorageMode.values()) {
      for (int size : new int[] {D - 1, D, D + 1, NINE_MIB}) {
        args.add(Arguments.of(m, size));
      }
    }
    return args.stream();
  }

  @ParameterizedTest(name = "{0} {1} bytes")
  @MethodSource("modesAndSizes")
  void largeUploadsCommitAndReadBackExactly(StorageMode mode, int size) throws IOException {
    DiskStore s = store(dir, mode);
    byte[] content = random(size, size + mode.ordinal());
    BlobKey k = cas(content);
    List<AtomicInteger> releases;
    try (BlobWriter w = s.newWriter(k, size)) {
      if (oDirect() != 0) {
        // The direct path is taken from DIRECT_IO_BYTES on (this temp dir's file system takes O_DIRECT).
        assertThat(writesDirect(dir)).as("O_DIRECT for %d bytes", size).isEqualTo(size >= D);
      }
      releases = writeInPieces(w, content, size, size);
      w.commit();
      assertReleasedOnce(releases);
    }
    assertReleasedOnce(releases);
    assertStoredFile(s, dir, mode, k, content);
    assertThat(filesEndingWith(dir, DiskStore.TEMP_SUFFIX)).isEmpty();
    assertThat(tempFileFlags(dir)).as("descriptors left open on temp files").isEmpty();
    var st = s.stats();
    assertThat(st.reservedSize()).isZero();
    assertThat(st.numFiles()).isEqualTo(1);
    assertThat(st.uncompressedSize()).isEqualTo(size);
    long length = Files.size(fileOf(dir, k, size, mode == StorageMode.ZSTD));
    assertThat(st.currentSize()).isEqualTo((length + 4095) / 4096 * 4096);
  }

  @ParameterizedTest
  @EnumSource(StorageMode.class)
  void compressibleLargeUploadsReadBackExactly(StorageMode mode) throws IOException {
    DiskStore s = store(dir, mode);
    byte[] content = text(NINE_MIB);
    BlobKey k = cas(content);
    upload(s, k, content, 5);
    assertStoredFile(s, dir, mode, k, content);
    long length = Files.size(fileOf(dir, k, content.length, mode == StorageMode.ZSTD));
    if (mode == StorageMode.ZSTD) {
      assertThat(length).isLessThan(content.length / 10);
    } else {
      assertThat(length).isEqualTo(content.length);
    }
  }

  @ParameterizedTest
  @EnumSource(StorageMode.class)
  void wrongHashLargeUploadFailsAtCommitAndLeavesNoFile(StorageMode mode) throws IOException {
    DiskStore s = store(dir, mode);
    for (int size : new int[] {D, NINE_MIB}) {
      byte[] claimed = random(size, 1);
      byte[] sent = random(size, 2);
      BlobKey k = cas(claimed);
      List<AtomicInteger> releases;
      try (BlobWriter w = s.newWriter(k, size)) {
        releases = writeInPieces(w, sent, 3, size);
        assertThatThrownBy(w::commit).isInstanceOf(DigestMismatchException.class);
        assertReleasedOnce(releases);
        assertThatThrownBy(w::commit).isInstanceOf(IOException.class); // the upload is over
      }
      assertReleasedOnce(releases);
      assertThat(filesEndingWith(dir, DiskStore.TEMP_SUFFIX)).isEmpty();
      assertThat(filesOfKey(dir, k)).isEmpty();
      assertThat(tempFileFlags(dir)).as("descriptors left open on temp files").isEmpty();
      assertThat(s.get(k)).isNull();
      assertThat(s.contains(k)).isFalse();
      assertThat(s.stats().reservedSize()).isZero();
      assertThat(s.stats().numFiles()).isZero();
    }
    // The store still takes a correct large upload afterwards.
    byte[] ok = random(NINE_MIB, 4);
    upload(s, cas(ok), ok, 4);
    assertStoredFile(s, dir, mode, cas(ok), ok);
  }

  @ParameterizedTest
  @EnumSource(StorageMode.class)
  void uploadClosedBeforeCommitLeavesNoTempFile(StorageMode mode) throws IOException {
    DiskStore s = store(dir, mode);
    byte[] content = random(NINE_MIB, 10);
    BlobKey k = cas(content);
    for (int upTo : new int[] {0, 100, D + 7, 5 * MIB, NINE_MIB}) {
      List<AtomicInteger> releases;
      BlobWriter w = s.newWriter(k, content.length);
      assertThat(filesEndingWith(dir, DiskStore.TEMP_SUFFIX)).hasSize(1);
      releases = writeInPieces(w, content, upTo, upTo);
      w.close(); // discarded, possibly while the file side and direct writes are still busy
      w.close();
      for (AtomicInteger r : releases) {
        assertThat(r.get()).isEqualTo(1);
      }
      assertThat(filesEndingWith(dir, DiskStore.TEMP_SUFFIX)).as("after discarding at %d", upTo).isEmpty();
      assertThat(filesOfKey(dir, k)).isEmpty();
      assertThat(tempFileFlags(dir)).as("descriptors left open on temp files").isEmpty();
      assertThat(s.get(k)).isNull();
      assertThat(s.stats().reservedSize()).isZero();
      assertThatThrownBy(w::commit).isInstanceOf(IOException.class);
    }
    upload(s, k, content, 11);
    assertStoredFile(s, dir, mode, k, content);
  }

  @ParameterizedTest
  @EnumSource(StorageMode.class)
  void reopenedStoreStillServesLargeBlobs(StorageMode mode) throws IOException {
    DiskStore s = store(dir, mode);
    List<byte[]> contents = List.of(random(D - 1, 20), random(D, 21), random(D + 1, 22), random(NINE_MIB, 23),
        text(D + 5000));
    for (byte[] c : contents) {
      upload(s, cas(c), c, c.length);
    }
    s.close();
    assertThatThrownBy(() -> s.get(cas(contents.get(0)))).isInstanceOf(IOException.class);

    DiskStore r = store(dir, mode);
    assertThat(r.stats().numFiles()).isEqualTo(contents.size());
    for (byte[] c : contents) {
      assertStoredFile(r, dir, mode, cas(c), c);
    }
    r.close();

    // Files of either format are read whatever the mode.
    StorageMode other = mode == StorageMode.ZSTD ? StorageMode.UNCOMPRESSED : StorageMode.ZSTD;
    DiskStore o = store(dir, other);
    for (byte[] c : contents) {
      assertSameBytes(read(o, cas(c)), c);
    }
  }

  @ParameterizedTest
  @EnumSource(StorageMode.class)
  void storeOnTmpfsFallsBackAndServesLargeBlobs(StorageMode mode) throws IOException {
    Path shm = Path.of("/dev/shm");
    Assumptions.assumeTrue(Files.isDirectory(shm) && Files.isWritable(shm), "no writable /dev/shm");
    Path root = Files.createTempDirectory(shm, "diskstore-direct-test");
    try {
      DiskStore s = store(root, mode);
      byte[] big = random(NINE_MIB, 30);
      byte[] other = random(D + 1, 31);
      upload(s, cas(big), big, 30);
      upload(s, cas(other), other, 31); // after a fallback, still fine
      assertStoredFile(s, root, mode, cas(big), big);
      assertStoredFile(s, root, mode, cas(other), other);
      assertThat(filesEndingWith(root, DiskStore.TEMP_SUFFIX)).isEmpty();
      s.close();
    } finally {
      try (Stream<Path> w = Files.walk(root)) {
        for (Path p : w.sorted(Comparator.reverseOrder()).toList()) {
          Files.deleteIfExists(p);
        }
      }
    }
  }

  /**
   * The buffered fallback for large uploads, as on a file system that refuses O_DIRECT (Linux 6.6+ tmpfs
   * takes it, so the test turns direct I/O off itself), including the background early flush of uploads
   * over {@link DiskStore#EARLY_FLUSH_BYTES}, which runs only then.
   */
  @ParameterizedTest
  @EnumSource(StorageMode.class)
  void largeUploadsAfterDirectIoIsOffStillReadBackExactly(StorageMode mode) throws IOException {
    DiskStore s = store(dir, mode, 1L << 40);
    s.disableDirectIo();
    for (int size : new int[] {D, 2 * NINE_MIB}) { // 2 * NINE_MIB: more than EARLY_FLUSH_BYTES
      byte[] content = random(size, 50 + size);
      BlobKey k = cas(content);
      List<AtomicInteger> releases;
      try (BlobWriter w = s.newWriter(k, size)) {
        if (oDirect() != 0) {
          assertThat(writesDirect(dir)).as("O_DIRECT after direct I/O was turned off").isFalse();
        }
        releases = writeInPieces(w, content, size, size);
        w.commit();
      }
      assertReleasedOnce(releases);
      assertStoredFile(s, dir, mode, k, content);
    }
    assertThat(filesEndingWith(dir, DiskStore.TEMP_SUFFIX)).isEmpty();
    assertThat(s.stats().reservedSize()).isZero();
  }

  /**
   * DiskStore.directOutput (DiskStore.java, directOutput) turns direct I/O off for good on any
   * IOException from FileOutput.direct, taking it for "the file system refuses O_DIRECT". But
   * DirectOutput.open also refuses a reserved region over 512 KiB, i.e. a casblob header of an upload
   * announcing about 64 GiB or more (65,532+ chunks of 1 MiB): one such upload (even one that is abandoned
   * at once; max_blob_size is unlimited by default) makes every later large upload go through the page
   * cache until restart.
   */
  @Test
  void hugeZstdUploadDoesNotTurnDirectIoOffForOthers() throws IOException {
    Assumptions.assumeTrue(oDirect() != 0, "no /proc/self/fdinfo to check O_DIRECT");
    DiskStore s = store(dir, StorageMode.ZSTD, 1L << 40);
    byte[] content = random(D + 1, 40);
    try (BlobWriter w = s.newWriter(cas(content), content.length)) {
      assertThat(writesDirect(dir)).as("direct before").isTrue();
    }
    BlobKey huge = cas("huge".getBytes(StandardCharsets.US_ASCII));
    try (BlobWriter w = s.newWriter(huge, 70 * GIB)) {
      assertThat(w.bytesWritten()).isZero(); // announced, then abandoned
    }
    try (BlobWriter w = s.newWriter(cas(content), content.length)) {
      assertThat(writesDirect(dir)).as("direct after a huge upload was announced").isTrue();
      writeInPieces(w, content, 41, content.length);
      w.commit();
    }
    assertStoredFile(s, dir, StorageMode.ZSTD, cas(content), content);
  }

  @Test
  void openingChecksDirectIoLeavesNoProbeAndIgnoresAStaleOne() throws IOException {
    Assumptions.assumeTrue(oDirect() != 0, "no /proc/self/fdinfo to check O_DIRECT");
    Files.createDirectories(dir);
    DiskStore first = store(dir, StorageMode.ZSTD);
    first.close();
    open.remove(first);
    Files.write(dir.resolve("direct-io-check" + DiskStore.TEMP_SUFFIX), new byte[] {1, 2, 3}); // as after a crash
    DiskStore s = store(dir, StorageMode.ZSTD);
    assertThat(filesEndingWith(dir, DiskStore.TEMP_SUFFIX)).isEmpty();
    byte[] content = random(D, 77);
    try (BlobWriter w = s.newWriter(cas(content), content.length)) {
      assertThat(writesDirect(dir)).as("direct I/O still on after a stale probe file").isTrue();
      w.write(ByteBuffer.wrap(content));
      w.commit();
    }
    assertStoredFile(s, dir, StorageMode.ZSTD, cas(content), content);
  }
}
