package io.bazelcache.storage.s3;

import static org.assertj.core.api.Assertions.assertThat;

import com.github.luben.zstd.Zstd;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Random;

/**
 * casblob bytes built and checked by hand from the format description (reference §1.7), independently
 * of the production codec: what bazel-remote writes, and what a bazel-remote reader expects.
 */
public final class CasblobVectors {
  public static final int MIB = 1024 * 1024;

  private CasblobVectors() {}

  /** A casblob as bazel-remote would write it; {@code compression} 1 = zstd at {@code level}, 0 = identity. */
  public static byte[] build(byte[] data, int chunkSize, int compression, int level) {
    int chunks = (data.length + chunkSize - 1) / chunkSize;
    int numOffsets = chunks + 1;
    int headerLen = 4 + 4 + 8 + 1 + 4 + 8 + 8 * numOffsets;
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    long[] offsets = new long[numOffsets];
    for (int i = 0; i < chunks; i++) {
      offsets[i] = headerLen + body.size();
      byte[] chunk = Arrays.copyOfRange(data, i * chunkSize, Math.min(data.length, (i + 1) * chunkSize));
      body.writeBytes(compression == 1 ? Zstd.compress(chunk, level) : chunk);
    }
    offsets[chunks] = headerLen + body.size();
    ByteBuffer h = ByteBuffer.allocate(headerLen).order(ByteOrder.LITTLE_ENDIAN);
    h.putInt(0x184D2A50);
    h.putInt(8 + 1 + 4 + 8 + 8 * numOffsets);
    h.putLong(data.length);
    h.put((byte) compression);
    h.putInt(chunkSize);
    h.putLong(numOffsets);
    for (long o : offsets) {
      h.putLong(o);
    }
    ByteArrayOutputStream all = new ByteArrayOutputStream();
    all.writeBytes(h.array());
    all.writeBytes(body.toByteArray());
    return all.toByteArray();
  }

  /**
   * Checks {@code file} field by field against the format for {@code data} as bazel-remote writes it in
   * zstd mode (1 MiB chunks, each an independent zstd frame), and returns the decoded content.
   */
  public static byte[] checkAndDecode(byte[] file, byte[] data) {
    ByteBuffer b = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
    int chunks = (data.length + MIB - 1) / MIB;
    int numOffsets = chunks + 1;
    int headerLen = 29 + 8 * numOffsets;
    assertThat(Arrays.copyOfRange(file, 0, 4)).as("skippable-frame magic, little-endian")
        .containsExactly(0x50, 0x2A, 0x4D, 0x18);
    assertThat(b.getInt(4)).as("frameSize").isEqualTo(8 + 1 + 4 + 8 + 8 * numOffsets);
    assertThat(b.getLong(8)).as("uncompressedSize").isEqualTo(data.length);
    assertThat(file[16]).as("compression = zstd").isEqualTo((byte) 1);
    assertThat(b.getInt(17)).as("chunkSize").isEqualTo(MIB);
    assertThat(b.getLong(21)).as("numOffsets").isEqualTo(numOffsets);
    assertThat(b.getLong(29)).as("first chunk right after the header").isEqualTo(headerLen);
    assertThat(b.getLong(29 + 8 * chunks)).as("last offset = object size").isEqualTo(file.length);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (int i = 0; i < chunks; i++) {
      int start = (int) b.getLong(29 + 8 * i);
      int end = (int) b.getLong(29 + 8 * (i + 1));
      int want = Math.min(MIB, data.length - i * MIB);
      byte[] frame = Arrays.copyOfRange(file, start, end);
      byte[] chunk = Zstd.decompress(frame, want);
      assertThat(chunk).as("chunk %d is an independent zstd frame", i).hasSize(want);
      out.writeBytes(chunk);
    }
    // The whole object is also one valid multi-frame zstd stream.
    assertThat(Zstd.decompress(file, data.length)).isEqualTo(data);
    return out.toByteArray();
  }

  /** Somewhat compressible pseudo-random data. */
  public static byte[] data(int size, long seed) {
    Random r = new Random(seed);
    byte[] b = new byte[size];
    for (int i = 0; i < size; i++) {
      b[i] = (byte) ('a' + r.nextInt(8));
    }
    return b;
  }
}
