package io.bazelcache.storage;

import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import java.util.Objects;

/**
 * The address of an entry: namespace, digest function and hex hash. For CAS the hash is the content's;
 * for AC and RAW it is the action's, and the stored value has a size of its own. Entries of different
 * digest functions never share storage, even when their hex strings are equal.
 *
 * <p>A value class rather than a record so that keys made from an already validated {@link Digest} skip
 * a second validation of the hash (FindMissingBlobs builds thousands per call).
 */
public final class BlobKey {
  private final Kind kind;
  private final DigestFunction function;
  private final String hash;

  /** Validates {@code hash}: 64 lowercase hex characters. */
  public BlobKey(Kind kind, DigestFunction function, String hash) {
    this(kind, function, hash, false);
    if (!Digest.isValidHex(hash)) {
      throw new Digest.InvalidDigestException("invalid hash \"" + hash + "\"");
    }
  }

  private BlobKey(Kind kind, DigestFunction function, String hash, boolean alreadyValidated) {
    if (kind == null || function == null) {
      throw new IllegalArgumentException("kind and function are required");
    }
    this.kind = kind;
    this.function = function;
    this.hash = hash;
  }

  public static BlobKey cas(Digest digest) {
    return new BlobKey(Kind.CAS, digest.function(), digest.hash(), true);
  }

  public static BlobKey ac(Digest actionDigest) {
    return new BlobKey(Kind.AC, actionDigest.function(), actionDigest.hash(), true);
  }

  public Kind kind() {
    return kind;
  }

  public DigestFunction function() {
    return function;
  }

  public String hash() {
    return hash;
  }

  /** True for the CAS entry of the empty blob, which always exists and is never stored. */
  public boolean isEmptyCasBlob() {
    return kind == Kind.CAS && hash.equals(function.emptyHash());
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof BlobKey k && kind == k.kind && function == k.function && hash.equals(k.hash);
  }

  @Override
  public int hashCode() {
    // No varargs array (Objects.hash): FindMissingBlobs hashes thousands of keys per call.
    return (kind.ordinal() * 31 + function.ordinal()) * 31 + hash.hashCode();
  }

  @Override
  public String toString() {
    return kind.dirName() + "/" + function.lowerName() + "/" + hash;
  }
}
