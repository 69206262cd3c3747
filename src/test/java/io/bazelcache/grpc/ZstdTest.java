package io.bazelcache.grpc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

class ZstdTest {
  @Test
  void roundTripsInPieces() throws Exception {
    byte[] data = new byte[3 * 1024 * 1024 + 17];
    new java.util.Random(1).nextBytes(data);
    for (int i = 0; i < data.length; i += 3) {
      data[i] = 0;
    }
    ByteArrayOutputStream compressed = new ByteArrayOutputStream();
    try (Zstd.StreamCompressor c = new Zstd.StreamCompressor(new ByteArrayInputStream(data), 100_000)) {
      ByteBuffer chunk;
      while ((chunk = c.next()) != null) {
        compressed.write(chunk.array(), chunk.position(), chunk.remaining());
      }
    }
    byte[] z = compressed.toByteArray();
    assertThat(z.length).isLessThan(data.length);
    assertThat(Zstd.decompress(ByteBuffer.wrap(z), data.length)).isEqualTo(data);

    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (Zstd.Decompressor d = new Zstd.Decompressor()) {
      for (int off = 0; off < z.length; off += 777) {
        ByteBuffer piece = ByteBuffer.wrap(z, off, Math.min(777, z.length - off));
        d.feed(off % 2 == 0 ? piece : piece.asReadOnlyBuffer(),
            b -> out.write(b.array(), b.arrayOffset() + b.position(), b.remaining()));
      }
      assertThat(d.atFrameBoundary()).isTrue();
    }
    assertThat(out.toByteArray()).isEqualTo(data);
  }

  @Test
  void rejectsCorruptTruncatedAndOversizedData() {
    byte[] data = new byte[1000];
    byte[] z = com.github.luben.zstd.Zstd.compress(data);
    assertThatThrownBy(() -> Zstd.decompress(ByteBuffer.wrap(new byte[] {1, 2, 3, 4, 5}), 5))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> Zstd.decompress(ByteBuffer.wrap(z, 0, z.length - 2), 1000))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> Zstd.decompress(ByteBuffer.wrap(z), 999))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> Zstd.decompress(ByteBuffer.wrap(z), 1001))
        .isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void frameBoundaryWithReadOnlyChunks() throws Exception {
    byte[] data = new byte[3 * 1024 * 1024];
    for (int i = 0; i < data.length; i++) {
      data[i] = (byte) (i % 251 < 100 ? 0 : i * 31);
    }
    byte[] z = com.github.luben.zstd.Zstd.compress(data);
    long[] total = {0};
    try (Zstd.Decompressor d = new Zstd.Decompressor()) {
      for (int off = 0; off < z.length; off += 65536) {
        d.feed(ByteBuffer.wrap(z, off, Math.min(65536, z.length - off)).asReadOnlyBuffer(),
            b -> { total[0] += b.remaining(); b.position(b.limit()); });
      }
      assertThat(total[0]).isEqualTo(data.length);
      assertThat(d.atFrameBoundary()).isTrue();
    }
  }
}
