package io.bazelcache.asset;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.Kind;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.concurrent.locks.ReentrantLock;

/**
 * What the Remote Asset services and {@code bazel-cache assets} remember, kept in the {@link BlobStore}
 * itself (kind RAW, SHA-256 keys derived from fixed prefixes) so that it is as durable as the cache,
 * survives restarts, and is shared by every replica on the same S3 bucket:
 *
 * <ul>
 *   <li><b>Request records</b>: one per (instance, digest function, URI, qualifiers other than the
 *       {@code http_header*} ones), keyed by the SHA-256 of that canonical text; the value (JSON) names the
 *       CAS blob and when it was fetched or pushed. A request with several URIs is looked up URI by URI.
 *   <li><b>Checksum index</b>: for checksums that are not the CAS key itself (sha384/sha512, or sha256
 *       when the digest function is BLAKE3), the SRI maps to the CAS digest.
 *   <li><b>Asset list</b>: the blobs fetched, pushed or imported, for {@code assets export}, in 16 shards
 *       (by the first hex digit of the content hash), each a JSON list rewritten on change.
 * </ul>
 *
 * <p>Records point at CAS blobs and are only trusted as far as the CAS is: a record whose blob is gone is a
 * miss, and a blob is served only after the CAS verified it against its digest.
 *
 * <p>Limitation: the shards are read-modify-write. Within one process updates are serialized; two replicas
 * adding to the same shard at the same moment can lose one addition to the list (never a request record).
 */
