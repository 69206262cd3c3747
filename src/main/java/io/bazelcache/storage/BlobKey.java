package io.bazelcache.storage;

import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;

/**
 * The address of an entry: namespace, digest function and hex hash. For CAS the hash is the content's;
 * for AC and RAW it is the action's, and the stored value has a size of its own. Entries of different
 * digest functions never share storage, even when their hex strings are equal.
 */
public record BlobKey(Kind kind, DigestFunction function, String hash) {

  public BlobKey {
    if (kind == null || function == null) {
      throw new IllegalArgumentException("kind and function are required");
    }
    if (!Digest.isValidHex(hash)) {
      throw new Digest.InvalidDigestException("invalid hash \"" + hash + "\"");
    }
  }

  public static BlobKey cas(Digest digest) {
    return new BlobKey(Kind.CAS, digest.function(), digest.hash());
  }

  public static BlobKey ac(Digest actionDigest) {
    return new BlobKey(Kind.AC, actionDigest.function(), actionDigest.hash());
  }

  /** True for the CAS entry of the empty blob, which always exists and is never stored. */
  public boolean isEmptyCasBlob() {
    return kind == Kind.CAS && hash.equals(function.emptyHash());
  }

  @Override
  public String toString() {
    return kind.dirName() + "/" + function.lowerName() + "/" + hash;
  }
}
