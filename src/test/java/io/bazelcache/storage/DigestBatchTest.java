package io.bazelcache.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.metrics.CacheMetrics;
import io.bazelcache.storage.disk.DiskStore;
import io.bazelcache.storage.disk.OpenStores;
import io.bazelcache.storage.disk.StorageMode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * {@link DigestBatch} parsing and validation, {@link BlobStore#findMissing(DigestBatch)}'s default and the
 * disk store's and metered store's overrides, checked against {@link BlobStore#findMissing(Collection)}
 * and {@link BlobStore#contains}.
 */
class DigestBatchTest {
  private static final HexFormat HEX = HexFormat.of();
  private static final int B = 4096;
  private static final long GIB = 1L << 30;
  private static final String WHAT = "blob_digests";

  @TempDir Path dir;
  @RegisterExtension final OpenStores open = new OpenStores();

  private DiskStore disk(String name, long maxSize, StorageMode mode) throws IOException {
    return open.open(dir.resolve(name), maxSize, 0, mode, Long.MAX_VALUE);
  }

  // ------------------------------------------------------------------------------------------------
  // Helpers

  /** The hashes packed into one byte array as the wire parser leaves them, behind some junk bytes. */
  record Packed(byte[] hex, int[] offsets, int[] lengths) {}

  static Packed pack(byte[][] hashes) {
    ByteArrayOutputStream all = new ByteArrayOutputStream();
    int[] offsets = new int[hashes.length];
    int[] lengths = new int[hashes.length];
    all.writeBytes("JUNK".getBytes(StandardCharsets.US_ASCII)); // offsets must be honoured
    for (int i = 0; i < hashes.length; i++) {
      offsets[i] = all.size();
      lengths[i] = hashes[i].length;
      all.writeBytes(hashes[i]);
      all.write('#'); // a non-hex separator: reading past a hash would be caught
    }
    return new Packed(all.toByteArray(), offsets, lengths);
  }

  static DigestBatch ofHex(DigestFunction f, String[] hashes, long[] sizes) {
    byte[][] raw = new byte[hashes.length][];
    for (int i = 0; i < hashes.length; i++) {
      raw[i] = hashes[i].getBytes(StandardCharsets.UTF_8);
    }
    return ofHex(f, raw, sizes);
  }

  static DigestBatch ofHex(DigestFunction f, byte[][] hashes, long[] sizes) {
    Packed p = pack(hashes);
    return DigestBatch.ofHex(f, p.hex, p.offsets, p.lengths, sizes, hashes.length, WHAT);
  }

  static String randomHex(Random r) {
    byte[] h = new byte[32];
    r.nextBytes(h);
    return HEX.formatHex(h);
  }

  static byte[] content(Random r) {
    byte[] b = new byte[1 + r.nextInt(300)];
    r.nextBytes(b);
    return b;
  }

  /**
   * A store with only the required methods and findMissing(Collection) and close forwarded: its
   * findMissing(DigestBatch) is the interface's default.
   */
  static class Plain extends ForwardingStore {
    Plain(BlobStore inner) {
      super(inner);
    }

    @Override
    public List<BlobKey> findMissing(Collection<BlobKey> keys) throws IOException {
      return delegate.findMissing(keys);
    }

    @Override
    public void close() throws IOException {
      delegate.close();
    }
  }

  // ------------------------------------------------------------------------------------------------
  // 1. ofHex: parsing and validation

  @ParameterizedTest
  @EnumSource(DigestFunction.class)
  void ofHexRoundTripsHashesWordsAndKeys(DigestFunction f) {
    Random r = new Random(7 + f.ordinal());
    int n = 50;
    String[] hashes = new String[n];
    long[] sizes = new long[n];
    for (int i = 0; i < n; i++) {
      hashes[i] = randomHex(r);
      sizes[i] = 1 + r.nextInt(1 << 30);
    }
    // Extremes of the words: all zero bits, all one bits (negative longs), the sign bit alone.
    hashes[0] = "0".repeat(64);
    hashes[1] = "f".repeat(64);
    hashes[2] = "8000000000000000".repeat(4);
    hashes[3] = "0123456789abcdef".repeat(4);
    hashes[4] = f.emptyHash();
    sizes[4] = 0;
    sizes[5] = Long.MAX_VALUE;
    DigestBatch b = ofHex(f, hashes, sizes);
    assertThat(b.size()).isEqualTo(n);
    assertThat(b.function()).isEqualTo(f);
    for (int i = 0; i < n; i++) {
      assertThat(b.hash(i)).isEqualTo(hashes[i]);
      assertThat(b.sizeBytes(i)).isEqualTo(sizes[i]);
      Digest d = new Digest(f, hashes[i], sizes[i]);
      assertThat(b.key(i)).isEqualTo(BlobKey.cas(d));
      assertThat(b.key(i).kind()).isEqualTo(Kind.CAS);
      assertThat(b.key(i).function()).isEqualTo(f);
      ByteBuffer bytes = ByteBuffer.wrap(HEX.parseHex(hashes[i])); // big-endian by default
      for (int w = 0; w < 4; w++) {
        assertThat(b.word(i, w)).isEqualTo(bytes.getLong(8 * w));
        assertThat(b.word(i, w)).isEqualTo(Long.parseUnsignedLong(hashes[i].substring(16 * w, 16 * w + 16), 16));
      }
      assertThat(b.isEmptyBlob(i)).isEqualTo(i == 4);
    }
    assertThat(b.word(1, 3)).isEqualTo(-1L);
    assertThat(b.word(2, 0)).isEqualTo(Long.MIN_VALUE);
    assertThat(b.word(3, 2)).isEqualTo(0x0123456789abcdefL);
    // keys(int[]) in the order given, repeats included.
    assertThat(b.keys(new int[] {9, 2, 9})).containsExactly(b.key(9), b.key(2), b.key(9));
    assertThat(b.keys(new int[0])).isEmpty();
    // The same digests as a list make the same batch.
    List<Digest> ds = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      ds.add(new Digest(f, hashes[i], sizes[i]));
    }
    DigestBatch same = DigestBatch.of(f, ds);
    for (int i = 0; i < n; i++) {
      assertThat(same.hash(i)).isEqualTo(b.hash(i));
      assertThat(same.sizeBytes(i)).isEqualTo(b.sizeBytes(i));
      assertThat(same.key(i)).isEqualTo(b.key(i));
      assertThat(same.isEmptyBlob(i)).isEqualTo(b.isEmptyBlob(i));
      for (int w = 0; w < 4; w++) {
        assertThat(same.word(i, w)).isEqualTo(b.word(i, w));
      }
    }
  }

  @Test
  void ofHexReadsOnlyTheFirstNDigestsAndCopiesTheSizes() {
    String[] hashes = {"a".repeat(64), "b".repeat(64), "not hex at all"};
    long[] sizes = {1, 2, -5};
    Packed p = pack(new byte[][] {hashes[0].getBytes(StandardCharsets.US_ASCII),
        hashes[1].getBytes(StandardCharsets.US_ASCII), hashes[2].getBytes(StandardCharsets.US_ASCII)});
    DigestBatch b = DigestBatch.ofHex(DigestFunction.SHA256, p.hex, p.offsets, p.lengths, sizes, 2, WHAT);
    assertThat(b.size()).isEqualTo(2); // the invalid third one is past n: not looked at
    sizes[0] = 99; // the caller's array is not kept
    assertThat(b.sizeBytes(0)).isEqualTo(1);
    DigestBatch none = DigestBatch.ofHex(DigestFunction.SHA256, new byte[0], new int[0], new int[0],
        new long[0], 0, WHAT);
    assertThat(none.size()).isZero();
  }

  @Test
  void sameHashComparesAllFourWordsAndIgnoresTheSize() {
    String h = "0123456789abcdef".repeat(4);
    String lastWordDiffers = h.substring(0, 63) + "0";
    String firstWordDiffers = "1" + h.substring(1);
    DigestBatch b = ofHex(DigestFunction.SHA256, new String[] {h, h, lastWordDiffers, firstWordDiffers},
        new long[] {5, 6, 5, 5});
    assertThat(b.sameHash(0, 1)).isTrue();
    assertThat(b.sameHash(1, 0)).isTrue();
    assertThat(b.sameHash(0, 0)).isTrue();
    assertThat(b.sameHash(0, 2)).isFalse();
    assertThat(b.sameHash(0, 3)).isFalse();
    assertThat(b.word(0, 0)).isEqualTo(b.word(2, 0));
  }

  /** A batch of good digests with digest {@code bad} replaced, which must fail naming index {@code bad}. */
  private static void assertRejectedAt(DigestFunction f, int bad, byte[] badHash, long badSize) {
    int n = 6;
    Random r = new Random(bad * 31L + badHash.length);
    byte[][] hashes = new byte[n][];
    long[] sizes = new long[n];
    for (int i = 0; i < n; i++) {
      hashes[i] = randomHex(r).getBytes(StandardCharsets.US_ASCII);
      sizes[i] = 1 + r.nextInt(1000);
    }
    hashes[bad] = badHash;
    sizes[bad] = badSize;
    // A second invalid digest after the first: the first is the one named.
    if (bad + 1 < n) {
      hashes[bad + 1] = "zz".getBytes(StandardCharsets.US_ASCII);
    }
    assertThatThrownBy(() -> ofHex(f, hashes, sizes))
        .isInstanceOf(Digest.InvalidDigestException.class)
        .hasMessageStartingWith(WHAT + "[" + bad + "]: ")
        .hasMessageNotContaining(WHAT + "[" + (bad + 1) + "]");
  }

  @ParameterizedTest
  @EnumSource(DigestFunction.class)
  void ofHexRejectsWrongLengthsNamingTheIndex(DigestFunction f) {
    String good = "c".repeat(64);
    for (int bad : new int[] {0, 3, 5}) {
      assertRejectedAt(f, bad, good.substring(1).getBytes(StandardCharsets.US_ASCII), 10); // 63
      assertRejectedAt(f, bad, (good + "c").getBytes(StandardCharsets.US_ASCII), 10); // 65
      assertRejectedAt(f, bad, new byte[0], 10); // 0
      assertRejectedAt(f, bad, "c".repeat(128).getBytes(StandardCharsets.US_ASCII), 10);
      assertRejectedAt(f, bad, new byte[0], 0); // no hash, size 0: still not the empty blob
    }
    assertThatThrownBy(() -> ofHex(f, new String[] {"c".repeat(63)}, new long[] {1}))
        .hasMessageStartingWith("blob_digests[0]: ")
        .hasMessageContaining("c".repeat(63));
  }

  @ParameterizedTest
  @EnumSource(DigestFunction.class)
  void ofHexRejectsCharactersThatAreNotLowercaseHex(DigestFunction f) {
    // Every position class: first and last character, and the first and last of each 16-character word.
    int[] positions = {0, 1, 15, 16, 17, 31, 32, 33, 47, 48, 62, 63};
    int[] badBytes = {'A', 'B', 'F', 'G', 'g', 'z', 'x', ' ', '/', ':', '@', '`', '{', '0' - 1, '9' + 1,
        'a' - 1, 'f' + 1, 0, '\n', '-', '+', 0x7F, 0x80, 0xA0, 0xB0, 0xE1, 0xFF};
    Random r = new Random(11);
    int i = 0;
    for (int pos : positions) {
      for (int c : badBytes) {
        byte[] h = randomHex(r).getBytes(StandardCharsets.US_ASCII);
        h[pos] = (byte) c;
        assertRejectedAt(f, i++ % 6, h, 1 + r.nextInt(100));
      }
    }
    // Uppercase of a valid hash, and a multi-byte UTF-8 character making 64 bytes.
    assertRejectedAt(f, 2, "ABCDEF0123456789".repeat(4).getBytes(StandardCharsets.US_ASCII), 3);
    assertRejectedAt(f, 4, ("é" + "a".repeat(62)).getBytes(StandardCharsets.UTF_8), 3);
    // Upper case of the empty hash with size 0.
    assertRejectedAt(f, 1, f.emptyHash().toUpperCase().getBytes(StandardCharsets.US_ASCII), 0);
    // Each case also fails as a single digest, and the message keeps the usual digest text.
    assertThatThrownBy(() -> ofHex(f, new String[] {"A".repeat(64)}, new long[] {1}))
        .isInstanceOf(Digest.InvalidDigestException.class)
        .hasMessage("blob_digests[0]: invalid " + f.lowerName() + " hash \"" + "A".repeat(64)
            + "\": want 64 lowercase hex characters");
  }

  @ParameterizedTest
  @EnumSource(DigestFunction.class)
  void ofHexRejectsNegativeSizesAndSizeZeroWithANonEmptyHash(DigestFunction f) {
    Random r = new Random(3);
    for (int bad : new int[] {0, 2, 5}) {
      for (long size : new long[] {-1, -2, Long.MIN_VALUE}) {
        assertRejectedAt(f, bad, randomHex(r).getBytes(StandardCharsets.US_ASCII), size);
        // Negative even with the empty hash.
        assertRejectedAt(f, bad, f.emptyHash().getBytes(StandardCharsets.US_ASCII), size);
      }
      assertRejectedAt(f, bad, randomHex(r).getBytes(StandardCharsets.US_ASCII), 0);
      // The other function's empty hash is not this function's empty blob.
      DigestFunction other = f == DigestFunction.SHA256 ? DigestFunction.BLAKE3 : DigestFunction.SHA256;
      assertRejectedAt(f, bad, other.emptyHash().getBytes(StandardCharsets.US_ASCII), 0);
      // One bit off the empty hash, in the last character.
      String e = f.emptyHash();
      String near = e.substring(0, 63) + (e.charAt(63) == '0' ? '1' : '0');
      assertRejectedAt(f, bad, near.getBytes(StandardCharsets.US_ASCII), 0);
    }
    assertThatThrownBy(() -> ofHex(f, new String[] {"d".repeat(64), "d".repeat(64)}, new long[] {1, -7}))
        .isInstanceOf(Digest.InvalidDigestException.class)
        .hasMessage("blob_digests[1]: negative size -7 for " + "d".repeat(64));
    assertThatThrownBy(() -> ofHex(f, new String[] {"d".repeat(64)}, new long[] {0}))
        .isInstanceOf(Digest.InvalidDigestException.class)
        .hasMessage("blob_digests[0]: size 0 with a hash that is not the empty blob's: " + "d".repeat(64));
  }

  @ParameterizedTest
  @EnumSource(DigestFunction.class)
  void theEmptyHashWithSizeZeroIsAcceptedAsTheEmptyBlob(DigestFunction f) {
    DigestBatch b = ofHex(f, new String[] {"e".repeat(64), f.emptyHash(), f.emptyHash()}, new long[] {4, 0, 0});
    assertThat(b.isEmptyBlob(0)).isFalse();
    assertThat(b.isEmptyBlob(1)).isTrue();
    assertThat(b.isEmptyBlob(2)).isTrue();
    assertThat(b.key(1).isEmptyCasBlob()).isTrue();
    assertThat(b.key(1)).isEqualTo(BlobKey.cas(Digest.empty(f)));
    assertThat(b.sameHash(1, 2)).isTrue();
  }

  @Test
  void ofRejectsDigestsOfAnotherFunction() {
    List<Digest> ds = List.of(Digest.of(DigestFunction.SHA256, new byte[] {1}),
        Digest.of(DigestFunction.BLAKE3, new byte[] {1}));
    assertThatThrownBy(() -> DigestBatch.of(DigestFunction.SHA256, ds))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("digest 1");
    assertThat(DigestBatch.of(DigestFunction.BLAKE3, ds.subList(1, 2)).key(0)).isEqualTo(BlobKey.cas(ds.get(1)));
  }

  // ------------------------------------------------------------------------------------------------
  // BlobStore.missingAmong and the default findMissing(DigestBatch)

  @Test
  void missingAmongReportsEveryAskedIndexWhoseKeyIsMissing() {
    DigestFunction f = DigestFunction.SHA256;
    String a = "a".repeat(64);
    String b = "b".repeat(64);
    String c = "c".repeat(64);
    DigestBatch batch = ofHex(f, new String[] {a, b, a, c, b, a}, new long[] {1, 2, 3, 4, 2, 1});
    BlobKey ka = batch.key(0);
    BlobKey kb = batch.key(1);
    assertThat(BlobStore.missingAmong(batch, new int[] {0, 1, 2, 3, 4, 5}, List.of(ka, kb)))
        .containsExactly(0, 1, 2, 4, 5);
    assertThat(BlobStore.missingAmong(batch, new int[] {1, 3, 5}, List.of(ka))).containsExactly(5);
    assertThat(BlobStore.missingAmong(batch, new int[] {0, 1}, List.of())).isEmpty();
    // A key of the other function with the same hex is not the batch's digest.
    assertThat(BlobStore.missingAmong(batch, new int[] {0, 1, 2},
        List.of(new BlobKey(Kind.CAS, DigestFunction.BLAKE3, a), new BlobKey(Kind.AC, f, b)))).isEmpty();
  }

  @Test
  void defaultFindMissingAsksFindMissingOfTheKeysOnce() throws IOException {
    List<Collection<BlobKey>> asked = new ArrayList<>();
    Set<BlobKey> present = new HashSet<>();
    BlobStore store = new BlobStore() {
      @Override
      public Blob get(BlobKey key) {
        throw new AssertionError("not used");
      }

      @Override
      public boolean contains(BlobKey key) {
        return key.isEmptyCasBlob() || present.contains(key);
      }

      @Override
      public List<BlobKey> findMissing(Collection<BlobKey> keys) throws IOException {
        asked.add(List.copyOf(keys));
        return BlobStore.super.findMissing(keys);
      }

      @Override
      public BlobWriter newWriter(BlobKey key, long size) {
        throw new AssertionError("not used");
      }

      @Override
      public StoreStats stats() {
        return new StoreStats(0, 0, 0, 1, 0);
      }
    };
    DigestFunction f = DigestFunction.BLAKE3;
    String a = "a".repeat(64);
    String b = "b".repeat(64);
    DigestBatch batch = ofHex(f, new String[] {a, b, f.emptyHash(), b, a}, new long[] {1, 2, 0, 2, 1});
    present.add(batch.key(0));
    assertThat(store.findMissing(batch)).containsExactly(1, 3);
    assertThat(asked).hasSize(1);
    assertThat(asked.get(0)).containsExactly(batch.key(0), batch.key(1), batch.key(2), batch.key(3), batch.key(4));
    assertThat(store.findMissing(ofHex(f, new String[0], new long[0]))).isEmpty();
  }

  // ------------------------------------------------------------------------------------------------
  // 2. Property: the disk store's override = the default = brute force with contains()

  @ParameterizedTest
  @EnumSource(StorageMode.class)
  void diskOverrideAgreesWithTheDefaultAndWithContains(StorageMode mode) throws IOException {
    DiskStore disk = disk("prop-" + mode, GIB, mode);
    BlobStore plain = new Plain(disk);
    Random r = new Random(20240601L + mode.ordinal());
    // Stored: CAS blobs of both functions, and AC entries (whose hex a CAS batch also asks about).
    List<List<Digest>> stored = List.of(new ArrayList<>(), new ArrayList<>());
    Set<BlobKey> storedKeys = new HashSet<>();
    for (DigestFunction f : DigestFunction.values()) {
      for (int i = 0; i < 40; i++) {
        byte[] c = content(r);
        Digest d = Digest.of(f, c);
        disk.put(BlobKey.cas(d), c);
        stored.get(f.ordinal()).add(d);
        storedKeys.add(BlobKey.cas(d));
      }
    }
    List<String> acHex = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      String h = randomHex(r);
      disk.put(new BlobKey(Kind.AC, DigestFunction.values()[i % 2], h), new byte[] {(byte) i});
      acHex.add(h);
    }
    int checkedMissing = 0;
    int checkedPresent = 0;
    for (int iter = 0; iter < 300; iter++) {
      DigestFunction f = DigestFunction.values()[r.nextInt(2)];
      DigestFunction other = DigestFunction.values()[1 - f.ordinal()];
      int n = r.nextInt(4) == 0 ? r.nextInt(3) : r.nextInt(60);
      List<Digest> ds = new ArrayList<>(n);
      Set<Integer> mustBeMissing = new HashSet<>();
      for (int i = 0; i < n; i++) {
        int kind = r.nextInt(8);
        Digest d;
        switch (kind) {
          case 0, 1 -> { // present
            List<Digest> mine = stored.get(f.ordinal());
            d = mine.get(r.nextInt(mine.size()));
          }
          case 2 -> { // present hash, asked with another size (the store looks hashes up)
            List<Digest> mine = stored.get(f.ordinal());
            d = new Digest(f, mine.get(r.nextInt(mine.size())).hash(), 1 + r.nextInt(5000));
          }
          case 3 -> { // absent
            d = new Digest(f, randomHex(r), 1 + r.nextInt(1 << 20));
            mustBeMissing.add(i);
          }
          case 4 -> { // the other function's stored hash: functions never collide
            List<Digest> theirs = stored.get(other.ordinal());
            Digest o = theirs.get(r.nextInt(theirs.size()));
            d = new Digest(f, o.hash(), o.sizeBytes());
            mustBeMissing.add(i);
          }
          case 5 -> { // an AC entry's hash: kinds never collide
            d = new Digest(f, acHex.get(r.nextInt(acHex.size())), 1 + r.nextInt(100));
            mustBeMissing.add(i);
          }
          case 6 -> d = Digest.empty(f);
          default -> { // a repeat of an earlier digest of this batch (or absent if none)
            if (i == 0) {
              d = new Digest(f, randomHex(r), 7);
              mustBeMissing.add(i);
            } else {
              int j = r.nextInt(i);
              d = ds.get(j);
              if (mustBeMissing.contains(j)) {
                mustBeMissing.add(i);
              }
            }
          }
        }
        ds.add(d);
      }
      DigestBatch batch = DigestBatch.of(f, ds);
      String[] hexes = ds.stream().map(Digest::hash).toArray(String[]::new);
      long[] sizes = ds.stream().mapToLong(Digest::sizeBytes).toArray();
      DigestBatch parsed = ofHex(f, hexes, sizes);

      List<Integer> brute = new ArrayList<>();
      List<Integer> model = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        if (!disk.contains(batch.key(i))) {
          brute.add(i);
        }
        if (!ds.get(i).isEmpty() && !storedKeys.contains(BlobKey.cas(ds.get(i)))) {
          model.add(i);
        }
      }
      int[] expected = brute.stream().mapToInt(Integer::intValue).toArray();
      String why = "iteration " + iter + " " + f + " " + ds;
      assertThat(model).as(why).containsExactlyElementsOf(brute);
      int[] override = disk.findMissing(batch);
      assertThat(override).as(why).containsExactly(expected);
      assertThat(disk.findMissing(parsed)).as(why).containsExactly(expected);
      assertThat(plain.findMissing(batch)).as(why).containsExactly(expected);
      assertThat(plain.findMissing(parsed)).as(why).containsExactly(expected);
      // The Collection answer is the keys at those indexes, in order.
      assertThat(disk.findMissing(batch.keys(allIndexes(n)))).as(why)
          .containsExactlyElementsOf(batch.keys(expected));
      for (int i : mustBeMissing) {
        assertThat(override).as(why + " index " + i).contains(i);
        checkedMissing++;
      }
      for (int i = 0; i < n; i++) {
        if (ds.get(i).isEmpty()) {
          assertThat(override).as(why + " empty at " + i).doesNotContain(i);
          checkedPresent++;
        }
      }
    }
    // The generator did produce the interesting cases.
    assertThat(checkedMissing).isGreaterThan(1000);
    assertThat(checkedPresent).isGreaterThan(100);
  }

  static int[] allIndexes(int n) {
    int[] all = new int[n];
    for (int i = 0; i < n; i++) {
      all[i] = i;
    }
    return all;
  }

  /**
   * A digest of the empty blob's hash with a size other than 0 is a valid {@link Digest}, and its key is
   * the empty CAS blob's: findMissing(Collection) and contains() say present, so the batch override must
   * say so too.
   */
  @ParameterizedTest
  @EnumSource(DigestFunction.class)
  void emptyHashWithANonZeroSizeIsAnsweredAsByFindMissingOfKeys(DigestFunction f) throws IOException {
    DiskStore disk = disk("emptyhash-" + f, GIB, StorageMode.ZSTD);
    DigestBatch batch = ofHex(f, new String[] {f.emptyHash(), "a".repeat(64)}, new long[] {5, 3});
    assertThat(batch.key(0).isEmptyCasBlob()).isTrue();
    assertThat(disk.contains(batch.key(0))).isTrue();
    assertThat(disk.findMissing(List.of(batch.key(0), batch.key(1)))).containsExactly(batch.key(1));
    assertThat(new Plain(disk).findMissing(batch)).containsExactly(1);
    assertThat(disk.findMissing(batch)).containsExactly(1);
  }

  // ------------------------------------------------------------------------------------------------
  // 3. The disk store's batch lookups refresh recency like findMissing(Collection)

  interface Touch {
    void touch(DiskStore s, DigestBatch batch) throws IOException;
  }

  /**
   * Four 1-block CAS blobs a, b, c, d in a 4-block store; {@code touch} runs with a batch naming a (among
   * an absent digest, the empty blob and a repeat of a); then a fifth blob forces one eviction. Returns
   * which of a..d survive.
   */
  private List<Boolean> survivorsAfter(String name, StorageMode mode, Touch touch) throws IOException {
    DiskStore s = disk(name, 4 * B, mode);
    Random r = new Random(99);
    DigestFunction f = DigestFunction.SHA256;
    List<Digest> ds = new ArrayList<>();
    List<byte[]> contents = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      byte[] c = new byte[100];
      r.nextBytes(c);
      contents.add(c);
      ds.add(Digest.of(f, c));
      if (i < 4) {
        s.put(BlobKey.cas(ds.get(i)), c);
      }
    }
    assertThat(s.stats().numFiles()).isEqualTo(4);
    assertThat(s.stats().currentSize()).isEqualTo(4L * B);
    Digest absent = new Digest(f, "1".repeat(64), 10);
    DigestBatch batch = DigestBatch.of(f, List.of(absent, ds.get(0), Digest.empty(f), ds.get(0)));
    touch.touch(s, batch);
    s.put(BlobKey.cas(ds.get(4)), contents.get(4));
    assertThat(s.stats().numFiles()).isEqualTo(4);
    List<BlobKey> missing = s.findMissing(List.of(BlobKey.cas(ds.get(0)), BlobKey.cas(ds.get(1)),
        BlobKey.cas(ds.get(2)), BlobKey.cas(ds.get(3)), BlobKey.cas(ds.get(4))));
    assertThat(missing).hasSize(1);
    List<Boolean> survivors = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      survivors.add(!missing.contains(BlobKey.cas(ds.get(i))));
    }
    return survivors;
  }

  @ParameterizedTest
  @EnumSource(StorageMode.class)
  void batchHitsRefreshRecencyLikeFindMissingOfKeys(StorageMode mode) throws IOException {
    // Untouched, the oldest (a) is evicted.
    assertThat(survivorsAfter("none-" + mode, mode, (s, b) -> {}))
        .containsExactly(false, true, true, true);
    // Asking only about the absent digest and the empty blob touches nothing.
    assertThat(survivorsAfter("absent-" + mode, mode, (s, b) ->
        assertThat(s.findMissing(DigestBatch.of(b.function(), List.of(
            new Digest(b.function(), b.hash(0), b.sizeBytes(0)), Digest.empty(b.function())))))
            .containsExactly(0)))
        .containsExactly(false, true, true, true);
    // findMissing(Collection) hitting a makes it most recent: b goes instead.
    assertThat(survivorsAfter("keys-" + mode, mode, (s, b) ->
        assertThat(s.findMissing(b.keys(allIndexes(b.size())))).containsExactly(b.key(0))))
        .containsExactly(true, false, true, true);
    // So does the batch override.
    assertThat(survivorsAfter("batch-" + mode, mode, (s, b) ->
        assertThat(s.findMissing(b)).containsExactly(0)))
        .containsExactly(true, false, true, true);
  }

  // ------------------------------------------------------------------------------------------------
  // 4. Metered store: one contains hit or miss per digest, as for findMissing(Collection)

  private static final String INCOMING = "bazel_remote_incoming_requests_total";

  /** The value of the incoming requests counter for {@code method="contains", kind="cas", status}. */
  static double containsCas(CacheMetrics m, String status) {
    double v = 0;
    boolean found = false;
    for (String line : m.scrape().split("\n")) {
      if (line.startsWith(INCOMING + "{") && line.contains("method=\"contains\"")
          && line.contains("kind=\"cas\"") && line.contains("status=\"" + status + "\"")) {
        v += Double.parseDouble(line.substring(line.lastIndexOf('}') + 1).trim().split(" ")[0]);
        found = true;
      }
    }
    assertThat(found).as("a " + INCOMING + " sample for contains/cas/" + status).isTrue();
    return v;
  }

  @Test
  void meteredStoreCountsEachDigestOfABatchAsOneContains() throws IOException {
    DiskStore disk = disk("metered", GIB, StorageMode.ZSTD);
    CacheMetrics metrics = new CacheMetrics(CacheMetrics.DEFAULT_DURATION_BUCKETS, false);
    BlobStore metered = metrics.meter(disk);
    DigestFunction f = DigestFunction.SHA256;
    Random r = new Random(5);
    List<Digest> ds = new ArrayList<>();
    for (int i = 0; i < 10; i++) {
      byte[] c = content(r);
      Digest d = Digest.of(f, c);
      ds.add(d);
      if (i % 10 < 7) {
        disk.put(BlobKey.cas(d), c); // 7 present, 3 missing (indexes 7, 8, 9)
      }
    }
    java.util.Collections.shuffle(ds, new Random(6));
    DigestBatch batch = DigestBatch.of(f, ds);
    double hits0 = containsCas(metrics, "hit");
    double misses0 = containsCas(metrics, "miss");
    assertThat(hits0).isZero();
    assertThat(misses0).isZero();

    int[] missing = metered.findMissing(batch);
    assertThat(missing).hasSize(3);
    assertThat(containsCas(metrics, "hit")).isEqualTo(7);
    assertThat(containsCas(metrics, "miss")).isEqualTo(3);

    List<BlobKey> missingKeys = metered.findMissing(batch.keys(allIndexes(10)));
    assertThat(missingKeys).containsExactlyElementsOf(batch.keys(missing));
    assertThat(containsCas(metrics, "hit")).isEqualTo(14);
    assertThat(containsCas(metrics, "miss")).isEqualTo(6);

    // Repeats count each time they are asked, and the empty blob is a hit, in both forms.
    Set<Integer> absentAt = new HashSet<>();
    for (int i : missing) {
      absentAt.add(i);
    }
    int p = 0;
    while (absentAt.contains(p)) {
      p++;
    }
    Digest present = ds.get(p);
    Digest gone = ds.get(missing[0]);
    DigestBatch m = DigestBatch.of(f, List.of(present, gone, present, Digest.empty(f), gone));
    assertThat(metered.findMissing(m)).containsExactly(1, 4);
    assertThat(containsCas(metrics, "hit")).isEqualTo(14 + 3);
    assertThat(containsCas(metrics, "miss")).isEqualTo(6 + 2);
    assertThat(metered.findMissing(m.keys(allIndexes(m.size())))).containsExactly(m.key(1), m.key(4));
    assertThat(containsCas(metrics, "hit")).isEqualTo(14 + 6);
    assertThat(containsCas(metrics, "miss")).isEqualTo(6 + 4);
  }

  @Test
  void meteredStoreCountsNothingWhenTheStoreFails() {
    CacheMetrics metrics = new CacheMetrics(CacheMetrics.DEFAULT_DURATION_BUCKETS, false);
    BlobStore failing = new Plain(null) {
      @Override
      public List<BlobKey> findMissing(Collection<BlobKey> keys) throws IOException {
        throw new IOException("disk on fire");
      }

      @Override
      public boolean contains(BlobKey key) throws IOException {
        throw new IOException("disk on fire");
      }
    };
    BlobStore metered = metrics.meter(failing);
    DigestBatch batch = DigestBatch.of(DigestFunction.SHA256,
        List.of(Digest.of(DigestFunction.SHA256, new byte[] {1})));
    assertThatThrownBy(() -> metered.findMissing(batch)).isInstanceOf(IOException.class);
    assertThat(containsCas(metrics, "hit")).isZero();
    assertThat(containsCas(metrics, "miss")).isZero();
  }
}
