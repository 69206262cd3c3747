package io.bazelcache.digest;

import java.nio.ByteBuffer;
import java.security.MessageDigest;

/** An incremental hash computation. Not thread-safe. */
public sealed interface Hasher permits Hasher.Sha256, Hasher.Blake3Hasher {

  void update(byte[] data, int offset, int length);

  /** Consumes the remaining bytes of {@code data} (its position moves to its limit). */
  void update(ByteBuffer data);

  /** Returns the hash; the hasher must not be used afterwards. */
  byte[] finish();

  final class Sha256 implements Hasher {
    private final MessageDigest md;

    Sha256(MessageDigest md) {
      this.md = md;
    }

    @Override
    public void update(byte[] data, int offset, int length) {
      md.update(data, offset, length);
    }

    @Override
    public void update(ByteBuffer data) {
      md.update(data);
    }

    @Override
    public byte[] finish() {
      return md.digest();
    }
  }

  final class Blake3Hasher implements Hasher {
    private final org.apache.commons.codec.digest.Blake3 b3 =
        org.apache.commons.codec.digest.Blake3.initHash();
    private byte[] scratch;

    @Override
    public void update(byte[] data, int offset, int length) {
      b3.update(data, offset, length);
    }

    @Override
    public void update(ByteBuffer data) {
      if (data.hasArray()) {
        b3.update(data.array(), data.arrayOffset() + data.position(), data.remaining());
        data.position(data.limit());
        return;
      }
      if (scratch == null) {
        scratch = new byte[64 * 1024];
      }
      while (data.hasRemaining()) {
        int n = Math.min(scratch.length, data.remaining());
        data.get(scratch, 0, n);
        b3.update(scratch, 0, n);
      }
    }

    @Override
    public byte[] finish() {
      byte[] out = new byte[DigestFunction.HASH_BYTES];
      b3.doFinalize(out);
      return out;
    }
  }
}
