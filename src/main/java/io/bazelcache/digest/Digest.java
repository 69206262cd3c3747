package io.bazelcache.digest;

import java.util.HexFormat;

/**
 * A content digest: function, lowercase hex hash and size in bytes. Construction validates the form,
 * so a {@code Digest} that exists is well formed (it says nothing about whether content matches).
 */
public record Digest(DigestFunction function, String hash, long sizeBytes) {

  public Digest {
    if (function == null) {
      throw new InvalidDigestException("missing digest function");
    }
    if (!isValidHex(hash)) {
      throw new InvalidDigestException(
          "invalid " + function.lowerName() + " hash \"" + abbreviate(hash) + "\": want "
              + DigestFunction.HEX_LENGTH + " lowercase hex characters");
    }
    if (sizeBytes < 0) {
      throw new InvalidDigestException("negative size " + sizeBytes + " for " + hash);
    }
    if (sizeBytes == 0 && !hash.equals(function.emptyHash())) {
      throw new InvalidDigestException("size 0 with a hash that is not the empty blob's: " + hash);
    }
  }

  public static Digest of(DigestFunction function, byte[] data) {
    return new Digest(function, function.hexOf(data), data.length);
  }

  public static Digest empty(DigestFunction function) {
    return new Digest(function, function.emptyHash(), 0);
  }

  public boolean isEmpty() {
    return sizeBytes == 0;
  }

  public byte[] hashBytes() {
    return HexFormat.of().parseHex(hash);
  }

  /** True for exactly 64 lowercase hex characters. */
  public static boolean isValidHex(String hash) {
    if (hash == null || hash.length() != DigestFunction.HEX_LENGTH) {
      return false;
    }
    // Branch-free over a constant trip count: this runs twice per digest on every FindMissingBlobs item.
    int bad = 0;
    for (int i = 0; i < DigestFunction.HEX_LENGTH; i++) {
      int c = hash.charAt(i);
      int digit = (c - '0') | ('9' - c);
      int lower = (c - 'a') | ('f' - c);
      bad |= digit & lower; // negative unless c is in '0'..'9' or 'a'..'f'
    }
    return bad >= 0;
  }

  private static String abbreviate(String s) {
    if (s == null) {
      return "null";
    }
    return s.length() > 80 ? s.substring(0, 80) + "..." : s;
  }

  @Override
  public String toString() {
    return function.lowerName() + ":" + hash + "/" + sizeBytes;
  }

  /** A malformed digest from a client: maps to HTTP 400 / gRPC INVALID_ARGUMENT. */
  public static final class InvalidDigestException extends IllegalArgumentException {
    public InvalidDigestException(String message) {
      super(message);
    }
  }
}
