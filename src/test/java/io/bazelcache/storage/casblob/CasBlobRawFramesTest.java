package io.bazelcache.storage.casblob;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.ZstdDecompressCtx;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeSet;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The writer's raw-frame path: chunks whose first {@link CasBlobWriter#PROBE_BYTES} do not compress are
 * stored as hand-built zstd frames of raw blocks. Checks the exact frame layout, that every decoder (the
 * project's readers, zstd-jni per chunk, the zstd CLI) gets the data back, that the output does not depend
 * on how the input is cut into pieces, and the writer's error handling and resource pooling.
 */
class CasBlobRawFramesTest {
  private static final int KIB = 1024;
  private static final int MIB = 1024 * KIB;
  private static final int DEFAULT_CHUNK = CasBlobHeader.DEFAULT_CHUNK_SIZE;
  private static final int PROBE = CasBlobWriter.PROBE_BYTES;
  private static final int BLOCK = 128 * KIB;

  private static final int[] BOUNDARY_SIZES = {
    1, 255, 256, PROBE - 1, PROBE, PROBE + 1, BLOCK - 1, BLOCK, BLOCK + 1,
    65536 + 255, 65536 + 256, 65536 + 257, MIB - 1, MIB, MIB + 1, 3 * MIB + 12345
  };

  @TempDir Path dir;

  private final AtomicInteger files = new AtomicInteger();

  /** How a test hands the bytes to a writer. */
  @FunctionalInterface
  interface Feeder {
    void feed(CasBlobWriter w, byte[] data) throws IOException;
  }

  // ---------------------------------------------------------------------------------------------------
  // 1. Incompressible data around every size boundary

  @Test
  void incompressibleBlobsOfBoundarySizesRoundTripWithDefaultChunks() throws IOException {
    checkBoundarySizes(DEFAULT_CHUNK, CasBlobWriter.DEFAULT_LEVEL);
  }

  @Test
  void incompressibleBlobsOfBoundarySizesRoundTripWithCustomChunkSize() throws IOException {
    checkBoundarySizes(300_000, 1);
  }

  @Test
  void incompressibleBlobsRoundTripWithDefaultChunksAtAnotherLevel() throws IOException {
    // Not the pooled configuration (level 3): the raw path must not depend on it.
    for (int size : new int[] {PROBE + 1, 65536 + 256, MIB + 1}) {
      byte[] data = random(size, 1000 + size);
      Path p = write(data, DEFAULT_CHUNK, 3, steppedPieces(5000));
      byte[] file = verify(p, data, DEFAULT_CHUNK);
      assertChunkStorage(file, data, DEFAULT_CHUNK, true);
    }
  }

  @Test
  void chunksNoLongerThanTheProbeAreCompressedByZstd() throws IOException {
    // With chunks of at most PROBE_BYTES nothing is probed: compressible data compresses, random data
    // still round-trips.
    for (int chunkSize : new int[] {PROBE, 10_000}) {
      byte[] text = repeatedText(5 * chunkSize + 17);
      byte[] tfile = verify(write(text, chunkSize, 1, steppedPieces(7777)), text, chunkSize);
      assertThat(tfile.length).as("chunk size %d, text", chunkSize).isLessThan(text.length / 10);
      byte[] rnd = random(5 * chunkSize + 17, chunkSize);
      verify(write(rnd, chunkSize, 1, steppedPieces(7777)), rnd, chunkSize);
    }
  }

  private void checkBoundarySizes(int chunkSize, int level) throws IOException {
    for (int size : BOUNDARY_SIZES) {
      byte[] data = random(size, size * 31L + chunkSize);
      // Odd-sized pieces so the probe, block and chunk boundaries fall inside writes.
      Path p = write(data, chunkSize, level, steppedPieces(7919));
      byte[] file = verify(p, data, chunkSize);
      assertChunkStorage(file, data, chunkSize, true);
      CasBlobHeader h = header(file);
      long expectedLength = h.headerLength();
      for (int i = 0; i < h.numChunks(); i++) {
        int len = h.chunkLength(i);
        expectedLength += len > PROBE ? rawFrameLength(len) : storedLength(h, i);
      }
      assertThat((long) file.length).as("size %d", size).isEqualTo(expectedLength);
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // 2. The output does not depend on how the input is cut

  @Test
  void everyPiecePatternGivesTheSameFileWithDefaultChunks() throws IOException {
    checkPiecePatterns(DEFAULT_CHUNK);
  }

  @Test
  void everyPiecePatternGivesTheSameFileWithCustomChunkSize() throws IOException {
    checkPiecePatterns(300_000);
  }

  private void checkPiecePatterns(int chunkSize) throws IOException {
    byte[] data = mixedBlob(chunkSize, 42);
    Path refPath = write(data, chunkSize, 1, (w, d) -> w.write(ByteBuffer.wrap(d)));
    byte[] reference = verify(refPath, data, chunkSize);
    assertChunkStorage(reference, data, chunkSize, false);
    // The reference has both raw and compressed chunks, or the comparison would prove less.
    CasBlobHeader h = header(reference);
    int rawChunks = 0;
    for (int i = 0; i < h.numChunks(); i++) {
      if (isExactRawFrame(frame(reference, h, i), data, (long) i * chunkSize, h.chunkLength(i))) {
        rawChunks++;
      }
    }
    assertThat(rawChunks).isBetween(2, (int) h.numChunks() - 2);

    for (Map.Entry<String, Feeder> e : feeders(chunkSize).entrySet()) {
      Path p = write(data, chunkSize, 1, e.getValue());
      byte[] file = Files.readAllBytes(p);
      assertSameBytes(file, reference, "file written with " + e.getKey());
      verify(p, data, chunkSize);
    }
  }

  private Map<String, Feeder> feeders(int chunkSize) {
    Map<String, Feeder> f = new LinkedHashMap<>();
    f.put("one direct buffer", (w, d) -> w.write(direct(d, 0, d.length)));
    f.put("one read-only buffer at a non-zero position", (w, d) -> {
      byte[] padded = new byte[d.length + 100];
      System.arraycopy(d, 0, padded, 13, d.length);
      ByteBuffer b = ByteBuffer.wrap(padded, 13, d.length).asReadOnlyBuffer();
      w.write(b);
      assertThat(b.position()).isEqualTo(13 + d.length);
    });
    f.put("one byte[] with an offset", (w, d) -> {
      byte[] padded = new byte[d.length + 50];
      System.arraycopy(d, 0, padded, 7, d.length);
      w.write(padded, 7, d.length);
    });
    f.put("byte[] pieces of 1 B .. 200 KiB", (w, d) -> {
      Random r = new Random(1);
      for (int off = 0; off < d.length; ) {
        int n = Math.min(1 + r.nextInt(200 * KIB), d.length - off);
        w.write(d, off, n);
        off += n;
      }
    });
    f.put("ByteBuffers one at a time, 1 B .. 200 KiB, all kinds", (w, d) -> {
      Random r = new Random(2);
      ByteBuffer scratch = ByteBuffer.allocateDirect(200 * KIB);
      for (int off = 0; off < d.length; ) {
        int n = Math.min(1 + r.nextInt(200 * KIB), d.length - off);
        ByteBuffer b = piece(d, off, n, r.nextInt(5), scratch);
        w.write(b);
        assertThat(b.hasRemaining()).isFalse();
        scribble(scratch); // the writer must not keep references into the caller's buffers
        off += n;
      }
    });
    f.put("ByteBuffer[] batches of 0..8 pieces, all kinds, with empty pieces", (w, d) -> {
      Random r = new Random(3);
      for (int off = 0; off < d.length; ) {
        int count = r.nextInt(9);
        List<ByteBuffer> batch = new ArrayList<>();
        List<ByteBuffer> scratches = new ArrayList<>();
        for (int k = 0; k < count && off < d.length; k++) {
          if (r.nextInt(6) == 0) {
            batch.add(ByteBuffer.allocate(0));
          }
          int n = Math.min(1 + r.nextInt(200 * KIB), d.length - off);
          ByteBuffer scratch = ByteBuffer.allocateDirect(n);
          scratches.add(scratch);
          batch.add(piece(d, off, n, r.nextInt(5), scratch));
          off += n;
        }
        ByteBuffer[] pieces = batch.toArray(new ByteBuffer[0]);
        w.write(pieces);
        for (ByteBuffer b : pieces) {
          assertThat(b.hasRemaining()).isFalse();
        }
        scratches.forEach(CasBlobRawFramesTest::scribble);
      }
    });
    f.put("ByteBuffer[] batches of 2000 tiny pieces (1..64 B), more than one gathering write each", (w, d) -> {
      Random r = new Random(4);
      for (int off = 0; off < d.length; ) {
        List<ByteBuffer> batch = new ArrayList<>();
        for (int k = 0; k < 2000 && off < d.length; k++) {
          int n = Math.min(1 + r.nextInt(64), d.length - off);
          batch.add(r.nextBoolean() ? ByteBuffer.wrap(d, off, n) : direct(d, off, n));
          off += n;
        }
        w.write(batch.toArray(new ByteBuffer[0]));
      }
    });
    f.put("pieces cut exactly at and next to probe, block and chunk boundaries", (w, d) -> {
      TreeSet<Integer> cuts = new TreeSet<>();
      for (int c = 0; c < d.length; c += chunkSize) {
        for (int at : new int[] {0, PROBE, BLOCK, 2 * BLOCK, chunkSize}) {
          for (int delta = -1; delta <= 1; delta++) {
            int cut = c + at + delta;
            if (cut > 0 && cut < d.length && at + delta <= chunkSize) {
              cuts.add(cut);
            }
          }
        }
      }
      cuts.add(d.length);
      int off = 0;
      boolean asArray = false;
      for (int cut : cuts) {
        if (asArray) {
          int mid = off + (cut - off) / 2;
          w.write(new ByteBuffer[] {ByteBuffer.wrap(d, off, mid - off), direct(d, mid, cut - mid)});
        } else {
          w.write(ByteBuffer.wrap(d, off, cut - off).slice());
        }
        asArray = !asArray;
        off = cut;
      }
    });
    f.put("a single ByteBuffer[] holding everything", (w, d) -> {
      List<ByteBuffer> all = new ArrayList<>();
      Random r = new Random(5);
      for (int off = 0; off < d.length; ) {
        int n = Math.min(1 + r.nextInt(50 * KIB), d.length - off);
        all.add(ByteBuffer.wrap(d, off, n));
        off += n;
      }
      w.write(all.toArray(new ByteBuffer[0]));
    });
    return f;
  }

  /** A piece holding {@code d[off, off+n)} in one of five kinds of buffer. */
  private static ByteBuffer piece(byte[] d, int off, int n, int kind, ByteBuffer scratch) {
    switch (kind) {
      case 0:
        return ByteBuffer.wrap(d, off, n); // heap, position = off
      case 1:
        return ByteBuffer.wrap(d, off, n).slice(); // heap with an array offset
      case 2:
        return ByteBuffer.wrap(d, off, n).asReadOnlyBuffer();
      case 3: {
        // a reused direct buffer, at a non-zero position when there is room
        scratch.clear();
        int at = scratch.capacity() - n >= 3 ? 3 : 0;
        scratch.position(at);
        scratch.put(d, off, n);
        return scratch.flip().position(at);
      }
      default:
        return direct(d, off, n);
    }
  }

  private static void scribble(ByteBuffer b) {
    ByteBuffer all = b.duplicate().clear();
    for (int i = 0; i < all.capacity(); i++) {
      all.put(i, (byte) 0xEE);
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // 3. Mixed content: which chunks are raw, and how long they are

  @Test
  void mixedChunksAreStoredRawOrCompressedByTheirFirst32KiB() throws IOException {
    int c = DEFAULT_CHUNK;
    int last = 65536 + 300;
    byte[] data = new byte[8 * c + last];
    Random r = new Random(7);
    fillRandom(data, 0, c, r); //                                     0: random            -> raw
    //                                                                   1: zeros             -> compressed
    fillRandom(data, 2 * c, c, r); //                                 2: random            -> raw
    byte[] text = repeatedText(c);
    System.arraycopy(text, 0, data, 3 * c, c); //                      3: repeated text     -> compressed
    fillRandom(data, 4 * c, PROBE, r); //                              4: random 32K, zeros -> raw
    fillRandom(data, 5 * c + PROBE, c - PROBE, r); //                  5: zeros 32K, random -> compressed
    for (int i = 6 * c; i < 7 * c; i++) { //                           6: 7-bit random      -> compressed
      data[i] = (byte) r.nextInt(128);
    }
    for (int i = 7 * c; i < 8 * c; i++) { //                           7: 251 symbols       -> raw
      data[i] = (byte) r.nextInt(251);
    }
    fillRandom(data, 8 * c, last, r); //                               8: random, 4-byte FCS -> raw

    byte[] file = verify(write(data, c, 1, steppedPieces(100_003)), data, c);
    CasBlobHeader h = header(file);
    assertThat(h.numChunks()).isEqualTo(9);
    boolean[] raw = {true, false, true, false, true, false, false, true, true};
    for (int i = 0; i < 9; i++) {
      int len = h.chunkLength(i);
      byte[] frame = frame(file, h, i);
      long off = (long) i * c;
      if (raw[i]) {
        assertThat(isExactRawFrame(frame, data, off, len)).as("chunk %d is a raw frame", i).isTrue();
        assertThat(storedLength(h, i)).as("chunk %d stored length", i).isEqualTo(rawFrameLength(len));
        assertThat(blockTypes(frame, len)).as("chunk %d block types", i).containsOnly(0);
      } else {
        assertThat(isExactRawFrame(frame, data, off, len)).as("chunk %d is not a raw frame", i).isFalse();
        assertThat(blockTypes(frame, len).get(0)).as("chunk %d first block type", i).isNotZero();
      }
    }
    assertThat(storedLength(h, 1)).as("zeros").isLessThan(1024);
    assertThat(storedLength(h, 3)).as("text").isLessThan(c / 20);
    assertThat(storedLength(h, 5)).as("zeros then random").isLessThan(c - PROBE + 1024);
    assertThat(storedLength(h, 6)).as("7-bit random").isLessThan(c * 15 / 16);
    // The three frame-header sizes: chunk 8 has a 4-byte content size.
    assertThat(frame(file, h, 8)[4]).isEqualTo((byte) 0xA0);
  }

  @Test
  void alternatingChunksWithCustomChunkSizeUseAllFrameHeaderSizes() throws IOException {
    int c = 300_000;
    // random, zeros, random, text, random, then a last chunk of 40000 random bytes (2-byte content size)
    byte[] data = new byte[5 * c + 40_000];
    Random r = new Random(8);
    fillRandom(data, 0, c, r);
    fillRandom(data, 2 * c, c, r);
    System.arraycopy(repeatedText(c), 0, data, 3 * c, c);
    fillRandom(data, 4 * c, c + 40_000, r);
    byte[] file = verify(write(data, c, 1, steppedPieces(65_537)), data, c);
    CasBlobHeader h = header(file);
    long rawBytes = 0;
    for (int i : new int[] {0, 2, 4, 5}) {
      int len = h.chunkLength(i);
      assertThat(isExactRawFrame(frame(file, h, i), data, (long) i * c, len)).as("chunk %d", i).isTrue();
      assertThat(storedLength(h, i)).isEqualTo(rawFrameLength(len));
      rawBytes += rawFrameLength(len);
    }
    assertThat(frame(file, h, 0)[4]).isEqualTo((byte) 0xA0); // 300000: 4-byte content size
    assertThat(frame(file, h, 5)[4]).isEqualTo((byte) 0x60); // 40000: 2-byte content size
    assertThat(frame(file, h, 5)[5] & 0xff | (frame(file, h, 5)[6] & 0xff) << 8).isEqualTo(40_000 - 256);
    // Compressible chunks take almost nothing.
    assertThat(storedLength(h, 1) + storedLength(h, 3)).isLessThan(c / 20);
    assertThat((long) file.length).isLessThan(h.headerLength() + rawBytes + c / 20);
  }

  @Test
  void compressibleBlobsShrink() throws IOException {
    byte[] zeros = new byte[3 * MIB + 1];
    byte[] zfile = verify(write(zeros, DEFAULT_CHUNK, 1, steppedPieces(123_457)), zeros, DEFAULT_CHUNK);
    assertThat(zfile.length).isLessThan(zeros.length / 100);
    byte[] text = repeatedText(2 * MIB + PROBE + 5);
    byte[] tfile = verify(write(text, DEFAULT_CHUNK, 1, steppedPieces(99_991)), text, DEFAULT_CHUNK);
    assertThat(tfile.length).isLessThan(text.length / 20);
    CasBlobHeader h = header(tfile);
    for (int i = 0; i < h.numChunks(); i++) {
      assertThat(blockTypes(frame(tfile, h, i), h.chunkLength(i))).doesNotContain(0);
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // 4. An independent decoder: the zstd command-line tool

  @Test
  void zstdCommandLineDecodesRawChunksAndWholeFiles() throws Exception {
    Assumptions.assumeTrue(zstdOnPath(), "no zstd binary on PATH");
    int c = 300_000;
    byte[] data = random(3 * c + 40_000, 9); // chunks 300000 x3 (4-byte FCS) and 40000 (2-byte FCS)
    byte[] file = verify(write(data, c, 1, steppedPieces(50_001)), data, c);
    checkWithZstdCli(file, data, c);
    for (int size : new int[] {PROBE + 1, 65536 + 255, 65536 + 256, BLOCK, BLOCK + 1, MIB}) {
      byte[] d = random(size, size);
      byte[] f = verify(write(d, DEFAULT_CHUNK, 1, steppedPieces(30_011)), d, DEFAULT_CHUNK);
      checkWithZstdCli(f, d, DEFAULT_CHUNK);
    }
  }

  private void checkWithZstdCli(byte[] file, byte[] data, int chunkSize) throws Exception {
    CasBlobHeader h = header(file);
    for (int i = 0; i < h.numChunks(); i++) {
      int len = h.chunkLength(i);
      byte[] frame = frame(file, h, i);
      assertThat(isExactRawFrame(frame, data, (long) i * chunkSize, len)).as("chunk %d raw", i).isTrue();
      Path fp = dir.resolve("frame-" + files.incrementAndGet() + ".zst");
      Files.write(fp, frame);
      assertSameBytes(zstdDecompress(fp), Arrays.copyOfRange(data, i * chunkSize, i * chunkSize + len),
          "zstd -d of chunk " + i + " (" + len + " bytes)");
    }
    // The casblob header is a zstd skippable frame, so the whole file is a zstd stream.
    Path whole = dir.resolve("whole-" + files.incrementAndGet() + ".zst");
    Files.write(whole, file);
    assertSameBytes(zstdDecompress(whole), data, "zstd -d of the whole file");
  }

  private static boolean zstdOnPath() {
    try {
      Process p = new ProcessBuilder("zstd", "--version").redirectErrorStream(true).start();
      p.getInputStream().readAllBytes();
      return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
    } catch (IOException | InterruptedException e) {
      return false;
    }
  }

  private byte[] zstdDecompress(Path in) throws Exception {
    Path out = dir.resolve("out-" + files.incrementAndGet());
    Path err = dir.resolve("err-" + files.incrementAndGet());
    Process p = new ProcessBuilder("zstd", "-q", "-d", "-c", in.toString())
        .redirectOutput(out.toFile())
        .redirectError(err.toFile())
        .start();
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).as("zstd -d exit code; stderr: %s", Files.readString(err)).isZero();
    return Files.readAllBytes(out);
  }

  // ---------------------------------------------------------------------------------------------------
  // 5. Errors, and pooled resources

  @Test
  void overflowIsRejectedBeforeAnythingIsConsumed() throws IOException {
    byte[] data = random(200_000, 11);
    Path p = newPath();
    try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        CasBlobWriter w = new CasBlobWriter(ch, data.length)) {
      // Too much while the chunk is still being probed.
      ByteBuffer tooMuch = ByteBuffer.wrap(random(200_001, 12));
      assertThatThrownBy(() -> w.write(tooMuch)).isInstanceOf(IllegalStateException.class);
      assertThat(tooMuch.position()).isZero();
      assertThat(w.bytesAccepted()).isZero();

      w.write(ByteBuffer.wrap(data, 0, 150_000)); // now in the middle of a raw chunk
      long fileSize = ch.size();
      assertThat(fileSize).isGreaterThan(150_000);

      ByteBuffer single = ByteBuffer.wrap(data, 150_000, 50_000);
      ByteBuffer extra = ByteBuffer.allocateDirect(1);
      assertThatThrownBy(() -> w.write(new ByteBuffer[] {single, extra}))
          .isInstanceOf(IllegalStateException.class);
      assertThat(single.position()).isEqualTo(150_000);
      assertThat(extra.position()).isZero();
      ByteBuffer big = ByteBuffer.wrap(random(60_000, 13));
      assertThatThrownBy(() -> w.write(big)).isInstanceOf(IllegalStateException.class);
      assertThat(big.position()).isZero();
      assertThatThrownBy(() -> w.write(data, 0, 50_001)).isInstanceOf(IllegalStateException.class);
      assertThat(w.bytesAccepted()).isEqualTo(150_000);
      assertThat(ch.size()).isEqualTo(fileSize);

      // Nothing was consumed: the rest still completes a correct blob.
      w.write(new ByteBuffer[] {ByteBuffer.wrap(data, 150_000, 20_000), direct(data, 170_000, 30_000)});
      assertThatThrownBy(() -> w.write(ByteBuffer.allocate(1))).isInstanceOf(IllegalStateException.class);
      assertThat(w.finish()).isEqualTo(ch.size());
    }
    byte[] file = verify(p, data, DEFAULT_CHUNK);
    assertThat(isExactRawFrame(frame(file, header(file), 0), data, 0, data.length)).isTrue();
  }

  @Test
  void finishWithTooFewBytesThrowsAndTheBlobCanStillBeCompleted() throws IOException {
    byte[] data = random(2 * MIB + 5, 14);
    Path p = newPath();
    try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        CasBlobWriter w = new CasBlobWriter(ch, data.length)) {
      assertThatThrownBy(w::finish).isInstanceOf(IllegalStateException.class);
      w.write(data, 0, MIB + 100);
      assertThatThrownBy(w::finish).isInstanceOf(IllegalStateException.class);
      w.write(data, MIB + 100, data.length - MIB - 101);
      assertThatThrownBy(w::finish).isInstanceOf(IllegalStateException.class);
      w.write(data, data.length - 1, 1);
      assertThat(w.finish()).isEqualTo(ch.size());
    }
    verify(p, data, DEFAULT_CHUNK);

    Path small = newPath();
    try (FileChannel ch = FileChannel.open(small, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        CasBlobWriter w = new CasBlobWriter(ch, 1)) {
      assertThatThrownBy(w::finish).isInstanceOf(IllegalStateException.class);
      w.write(new ByteBuffer[0]);
      assertThatThrownBy(w::finish).isInstanceOf(IllegalStateException.class);
    }
  }

  @Test
  void writingAfterFinishThrowsAndLeavesTheFileAlone() throws IOException {
    byte[] data = random(MIB + PROBE + 3, 15);
    Path p = newPath();
    try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        CasBlobWriter w = new CasBlobWriter(ch, data.length)) {
      w.write(ByteBuffer.wrap(data));
      long len = w.finish();
      byte[] before = Files.readAllBytes(p);
      ByteBuffer one = ByteBuffer.allocate(1);
      assertThatThrownBy(() -> w.write(one)).isInstanceOf(IllegalStateException.class);
      assertThatThrownBy(() -> w.write(ByteBuffer.allocate(0))).isInstanceOf(IllegalStateException.class);
      assertThatThrownBy(() -> w.write(new ByteBuffer[] {ByteBuffer.allocateDirect(5)}))
          .isInstanceOf(IllegalStateException.class);
      assertThatThrownBy(() -> w.write(data, 0, 1)).isInstanceOf(IllegalStateException.class);
      assertThat(one.position()).isZero();
      assertThat(w.finish()).isEqualTo(len); // idempotent
      assertThat(Files.readAllBytes(p)).isEqualTo(before);
      assertThat(w.bytesAccepted()).isEqualTo(data.length);
    }
    verify(p, data, DEFAULT_CHUNK);
  }

  @Test
  void writingAfterCloseWhileProbingThrowsIllegalState() throws IOException {
    checkWriteAfterClose(PROBE / 2);
  }

  @Test
  void writingAfterCloseInsideARawChunkThrowsIllegalState() throws IOException {
    checkWriteAfterClose(100_000);
  }

  /**
   * Closes a writer (returning its pooled buffers) after {@code before} bytes, then writes again: this must
   * be refused, or the closed writer keeps using buffers that the pool may already have handed to another
   * writer.
   */
  private void checkWriteAfterClose(int before) throws IOException {
    byte[] data = random(2 * MIB, 20);
    Path p = newPath();
    try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
      CasBlobWriter w = new CasBlobWriter(ch, data.length);
      w.write(data, 0, before);
      w.close();
      long size = ch.size();
      assertThatThrownBy(() -> w.write(data, before, 1))
          .as("write after close, %d bytes written before", before)
          .isInstanceOf(IllegalStateException.class);
      assertThat(w.bytesAccepted()).isEqualTo(before);
      assertThat(ch.size()).isEqualTo(size);
      w.close(); // idempotent
    }
  }

  @Test
  void constructorRejectsBadArguments() {
    assertThatThrownBy(() -> new CasBlobWriter((java.nio.channels.FileChannel) null, 0)).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> new CasBlobWriter((java.nio.channels.FileChannel) null, -1)).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> new CasBlobWriter((java.nio.channels.FileChannel) null, 10, 0, 1)).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> new CasBlobWriter((java.nio.channels.FileChannel) null, 10, CasBlobHeader.MAX_CHUNK_SIZE + 1, 1))
        .isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void manySequentialWritersReusingPooledResourcesAllRoundTrip() throws IOException {
    Random r = new Random(16);
    for (int n = 0; n < 50; n++) {
      int chunkSize = n % 5 == 4 ? 300_000 : DEFAULT_CHUNK;
      byte[] data = contentOfKind(n % 4, 1 + r.nextInt(3 * MIB / 2), r);
      if (n % 7 == 3) {
        // Abandoned uploads: closed in the middle of a raw chunk, or while probing.
        abandon(data, chunkSize, n % 2 == 0 ? PROBE / 2 : PROBE + 1000);
      }
      Path p = write(data, chunkSize, 1, randomPieces(n));
      byte[] file = verify(p, data, chunkSize);
      assertChunkStorage(file, data, chunkSize, false);
    }
  }

  @Test
  void interleavedWritersInOneThreadDoNotShareBuffers() throws IOException {
    // Two pooled writers open at once, fed alternately: each must have its own chunk and header buffers.
    byte[] a = mixedBlob(DEFAULT_CHUNK, 17);
    byte[] b = mixedBlob(DEFAULT_CHUNK, 18);
    Path pa = newPath();
    Path pb = newPath();
    try (FileChannel ca = FileChannel.open(pa, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        FileChannel cb = FileChannel.open(pb, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        CasBlobWriter wa = new CasBlobWriter(ca, a.length);
        CasBlobWriter wb = new CasBlobWriter(cb, b.length)) {
      Random r = new Random(19);
      int offA = 0;
      int offB = 0;
      while (offA < a.length || offB < b.length) {
        int na = Math.min(1 + r.nextInt(70 * KIB), a.length - offA);
        wa.write(ByteBuffer.wrap(a, offA, na));
        offA += na;
        int nb = Math.min(1 + r.nextInt(70 * KIB), b.length - offB);
        wb.write(new ByteBuffer[] {direct(b, offB, nb / 2), ByteBuffer.wrap(b, offB + nb / 2, nb - nb / 2)});
        offB += nb;
      }
      assertThat(wa.finish()).isEqualTo(ca.size());
      assertThat(wb.finish()).isEqualTo(cb.size());
    }
    assertChunkStorage(verify(pa, a, DEFAULT_CHUNK), a, DEFAULT_CHUNK, false);
    assertChunkStorage(verify(pb, b, DEFAULT_CHUNK), b, DEFAULT_CHUNK, false);
  }

  @Test
  void concurrentWritersAllRoundTrip() throws Exception {
    int threads = 8;
    CyclicBarrier start = new CyclicBarrier(threads);
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<Integer>> results = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        int seed = 100 + t;
        results.add(pool.submit(() -> {
          Random r = new Random(seed);
          start.await(30, TimeUnit.SECONDS);
          int done = 0;
          for (int k = 0; k < 4; k++) {
            int chunkSize = (seed + k) % 4 == 0 ? 300_000 : DEFAULT_CHUNK;
            byte[] data = contentOfKind((seed + k) % 4, 1 + r.nextInt(2 * MIB), r);
            if (k == 1) {
              abandon(data, chunkSize, PROBE + 777);
            }
            Path p = write(data, chunkSize, 1, randomPieces(seed * 10 + k));
            assertChunkStorage(verify(p, data, chunkSize), data, chunkSize, false);
            done++;
          }
          return done;
        }));
      }
      for (Future<Integer> f : results) {
        assertThat(f.get(120, TimeUnit.SECONDS)).isEqualTo(4);
      }
    } finally {
      pool.shutdownNow();
    }
  }

  /** Starts a blob, writes {@code n} bytes of it and closes the writer without finishing. */
  private void abandon(byte[] data, int chunkSize, int n) throws IOException {
    Path p = newPath();
    try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        CasBlobWriter w = writer(ch, data.length, chunkSize, 1)) {
      w.write(data, 0, Math.min(n, data.length));
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // Helpers: writing

  private Path newPath() {
    return dir.resolve("blob-" + files.incrementAndGet() + ".casblob");
  }

  private static CasBlobWriter writer(FileChannel ch, long size, int chunkSize, int level) {
    return chunkSize == DEFAULT_CHUNK && level == CasBlobWriter.DEFAULT_LEVEL
        ? new CasBlobWriter(ch, size)
        : new CasBlobWriter(ch, size, chunkSize, level);
  }

  private Path write(byte[] data, int chunkSize, int level, Feeder feeder) throws IOException {
    Path p = newPath();
    try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        CasBlobWriter w = writer(ch, data.length, chunkSize, level)) {
      feeder.feed(w, data);
      assertThat(w.bytesAccepted()).isEqualTo(data.length);
      long len = w.finish();
      assertThat(len).isEqualTo(ch.size());
    }
    return p;
  }

  /** Pieces of {@code first}, then varying odd sizes, through write(ByteBuffer). */
  private static Feeder steppedPieces(int first) {
    return (w, d) -> {
      int step = first;
      for (int off = 0; off < d.length; ) {
        int n = Math.min(step, d.length - off);
        w.write(ByteBuffer.wrap(d, off, n));
        off += n;
        step = step * 3 % 300_007 + 1;
      }
    };
  }

  /** A random mix of the three write methods, piece sizes and buffer kinds. */
  private static Feeder randomPieces(long seed) {
    return (w, d) -> {
      Random r = new Random(seed);
      for (int off = 0; off < d.length; ) {
        int n = Math.min(1 + r.nextInt(r.nextBoolean() ? 200 * KIB : 2 * KIB), d.length - off);
        switch (r.nextInt(3)) {
          case 0 -> w.write(d, off, n);
          case 1 -> w.write(direct(d, off, n));
          default -> {
            int half = n / 2;
            w.write(new ByteBuffer[] {ByteBuffer.wrap(d, off, half), direct(d, off + half, n - half)});
          }
        }
        off += n;
      }
    };
  }

  private static ByteBuffer direct(byte[] d, int off, int n) {
    return ByteBuffer.allocateDirect(n).put(d, off, n).flip();
  }

  // ---------------------------------------------------------------------------------------------------
  // Helpers: content

  private static byte[] random(int n, long seed) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    return b;
  }

  private static void fillRandom(byte[] b, int off, int n, Random r) {
    byte[] x = new byte[n];
    r.nextBytes(x);
    System.arraycopy(x, 0, b, off, n);
  }

  private static byte[] repeatedText(int n) {
    byte[] unit = "The quick brown fox jumps over the lazy dog; casblob raw frames. "
        .getBytes(StandardCharsets.US_ASCII);
    byte[] b = new byte[n];
    for (int i = 0; i < n; i++) {
      b[i] = unit[i % unit.length];
    }
    return b;
  }

  /** 0: random, 1: zeros, 2: text, 3: chunk-sized stretches alternating random and text. */
  private static byte[] contentOfKind(int kind, int n, Random r) {
    byte[] b;
    switch (kind) {
      case 0 -> {
        b = new byte[n];
        r.nextBytes(b);
      }
      case 1 -> b = new byte[n];
      case 2 -> b = repeatedText(n);
      default -> {
        b = repeatedText(n);
        for (int off = 0; off < n; off += 2 * 400_000) {
          fillRandom(b, off, Math.min(400_000, n - off), r);
        }
      }
    }
    return b;
  }

  /**
   * About six chunks: random, zeros, random-then-zeros, text, zeros-then-random, random, and a short last
   * chunk of random bytes.
   */
  private static byte[] mixedBlob(int c, long seed) {
    Random r = new Random(seed);
    byte[] b = new byte[6 * c + 65536 + 257];
    fillRandom(b, 0, c, r);
    fillRandom(b, 2 * c, PROBE + 10, r);
    System.arraycopy(repeatedText(c), 0, b, 3 * c, c);
    fillRandom(b, 4 * c + PROBE, c - PROBE, r);
    fillRandom(b, 5 * c, c, r);
    fillRandom(b, 6 * c, b.length - 6 * c, r);
    return b;
  }

  // ---------------------------------------------------------------------------------------------------
  // Helpers: checking

  /**
   * Checks a casblob file against its data with every decoder: the header, each chunk on its own with
   * zstd-jni (both APIs), {@link CasBlobReader} from several offsets and {@link CasBlobInputStream}.
   * Returns the file's bytes.
   */
  private static byte[] verify(Path p, byte[] data, int chunkSize) throws IOException {
    byte[] file = Files.readAllBytes(p);
    CasBlobHeader h = header(file);
    assertThat(h.uncompressedSize()).isEqualTo(data.length);
    assertThat(h.chunkSize()).isEqualTo(chunkSize);
    assertThat(h.compression()).isEqualTo(CasBlobHeader.COMPRESSION_ZSTD);
    assertThat(h.numChunks()).isEqualTo(CasBlobHeader.numChunks(data.length, chunkSize));
    try (ZstdDecompressCtx ctx = new ZstdDecompressCtx()) {
      byte[] out = new byte[chunkSize + 64];
      for (int i = 0; i < h.numChunks(); i++) {
        int len = h.chunkLength(i);
        byte[] frame = frame(file, h, i);
        byte[] expected = Arrays.copyOfRange(data, i * chunkSize, i * chunkSize + len);
        assertThat(Zstd.getFrameContentSize(frame)).as("chunk %d content size", i).isEqualTo(len);
        assertSameBytes(Zstd.decompress(frame, len), expected, "Zstd.decompress of chunk " + i);
        // More room than needed: the frame must end exactly at the chunk's length.
        int n = ctx.decompressByteArray(out, 0, out.length, frame, 0, frame.length);
        assertThat(n).as("chunk %d decompressed length", i).isEqualTo(len);
        assertSameBytes(Arrays.copyOf(out, n), expected, "ZstdDecompressCtx of chunk " + i);
      }
    }
    try (FileChannel ch = FileChannel.open(p)) {
      CasBlobReader reader = CasBlobReader.open(ch, ch.size());
      for (long off : new long[] {0, data.length / 3, data.length - 1}) {
        try (InputStream in = reader.openStream(off)) {
          assertSameBytes(in.readAllBytes(), Arrays.copyOfRange(data, (int) off, data.length),
              "CasBlobReader from " + off);
        }
      }
    }
    try (CasBlobInputStream in = new CasBlobInputStream(new ByteArrayInputStream(file))) {
      assertSameBytes(in.readAllBytes(), data, "CasBlobInputStream");
    }
    return file;
  }

  /**
   * Every chunk longer than the probe whose first PROBE_BYTES are incompressible is exactly the expected
   * raw frame, and every other chunk is not ({@code allRandom}: every chunk longer than the probe must be
   * raw).
   */
  private static void assertChunkStorage(byte[] file, byte[] data, int chunkSize, boolean allRandom) {
    CasBlobHeader h = header(file);
    for (int i = 0; i < h.numChunks(); i++) {
      int len = h.chunkLength(i);
      if (len <= PROBE) {
        continue; // zstd compresses it; its own output may or may not look like a raw frame
      }
      long off = (long) i * chunkSize;
      boolean probeIncompressible = allRandom || !compressible(data, (int) off);
      byte[] frame = frame(file, h, i);
      assertThat(isExactRawFrame(frame, data, off, len))
          .as("chunk %d (%d bytes) stored as a raw frame", i, len)
          .isEqualTo(probeIncompressible);
      if (probeIncompressible) {
        assertThat(storedLength(h, i)).as("chunk %d stored length", i).isEqualTo(rawFrameLength(len));
      }
    }
  }

  /** Whether zstd level 1 takes at least 1/32 off the PROBE_BYTES at {@code off} (the writer's rule). */
  private static boolean compressible(byte[] data, int off) {
    byte[] probe = Arrays.copyOfRange(data, off, off + PROBE);
    return Zstd.compress(probe, 1).length < PROBE - PROBE / 32;
  }

  private static CasBlobHeader header(byte[] file) {
    try {
      return CasBlobHeader.parse(ByteBuffer.wrap(file), file.length);
    } catch (CasBlobFormatException e) {
      throw new AssertionError(e);
    }
  }

  private static byte[] frame(byte[] file, CasBlobHeader h, int i) {
    return Arrays.copyOfRange(file, (int) h.offsets()[i], (int) h.offsets()[i + 1]);
  }

  private static long storedLength(CasBlobHeader h, int i) {
    return h.offsets()[i + 1] - h.offsets()[i];
  }

  /** Length of a raw frame for {@code len} bytes: frame header, then 3 bytes per 128 KiB block. */
  private static long rawFrameLength(int len) {
    int fcs = len < 256 ? 1 : len < 65536 + 256 ? 2 : 4;
    return len + 4 + 1 + fcs + 3L * ((len + BLOCK - 1) / BLOCK);
  }

  /** The zstd frame of raw blocks for {@code data[off, off+len)}, built from the format specification. */
  private static byte[] rawFrame(byte[] data, long off, int len) {
    ByteArrayOutputStream o = new ByteArrayOutputStream(len + 64);
    o.writeBytes(new byte[] {0x28, (byte) 0xB5, 0x2F, (byte) 0xFD}); // magic 0xFD2FB528, little-endian
    if (len < 256) {
      o.write(0x20); // Single_Segment_flag, FCS_Field_Size 1
      o.write(len);
    } else if (len < 65536 + 256) {
      o.write(0x60); // Single_Segment_flag, FCS_flag 1: 2 bytes holding len - 256
      o.write((len - 256) & 0xff);
      o.write((len - 256) >>> 8);
    } else {
      o.write(0xA0); // Single_Segment_flag, FCS_flag 2: 4 bytes
      for (int s = 0; s < 32; s += 8) {
        o.write(len >>> s & 0xff);
      }
    }
    for (int done = 0; done < len; ) {
      int block = Math.min(BLOCK, len - done);
      int header = block << 3 | (done + block == len ? 1 : 0); // Block_Type 0 = Raw_Block
      o.write(header & 0xff);
      o.write(header >>> 8 & 0xff);
      o.write(header >>> 16 & 0xff);
      o.write(data, (int) off + done, block);
      done += block;
    }
    return o.toByteArray();
  }

  private static boolean isExactRawFrame(byte[] frame, byte[] data, long off, int len) {
    return Arrays.equals(frame, rawFrame(data, off, len));
  }

  /**
   * Walks a zstd frame by the specification and returns its block types (0 raw, 1 RLE, 2 compressed),
   * checking that the blocks end exactly at the frame's end and the content size field says {@code len}.
   */
  private static List<Integer> blockTypes(byte[] f, int len) {
    ByteBuffer b = ByteBuffer.wrap(f).order(java.nio.ByteOrder.LITTLE_ENDIAN);
    assertThat(b.getInt()).isEqualTo(0xFD2FB528);
    int fhd = b.get() & 0xff;
    int fcsFlag = fhd >>> 6;
    boolean single = (fhd & 0x20) != 0;
    boolean checksum = (fhd & 0x04) != 0;
    int dictIdBytes = new int[] {0, 1, 2, 4}[fhd & 3];
    if (!single) {
      b.get(); // window descriptor
    }
    b.position(b.position() + dictIdBytes);
    long fcs = switch (fcsFlag) {
      case 0 -> single ? b.get() & 0xff : -1;
      case 1 -> (b.getShort() & 0xffff) + 256;
      case 2 -> b.getInt() & 0xffffffffL;
      default -> b.getLong();
    };
    assertThat(fcs).as("frame content size").isEqualTo(len);
    List<Integer> types = new ArrayList<>();
    boolean last = false;
    while (!last) {
      int h = (b.get() & 0xff) | (b.get() & 0xff) << 8 | (b.get() & 0xff) << 16;
      last = (h & 1) != 0;
      int type = h >>> 1 & 3;
      int size = h >>> 3;
      assertThat(type).isNotEqualTo(3);
      assertThat(size).isLessThanOrEqualTo(BLOCK);
      types.add(type);
      b.position(b.position() + (type == 1 ? 1 : size));
    }
    b.position(b.position() + (checksum ? 4 : 0));
    assertThat(b.remaining()).as("bytes after the last block").isZero();
    return types;
  }

  private static void assertSameBytes(byte[] actual, byte[] expected, String what) {
    assertThat(actual.length).as("%s: length", what).isEqualTo(expected.length);
    assertThat(Arrays.mismatch(actual, expected)).as("%s: first differing byte", what).isEqualTo(-1);
  }
}
