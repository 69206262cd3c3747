package io.bazelcache.digest;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Locale;

/**
 * The digest functions bazel-cache serves. Numbers are REAPI's {@code DigestFunction.Value}; names are
 * the lowercase forms used in ByteStream resource names and on disk.
 */
public enum DigestFunction {
  SHA256(1, "sha256"),
  BLAKE3(9, "blake3");

  /** Every supported function produces 32-byte hashes (64 lowercase hex characters). */
  public static final int HASH_BYTES = 32;

  public static final int HEX_LENGTH = HASH_BYTES * 2;

  private final int protoNumber;
  private final String lowerName;
  private final String emptyHash;

  DigestFunction(int protoNumber, String lowerName) {
    this.protoNumber = protoNumber;
    this.lowerName = lowerName;
    this.emptyHash = HexFormat.of().formatHex(hashOf(new byte[0]));
  }

  /** REAPI {@code DigestFunction.Value} number. */
  public int protoNumber() {
    return protoNumber;
  }

  /** Lowercase name, as in ByteStream resource names ({@code blake3}) and directory names. */
  public String lowerName() {
    return lowerName;
  }

  /** Hex hash of the empty blob, which every server must treat as always present. */
  public String emptyHash() {
    return emptyHash;
  }

  public Hasher newHasher() {
    return switch (this) {
      case SHA256 -> new Hasher.Sha256(newSha256());
      case BLAKE3 -> new Hasher.Blake3Hasher();
    };
  }

  public byte[] hashOf(byte[] data) {
    Hasher h = newHasher();
    h.update(data, 0, data.length);
    return h.finish();
  }

  public String hexOf(byte[] data) {
    return HexFormat.of().formatHex(hashOf(data));
  }

  /** The function for a REAPI {@code DigestFunction.Value}; UNKNOWN (0) means SHA-256. */
  public static DigestFunction fromProtoNumber(int number) {
    if (number == 0) {
      return SHA256;
    }
    for (DigestFunction f : values()) {
      if (f.protoNumber == number) {
        return f;
      }
    }
    throw new UnsupportedDigestFunctionException("unsupported digest function number " + number);
  }

  /** The function named {@code name} (case-insensitive, e.g. "blake3"). */
  public static DigestFunction fromName(String name) {
    for (DigestFunction f : values()) {
      if (f.lowerName.equals(name.toLowerCase(Locale.ROOT))) {
        return f;
      }
    }
    throw new UnsupportedDigestFunctionException("unsupported digest function \"" + name + "\"");
  }

  private static MessageDigest newSha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is part of every JDK", e);
    }
  }

  /** Thrown for a digest function this server does not implement. */
  public static final class UnsupportedDigestFunctionException extends IllegalArgumentException {
    public UnsupportedDigestFunctionException(String message) {
      super(message);
    }
  }
}
