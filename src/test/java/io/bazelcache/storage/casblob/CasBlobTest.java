package io.bazelcache.storage.casblob;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.github.luben.zstd.Zstd;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CasBlobTest {
  private static final int MIB = 1024 * 1024;

  @TempDir Path dir;

  private Path writeCasblob(byte[] data) throws IOException {
    Path p = dir.resolve("blob-" + data.length + ".zst");
    try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        CasBlobWriter w = new CasBlobWriter(ch, data.length)) {
      // Feed in odd-sized pieces so chunk boundaries fall inside writes.
      int off = 0;
      int step = 7919;
      while (off < data.length) {
        int n = Math.min(step, data.length - off);
        w.write(ByteBuffer.wrap(data, off, n));
        off += n;
        step = step * 3 % 300_007 + 1;
      }
      long len = w.finish();
      assertThat(len).isEqualTo(ch.size());
    }
    return p;
  }

  private static long le64(byte[] b, int off) {
    return ByteBuffer.wrap(b, off, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
  }

  @Test
  void headerOfSmallBlobMatchesTheFormatFieldByField() throws IOException {
    byte[] data = "hello, casblob".getBytes(StandardCharsets.US_ASCII); // 14 bytes, 1 chunk
    byte[] file = Files.readAllBytes(writeCasblob(data));

    // u32 magic 0x184D2A50, little-endian
    assertThat(Arrays.copyOfRange(file, 0, 4)).containsExactly(0x50, 0x2A, 0x4D, 0x18);
    // u32 frameSize = 8 + 1 + 4 + 8 + 8*2 = 37
    assertThat(Arrays.copyOfRange(file, 4, 8)).containsExactly(37, 0, 0, 0);
    // i64 uncompressedSize = 14
    assertThat(Arrays.copyOfRange(file, 8, 16)).containsExactly(14, 0, 0, 0, 0, 0, 0, 0);
    // u8 compression = 1 (zstd)
    assertThat(file[16]).isEqualTo((byte) 1);
    // u32 chunkSize = 1 MiB = 0x00100000
    assertThat(Arrays.copyOfRange(file, 17, 21)).containsExactly(0, 0, 0x10, 0);
    // i64 numOffsets = 2
    assertThat(Arrays.copyOfRange(file, 21, 29)).containsExactly(2, 0, 0, 0, 0, 0, 0, 0);
    // offsets: first chunk right after the 45-byte header, last = file size
    assertThat(Arrays.copyOfRange(file, 29, 37)).containsExactly(45, 0, 0, 0, 0, 0, 0, 0);
    assertThat(le64(file, 37)).isEqualTo(file.length);
    // The frame size counts the bytes after the frameSize field: 8 + 37 = 45 = header length.
    // The chunk is an independent zstd frame that decompresses to the data.
    byte[] frame = Arrays.copyOfRange(file, 45, file.length);
    assertThat(Zstd.decompress(frame, data.length)).isEqualTo(data);
    // And the whole file is a valid zstd stream (skippable frame + data frame).
    assertThat(Zstd.decompress(file, data.length)).isEqualTo(data);
  }

  @Test
  void multiChunkOffsetsPointAtIndependentFrames() throws IOException {
    byte[] data = randomCompressible(3 * MIB + MIB / 2, 1);
    byte[] file = Files.readAllBytes(writeCasblob(data));
    ByteBuffer b = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
    assertThat(b.getInt(0)).isEqualTo(0x184D2A50);
    assertThat(b.getInt(4)).isEqualTo(8 + 1 + 4 + 8 + 8 * 5);
    assertThat(b.getLong(8)).isEqualTo(data.length);
    assertThat(b.get(16)).isEqualTo((byte) 1);
    assertThat(b.getInt(17)).isEqualTo(MIB);
    assertThat(b.getLong(21)).isEqualTo(5); // 4 chunks + 1
    long[] offsets = new long[5];
    for (int i = 0; i < 5; i++) {
      offsets[i] = b.getLong(29 + 8 * i);
    }
    assertThat(offsets[0]).isEqualTo(29 + 40);
    assertThat(offsets[4]).isEqualTo(file.length);
    for (int i = 0; i < 4; i++) {
      byte[] frame = Arrays.copyOfRange(file, (int) offsets[i], (int) offsets[i + 1]);
      int want = Math.min(MIB, data.length - i * MIB);
      assertThat(Zstd.decompress(frame, want))
          .isEqualTo(Arrays.copyOfRange(data, i * MIB, i * MIB + want));
    }
  }

  @Test
  void readerStartsAtAnyOffset() throws IOException {
    byte[] data = randomCompressible(3 * MIB + MIB / 2, 2);
    Path p = writeCasblob(data);
    try (FileChannel ch = FileChannel.open(p)) {
      CasBlobReader r = CasBlobReader.open(ch, ch.size());
      assertThat(r.uncompressedSize()).isEqualTo(data.length);
      long[] offs = {0, 1, MIB - 1, MIB, MIB + 1, 2L * MIB, 3L * MIB, 3L * MIB + 5, data.length - 1, data.length};
      for (long off : offs) {
        try (InputStream in = r.openStream(off)) {
          assertThat(in.readAllBytes())
              .as("offset %d", off)
              .isEqualTo(Arrays.copyOfRange(data, (int) off, data.length));
        }
      }
      assertThatThrownBy(() -> r.openStream(data.length + 1)).isInstanceOf(IndexOutOfBoundsException.class);
    }
  }

  @Test
  void readsHandBuiltFilesWithOtherChunkSizesAndIdentityCompression() throws IOException {
    byte[] data = "0123456789abcdefghij".getBytes(StandardCharsets.US_ASCII); // 20 bytes
    // zstd, chunk size 8: chunks of 8, 8, 4 bytes compressed independently by hand.
    byte[][] frames = {
      Zstd.compress(Arrays.copyOfRange(data, 0, 8), 3),
      Zstd.compress(Arrays.copyOfRange(data, 8, 16), 3),
      Zstd.compress(Arrays.copyOfRange(data, 16, 20), 3)
    };
    Path zst = dir.resolve("hand.zst");
    Files.write(zst, handBuilt(data.length, 1, 8, frames));
    Path raw = dir.resolve("hand.raw");
    Files.write(raw, handBuilt(data.length, 0, 8, new byte[][] {
      Arrays.copyOfRange(data, 0, 8), Arrays.copyOfRange(data, 8, 16), Arrays.copyOfRange(data, 16, 20)}));
    for (Path p : new Path[] {zst, raw}) {
      try (FileChannel ch = FileChannel.open(p)) {
        CasBlobReader r = CasBlobReader.open(ch, ch.size());
        for (int off = 0; off <= data.length; off++) {
          try (InputStream in = r.openStream(off)) {
            assertThat(in.readAllBytes()).isEqualTo(Arrays.copyOfRange(data, off, data.length));
          }
        }
      }
    }
  }

  private static byte[] handBuilt(long size, int compression, int chunkSize, byte[][] chunks) {
    int numOffsets = chunks.length + 1;
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteBuffer h = ByteBuffer.allocate(29 + 8 * numOffsets).order(ByteOrder.LITTLE_ENDIAN);
    h.putInt(0x184D2A50).putInt(21 + 8 * numOffsets).putLong(size).put((byte) compression)
        .putInt(chunkSize).putLong(numOffsets);
    long off = h.capacity();
    for (byte[] c : chunks) {
      h.putLong(off);
      off += c.length;
    }
    h.putLong(off);
    out.writeBytes(h.array());
    for (byte[] c : chunks) {
      out.writeBytes(c);
    }
    return out.toByteArray();
  }

  @Test
  void rejectsMalformedHeadersAndCorruptChunks() throws IOException {
    byte[] data = randomCompressible(2 * MIB + 10, 3);
    byte[] good = Files.readAllBytes(writeCasblob(data));

    byte[] badMagic = good.clone();
    badMagic[0] ^= 1;
    assertThatThrownBy(() -> open(badMagic)).isInstanceOf(CasBlobFormatException.class);

    byte[] badCount = good.clone();
    badCount[21] = 7;
    assertThatThrownBy(() -> open(badCount)).isInstanceOf(CasBlobFormatException.class);

    byte[] truncated = Arrays.copyOf(good, good.length - 1);
    assertThatThrownBy(() -> open(truncated)).isInstanceOf(CasBlobFormatException.class);

    byte[] shortHeader = Arrays.copyOf(good, 20);
    assertThatThrownBy(() -> open(shortHeader)).isInstanceOf(IOException.class);

    byte[] flipped = good.clone();
    flipped[good.length - 3] ^= 0x55; // inside the last frame
    Path p = dir.resolve("flipped");
    Files.write(p, flipped);
    try (FileChannel ch = FileChannel.open(p)) {
      CasBlobReader r = CasBlobReader.open(ch, ch.size());
      assertThatThrownBy(() -> {
            try (InputStream in = r.openStream(0)) {
              byte[] got = in.readAllBytes();
              // A flip may decode to other bytes; then the content differs and the caller's hash catches it.
              if (!Arrays.equals(got, data)) {
                throw new CasBlobFormatException("content differs");
              }
            }
          })
          .isInstanceOf(CasBlobFormatException.class);
    }
  }

  @Test
  void writerRejectsOverflowAndShortInput() throws IOException {
    Path p = dir.resolve("w");
    try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        CasBlobWriter w = new CasBlobWriter(ch, 10)) {
      w.write(ByteBuffer.wrap(new byte[6]));
      assertThatThrownBy(() -> w.write(ByteBuffer.wrap(new byte[5]))).isInstanceOf(IllegalStateException.class);
      assertThat(w.bytesAccepted()).isEqualTo(6);
      assertThatThrownBy(w::finish).isInstanceOf(IllegalStateException.class);
    }
    assertThatThrownBy(() -> new CasBlobWriter((java.nio.channels.FileChannel) null, 0)).isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void streamDecoderReadsWhatTheWriterWroteAndRejectsDamage() throws IOException {
    byte[] data = randomCompressible(2 * MIB + 999, 4);
    byte[] file = Files.readAllBytes(writeCasblob(data));
    try (CasBlobInputStream in = new CasBlobInputStream(new java.io.ByteArrayInputStream(file))) {
      assertThat(in.readAllBytes()).isEqualTo(data);
      assertThat(in.readHeader().uncompressedSize()).isEqualTo(data.length);
    }
    byte[] small = "0123456789abcdefghij".getBytes(StandardCharsets.US_ASCII);
    byte[] identity = handBuilt(small.length, 0, 8, new byte[][] {
      Arrays.copyOfRange(small, 0, 8), Arrays.copyOfRange(small, 8, 16), Arrays.copyOfRange(small, 16, 20)});
    assertThat(decode(identity)).isEqualTo(small);

    byte[] trailing = Arrays.copyOf(file, file.length + 1);
    assertThatThrownBy(() -> decode(trailing)).isInstanceOf(CasBlobFormatException.class);
    byte[] truncated = Arrays.copyOf(file, file.length - 1);
    assertThatThrownBy(() -> decode(truncated)).isInstanceOf(CasBlobFormatException.class);
    byte[] badOffset = file.clone();
    badOffset[29 + 8] ^= 1; // second offset
    assertThatThrownBy(() -> decode(badOffset)).isInstanceOf(CasBlobFormatException.class);
    byte[] badMagic = file.clone();
    badMagic[3] = 0;
    assertThatThrownBy(() -> decode(badMagic)).isInstanceOf(CasBlobFormatException.class);
  }

  private static byte[] decode(byte[] casblob) throws IOException {
    try (CasBlobInputStream in = new CasBlobInputStream(new java.io.ByteArrayInputStream(casblob))) {
      return in.readAllBytes();
    }
  }

  private void open(byte[] content) throws IOException {
    Path p = Files.createTempFile(dir, "bad", "");
    Files.write(p, content);
    try (FileChannel ch = FileChannel.open(p)) {
      CasBlobReader.open(ch, ch.size());
    }
  }

  static byte[] randomCompressible(int n, long seed) {
    Random r = new Random(seed);
    byte[] b = new byte[n];
    for (int i = 0; i < n; i++) {
      b[i] = (byte) (r.nextInt(16) + 'a');
    }
    return b;
  }
}
