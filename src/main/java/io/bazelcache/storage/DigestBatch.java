package io.bazelcache.storage;

import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;

/**
 * Many CAS digests of one function, kept as arrays: each 256-bit hash as four longs (most significant
 * first) and its size. FindMissingBlobs asks about thousands of digests per call; as a batch they cost
 * no string, digest or key object each, and a store that indexes hashes as numbers (the disk store)
 * looks them up as they are. {@link #key(int)} makes the usual key when a layer needs one.
 */
public final class DigestBatch {
  private static final HexFormat HEX = HexFormat.of();

  private final DigestFunction function;
  private final int count;
  private final long[] words;
  private final long[] sizes;
  private final long[] emptyWords; // the empty blob's hash

  private DigestBatch(DigestFunction function, int count, long[] words, long[] sizes) {
    this.function = function;
    this.count = count;
    this.words = words;
    this.sizes = sizes;
    this.emptyWords = wordsOf(function.emptyHash());
  }

  /**
   * Parses and validates {@code n} hex hashes held in one byte array ({@code hex[offsets[i] ..
   * offsets[i] + lengths[i])}), with their sizes: each must be {@link DigestFunction#HEX_LENGTH}
   * lowercase hex characters with a size of at least 0, and a size of 0 only for the empty blob's hash.
   *
   * @throws Digest.InvalidDigestException naming the first invalid digest by its index, as
   *     {@code what[i]}
   */
  public static DigestBatch ofHex(DigestFunction function, byte[] hex, int[] offsets, int[] lengths,
      long[] sizes, int n, String what) {
    long[] words = new long[4 * n];
    long[] emptyWords = null;
    for (int i = 0; i < n; i++) {
      int off = offsets[i];
      boolean ok = lengths[i] == DigestFunction.HEX_LENGTH && sizes[i] >= 0;
      int bad = 0;
      for (int w = 0; ok && w < 4; w++) {
        long v = 0;
        for (int j = off + 16 * w, end = j + 16; j < end; j++) {
          int d = Digest.hexValue(hex[j] & 0xFF);
          bad |= d; // -1 for a character that is not lowercase hex
          v = v << 4 | (d & 0xF);
        }
        words[4 * i + w] = v;
      }
      if (ok && sizes[i] == 0 && bad >= 0) {
        if (emptyWords == null) {
          emptyWords = wordsOf(function.emptyHash());
        }
        ok = Arrays.equals(words, 4 * i, 4 * i + 4, emptyWords, 0, 4);
      }
      if (!ok || bad < 0) {
        try {
          Digest.ofHexBytes(function, hex, off, lengths[i], sizes[i]); // throws the usual message
        } catch (Digest.InvalidDigestException e) {
          throw new Digest.InvalidDigestException(what + "[" + i + "]: " + e.getMessage());
        }
        throw new Digest.InvalidDigestException(what + "[" + i + "]: invalid digest");
      }
    }
    return new DigestBatch(function, n, words, Arrays.copyOf(sizes, n));
  }

  /** A batch of {@code digests}, all of {@code function}. */
  public static DigestBatch of(DigestFunction function, List<Digest> digests) {
    int n = digests.size();
    long[] words = new long[4 * n];
    long[] sizes = new long[n];
    for (int i = 0; i < n; i++) {
      Digest d = digests.get(i);
      if (d.function() != function) {
        throw new IllegalArgumentException("digest " + i + " is " + d.function() + ", not " + function);
      }
      System.arraycopy(wordsOf(d.hash()), 0, words, 4 * i, 4);
      sizes[i] = d.sizeBytes();
    }
    return new DigestBatch(function, n, words, sizes);
  }

  private static long[] wordsOf(String hex) {
    long[] w = new long[4];
    for (int i = 0; i < 4; i++) {
      w[i] = HEX.fromHexDigitsToLong(hex, 16 * i, 16 * i + 16);
    }
    return w;
  }

  public DigestFunction function() {
    return function;
  }

  public int size() {
    return count;
  }

  /** Word {@code w} (0 to 3, most significant first) of digest {@code i}'s hash. */
  public long word(int i, int w) {
    return words[4 * i + w];
  }

  public long sizeBytes(int i) {
    return sizes[i];
  }

  /**
   * True if digest {@code i} has the empty blob's hash, which every store has without storing it
   * (whatever size is asked with it, as {@link BlobKey#isEmptyCasBlob()}).
   */
  public boolean isEmptyBlob(int i) {
    return Arrays.equals(words, 4 * i, 4 * i + 4, emptyWords, 0, 4);
  }

  public String hash(int i) {
    return HEX.toHexDigits(words[4 * i]) + HEX.toHexDigits(words[4 * i + 1])
        + HEX.toHexDigits(words[4 * i + 2]) + HEX.toHexDigits(words[4 * i + 3]);
  }

  /** The CAS key of digest {@code i}. */
  public BlobKey key(int i) {
    return new BlobKey(Kind.CAS, function, hash(i));
  }

  /** The CAS keys of the digests at {@code indexes}. */
  public List<BlobKey> keys(int[] indexes) {
    List<BlobKey> keys = new ArrayList<>(indexes.length);
    for (int i : indexes) {
      keys.add(key(i));
    }
    return keys;
  }

  /** Whether digests {@code i} and {@code j} have the same hash. */
  public boolean sameHash(int i, int j) {
    return Arrays.equals(words, 4 * i, 4 * i + 4, words, 4 * j, 4 * j + 4);
  }
}
