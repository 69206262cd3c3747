package io.bazelcache.asset;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;

/**
 * One Subresource Integrity hash ({@code sha256-<base64>}), as found in the {@code checksum.sri}
 * qualifier.
 *
 * <p>Matching follows the W3C SRI rules that the Remote Asset API's {@code checksum.sri} refers to: a
 * value is a space-separated list; only the entries of the <em>strongest</em> algorithm given count, and
 * content matches when it hashes to any one of them. We support sha256, sha384 and sha512. An entry of an
 * algorithm we do not know is skipped as the SRI spec says, but a qualifier with no supported entry at all
 * is rejected (we could not ensure that content matches it), as is a malformed entry.
 */
public record Sri(Algorithm algorithm, byte[] hash) {

  /** The supported algorithms, weakest first. */
  public enum Algorithm {
    SHA256("sha256", "SHA-256", 32),
    SHA384("sha384", "SHA-384", 48),
    SHA512("sha512", "SHA-512", 64);

    final String prefix;
    final String jcaName;
    final int length;

    Algorithm(String prefix, String jcaName, int length) {
      this.prefix = prefix;
      this.jcaName = jcaName;
      this.length = length;
    }

    public String prefix() {
      return prefix;
    }

    public MessageDigest newDigest() {
      try {
        return MessageDigest.getInstance(jcaName);
      } catch (NoSuchAlgorithmException e) {
        throw new IllegalStateException(e);
      }
    }
  }

  /** Parses one entry; null for a well-formed entry of an unknown algorithm (e.g. {@code md5-...}). */
  static Sri parseOne(String entry) {
    int dash = entry.indexOf('-');
    if (dash <= 0) {
      throw new IllegalArgumentException("checksum.sri: \"" + entry + "\" is not ALGORITHM-BASE64");
    }
    String alg = entry.substring(0, dash).toLowerCase(Locale.ROOT);
    String value = entry.substring(dash + 1);
    int opt = value.indexOf('?'); // SRI options are allowed after '?'; they carry no hash
    if (opt >= 0) {
      value = value.substring(0, opt);
    }
    Algorithm a = null;
    for (Algorithm x : Algorithm.values()) {
      if (x.prefix.equals(alg)) {
        a = x;
      }
    }
    if (a == null) {
      return null;
    }
    byte[] hash;
    try {
      hash = Base64.getDecoder().decode(value);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("checksum.sri: \"" + entry + "\" has invalid base64");
    }
    if (hash.length != a.length) {
      throw new IllegalArgumentException("checksum.sri: \"" + entry + "\" is not a " + alg + " hash ("
          + hash.length + " bytes)");
    }
    return new Sri(a, hash);
  }

  /**
   * The entries that content must match one of: those of the strongest supported algorithm in
   * {@code value}.
   *
   * @throws IllegalArgumentException if an entry is malformed or no entry has a supported algorithm
   */
  public static List<Sri> parseStrongest(String value) {
    List<Sri> all = new ArrayList<>();
    for (String part : value.trim().split("\\s+")) {
      if (part.isEmpty()) {
        continue;
      }
      Sri s = parseOne(part);
      if (s != null) {
        all.add(s);
      }
    }
    if (all.isEmpty()) {
      throw new IllegalArgumentException("checksum.sri: \"" + value
          + "\" has no sha256, sha384 or sha512 hash, so content cannot be verified");
    }
    Algorithm strongest = all.stream().map(Sri::algorithm).max(Enum::compareTo).orElseThrow();
    return all.stream().filter(s -> s.algorithm == strongest).toList();
  }

  public static Sri of(Algorithm algorithm, byte[] hash) {
    return new Sri(algorithm, hash.clone());
  }

  public String hex() {
    return HexFormat.of().formatHex(hash);
  }

  @Override
  public String toString() {
    return algorithm.prefix + "-" + Base64.getEncoder().encodeToString(hash);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Sri s && s.algorithm == algorithm && MessageDigest.isEqual(s.hash, hash);
  }

  @Override
  public int hashCode() {
    return algorithm.hashCode() * 31 + java.util.Arrays.hashCode(hash);
  }
}