public final class AssetIndex {
  static final int SHARDS = 16;
  private static final ObjectMapper JSON = new ObjectMapper()
      .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);
  private static final HexFormat HEX = HexFormat.of();

  /** A request record: {@code uri} + {@code qualifiers} (without headers) fetched or pushed as a blob. */
  public record Record(String digestFunction, String hash, long size, long fetchedAtMillis, String uri,
      SortedMap<String, String> qualifiers) {
    public Digest digest() {
      return new Digest(DigestFunction.fromName(digestFunction), hash, size);
    }
  }

  /**
   * One entry of the asset list: a CAS blob, a file name hint (last URI segment or distdir name), and the
   * SHA-256 (hex) of a Bazel canonical id it was fetched with ("" if none): Bazel's repository cache only
   * uses an entry for a download with a canonical id if the file {@code id-<that hash>} sits next to it.
   */
  public record Entry(String digestFunction, String hash, long size, String name, String canonicalIdHash) {
    public Digest digest() {
      return new Digest(DigestFunction.fromName(digestFunction), hash, size);
    }

    /** {@link #canonicalIdHash}, "" when absent (also in entries written before it existed). */
    public String idHash() {
      return canonicalIdHash == null ? "" : canonicalIdHash;
    }

    static Entry of(Digest d, String name) {
      return of(d, name, "");
    }

    static Entry of(Digest d, String name, String canonicalIdHash) {
      return new Entry(d.function().name(), d.hash(), d.sizeBytes(), name == null ? "" : name,
          canonicalIdHash == null ? "" : canonicalIdHash);
    }
  }

  /** The hash Bazel names a canonical id's marker file with ({@code id-<sha256 hex of the id>}). */
  public static String canonicalIdHash(String canonicalId) {
    return canonicalId == null || canonicalId.isEmpty() ? ""
        : DigestFunction.SHA256.hexOf(canonicalId.getBytes(StandardCharsets.UTF_8));
  }

  private final BlobStore store;
  private final ReentrantLock[] shardLocks = new ReentrantLock[SHARDS];

  public AssetIndex(BlobStore store) {
    this.store = store;
    for (int i = 0; i < SHARDS; i++) {
      shardLocks[i] = new ReentrantLock();
    }
  }

  public BlobStore store() {
    return store;
  }

  /** Qualifiers that are part of a request's identity: all but the HTTP header ones (credentials). */
  static SortedMap<String, String> identityQualifiers(Map<String, String> qualifiers) {
    SortedMap<String, String> out = new TreeMap<>();
    qualifiers.forEach((k, v) -> {
      if (!k.startsWith("http_header:") && !k.startsWith("http_header_url:")) {
        out.put(k, v);
      }
    });
    return out;
  }

  static BlobKey recordKey(String instance, DigestFunction fn, String uri, Map<String, String> qualifiers) {
    StringBuilder sb = new StringBuilder("bazel-cache/asset-record/v1\n")
        .append(instance).append('\n').append(fn.name()).append('\n').append(uri).append('\n');
    identityQualifiers(qualifiers).forEach((k, v) -> sb.append(k).append('=').append(v).append('\n'));
    return rawKey(sb.toString());
  }

  static BlobKey sriKey(DigestFunction fn, Sri sri) {
    return rawKey("bazel-cache/asset-sri/v1\n" + fn.name() + "\n" + sri);
  }

  static BlobKey shardKey(int shard) {
    return rawKey("bazel-cache/asset-list/v1\n" + shard);
  }

  private static BlobKey rawKey(String text) {
    return new BlobKey(Kind.RAW, DigestFunction.SHA256,
        DigestFunction.SHA256.hexOf(text.getBytes(StandardCharsets.UTF_8)));
  }

  // ---- request records ----------------------------------------------------------------------------

  public Record record(String instance, DigestFunction fn, String uri, Map<String, String> qualifiers)
      throws IOException {
    byte[] b = read(recordKey(instance, fn, uri, qualifiers));
    if (b == null) {
      return null;
    }
    try {
      return JSON.readValue(b, Record.class);
    } catch (IOException | RuntimeException e) {
      return null; // unreadable record: a miss (it will be rewritten by the next fetch)
    }
  }

  public void putRecord(String instance, Digest digest, String uri, Map<String, String> qualifiers,
      long fetchedAtMillis) throws IOException {
    Record r = new Record(digest.function().name(), digest.hash(), digest.sizeBytes(), fetchedAtMillis, uri,
        identityQualifiers(qualifiers));
    store.put(recordKey(instance, digest.function(), uri, qualifiers), JSON.writeValueAsBytes(r));
  }

  // ---- checksum index -----------------------------------------------------------------------------

  /** The CAS digest (of digest function {@code fn}) indexed under {@code sri}, or null. */
  public Digest bySri(DigestFunction fn, Sri sri) throws IOException {
    if (fn == DigestFunction.SHA256 && sri.algorithm() == Sri.Algorithm.SHA256) {
      return casDigest(new BlobKey(Kind.CAS, fn, sri.hex()));
    }
    byte[] b = read(sriKey(fn, sri));
    if (b == null) {
      return null;
    }
    try {
      Entry e = JSON.readValue(b, Entry.class);
      return e.digest();
    } catch (IOException | RuntimeException e) {
      return null;
    }
  }

  public void putSri(Digest digest, Sri sri) throws IOException {
    if (digest.function() == DigestFunction.SHA256 && sri.algorithm() == Sri.Algorithm.SHA256) {
      return; // the CAS key itself
    }
    store.put(sriKey(digest.function(), sri), JSON.writeValueAsBytes(Entry.of(digest, "")));
  }

  /** The digest of the CAS blob {@code key} if it is present (its size read from the store), else null. */
  public Digest casDigest(BlobKey key) throws IOException {
    if (key.isEmptyCasBlob()) {
      return Digest.empty(key.function());
    }
    try (Blob b = store.get(key)) {
      return b == null ? null : new Digest(key.function(), key.hash(), b.size());
    }
  }

  // ---- asset list ---------------------------------------------------------------------------------

  /** Adds entries to the asset list (idempotent: an entry already listed is not repeated). */
  public void addAll(Collection<Entry> entries) throws IOException {
    Map<Integer, List<Entry>> byShard = new TreeMap<>();
    for (Entry e : entries) {
      byShard.computeIfAbsent(shardOf(e.hash()), k -> new ArrayList<>()).add(e);
    }
    for (Map.Entry<Integer, List<Entry>> s : byShard.entrySet()) {
      ReentrantLock lock = shardLocks[s.getKey()];
      lock.lock();
      try {
        Map<String, Entry> merged = new LinkedHashMap<>();
        for (Entry e : readShard(s.getKey())) {
          merged.put(identity(e), e);
        }
        boolean changed = false;
        for (Entry e : s.getValue()) {
          changed |= merged.putIfAbsent(identity(e), e) == null;
        }
        if (changed) {
          store.put(shardKey(s.getKey()), JSON.writeValueAsBytes(new ArrayList<>(merged.values())));
        }
      } finally {
        lock.unlock();
      }
    }
  }

  public void add(Digest digest, String name) throws IOException {
    addAll(List.of(Entry.of(digest, name)));
  }

  public void add(Digest digest, String name, String canonicalIdHash) throws IOException {
    addAll(List.of(Entry.of(digest, name, canonicalIdHash)));
  }

  /** Every entry of the asset list (whether or not its blob is still in the CAS). */
  public List<Entry> list() throws IOException {
    List<Entry> all = new ArrayList<>();
    for (int i = 0; i < SHARDS; i++) {
      all.addAll(readShard(i));
    }
    return all;
  }

  private List<Entry> readShard(int shard) throws IOException {
    byte[] b = read(shardKey(shard));
    if (b == null) {
      return List.of();
    }
    try {
      return JSON.readValue(b, new TypeReference<List<Entry>>() {});
    } catch (IOException | RuntimeException e) {
      throw new IOException("asset list shard " + shard + " is unreadable: " + e.getMessage(), e);
    }
  }

  private static String identity(Entry e) {
    return e.digestFunction() + "/" + e.hash() + "/" + e.name() + "/" + e.idHash();
  }

  private static int shardOf(String hash) {
    return Character.digit(hash.charAt(0), 16) % SHARDS;
  }

  private byte[] read(BlobKey key) throws IOException {
    try (Blob b = store.get(key)) {
      return b == null ? null : b.readAllBytes();
    }
  }

  static String hex(byte[] b) {
    return HEX.formatHex(b);
  }
}
