package io.bazelcache.auth;

import at.favre.lib.crypto.bcrypt.BCrypt;
import at.favre.lib.crypto.bcrypt.IllegalBCryptFormatException;
import at.favre.lib.crypto.bcrypt.LongPasswordStrategies;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.commons.codec.digest.Md5Crypt;
import org.apache.commons.codec.digest.Sha2Crypt;

/**
 * The users of an {@code .htpasswd} file as Apache's {@code htpasswd} writes it: one {@code user:hash} per line;
 * blank lines and lines starting with {@code #} are skipped.
 *
 * <p>Accepted hashes: bcrypt ({@code $2y$}, {@code $2a$}, {@code $2b$}; {@code htpasswd -B}), Apache MD5
 * ({@code $apr1$}; {@code htpasswd -m}, the default), SHA-1 ({@code {SHA}}; {@code htpasswd -s}), and the crypt(3)
 * family {@code $1$} (MD5), {@code $5$} (SHA-256, {@code htpasswd -2}) and {@code $6$} (SHA-512, {@code htpasswd
 * -5}). DES crypt ({@code htpasswd -d}) and plain text ({@code htpasswd -p}) are refused when the file is loaded,
 * naming the line: they are weak, and a DES hash cannot be told apart from a plain-text password.
 *
 * <p>Every comparison of computed and stored hash is constant-time. The file is read once; the server must be
 * restarted to pick up changes (as bazel-remote).
 */
public final class Htpasswd {
  private final Path file;
  private final Map<String, Secret> users;

  private Htpasswd(Path file, Map<String, Secret> users) {
    this.file = file;
    this.users = users;
  }

  /** A malformed or unsupported htpasswd file; the message is one line naming the file and line. */
  public static final class FormatException extends IOException {
    FormatException(String message) {
      super(message);
    }
  }

  /**
   * Reads and checks the whole file.
   *
   * @throws FormatException for a line without {@code user:hash}, a duplicate user, or an unsupported hash
   * @throws IOException if the file cannot be read
   */
  public static Htpasswd load(Path file) throws IOException {
    List<String> lines;
    try {
      lines = Files.readAllLines(file, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new IOException("htpasswd_file " + file + ": cannot read: " + e.getMessage(), e);
    }
    Map<String, Secret> users = new HashMap<>();
    for (int i = 0; i < lines.size(); i++) {
      String line = lines.get(i).strip();
      if (line.isEmpty() || line.startsWith("#")) {
        continue;
      }
      String where = "htpasswd_file " + file + " line " + (i + 1) + ": ";
      int colon = line.indexOf(':');
      if (colon <= 0 || colon == line.length() - 1) {
        throw new FormatException(where + "expected user:hash");
      }
      String user = line.substring(0, colon);
      String hash = line.substring(colon + 1);
      Secret secret = parse(hash);
      if (secret == null) {
        throw new FormatException(where + "unsupported password format for user \"" + user
            + "\" (DES crypt or plain text); use bcrypt (htpasswd -B), $apr1$ (htpasswd -m) or {SHA} (htpasswd -s)");
      }
      if (secret instanceof Invalid invalid) {
        throw new FormatException(where + "malformed " + invalid.kind + " hash for user \"" + user + "\"");
      }
      if (users.putIfAbsent(user, secret) != null) {
        throw new FormatException(where + "user \"" + user + "\" is listed twice");
      }
    }
    return new Htpasswd(file, Map.copyOf(users));
  }

  public Path file() {
    return file;
  }

  public Set<String> users() {
    return users.keySet();
  }

  /** Whether {@code password} is {@code user}'s password. Slow for bcrypt by design (its cost factor). */
  public boolean verify(String user, String password) {
    Secret s = users.get(user);
    if (s == null) {
      return false;
    }
    return s.matches(password.getBytes(StandardCharsets.UTF_8));
  }

  /** Whether {@code user}'s entry is bcrypt (expensive to check). */
  boolean isBcrypt(String user) {
    return users.get(user) instanceof Bcrypt;
  }

  // ------------------------------------------------------------------------------------------ hash formats

  private sealed interface Secret permits Bcrypt, Apr1, Sha1, CryptFamily, Invalid {
    boolean matches(byte[] password);
  }

  private static Secret parse(String hash) {
    if (hash.startsWith("$2y$") || hash.startsWith("$2a$") || hash.startsWith("$2b$")) {
      try {
        BCrypt.HashData d = BCrypt.Version.VERSION_2A.parser.parse(hash.getBytes(StandardCharsets.US_ASCII));
        return new Bcrypt(d.version, d.cost, d.rawSalt, d.rawHash);
      } catch (IllegalBCryptFormatException | IllegalArgumentException e) {
        return new Invalid("bcrypt");
      }
    }
    if (hash.startsWith("$apr1$")) {
      return validCrypt(hash, 3) ? new Apr1(hash) : new Invalid("$apr1$");
    }
    if (hash.startsWith("{SHA}")) {
      byte[] digest;
      try {
        digest = Base64.getDecoder().decode(hash.substring(5));
      } catch (IllegalArgumentException e) {
        return new Invalid("{SHA}");
      }
      return digest.length == 20 ? new Sha1(digest) : new Invalid("{SHA}");
    }
    if (hash.startsWith("$1$") || hash.startsWith("$5$") || hash.startsWith("$6$")) {
      return validCrypt(hash, 3) ? new CryptFamily(hash) : new Invalid(hash.substring(0, 3));
    }
    return null;
  }

  /** {@code $id$[rounds=N$]salt$hash} with a non-empty hash part. */
  private static boolean validCrypt(String hash, int minParts) {
    String[] parts = hash.substring(1).split("\\$", -1);
    return parts.length >= minParts && !parts[parts.length - 1].isEmpty();
  }

  private record Bcrypt(BCrypt.Version version, int cost, byte[] salt, byte[] expected) implements Secret {
    @Override
    public boolean matches(byte[] password) {
      // Apache truncates passwords to 72 bytes; hash again with the stored salt and cost, compare the raw hashes.
      BCrypt.HashData got = BCrypt.with(version, LongPasswordStrategies.truncate(version))
          .hashRaw(cost, salt, password);
      return MessageDigest.isEqual(got.rawHash, expected);
    }
  }

  private record Apr1(String stored) implements Secret {
    @Override
    public boolean matches(byte[] password) {
      String computed = Md5Crypt.apr1Crypt(password, stored);
      return MessageDigest.isEqual(computed.getBytes(StandardCharsets.US_ASCII),
          stored.getBytes(StandardCharsets.US_ASCII));
    }
  }

  private record Sha1(byte[] expected) implements Secret {
    @Override
    public boolean matches(byte[] password) {
      try {
        return MessageDigest.isEqual(MessageDigest.getInstance("SHA-1").digest(password), expected);
      } catch (NoSuchAlgorithmException e) {
        throw new IllegalStateException(e);
      }
    }
  }

  private record CryptFamily(String stored) implements Secret {
    @Override
    public boolean matches(byte[] password) {
      String computed;
      try {
        if (stored.startsWith("$1$")) {
          computed = Md5Crypt.md5Crypt(password, stored);
        } else if (stored.startsWith("$5$")) {
          computed = Sha2Crypt.sha256Crypt(password, stored);
        } else {
          computed = Sha2Crypt.sha512Crypt(password, stored);
        }
      } catch (IllegalArgumentException e) {
        return false;
      }
      return MessageDigest.isEqual(computed.getBytes(StandardCharsets.US_ASCII),
          stored.getBytes(StandardCharsets.US_ASCII));
    }
  }

  private record Invalid(String kind) implements Secret {
    @Override
    public boolean matches(byte[] password) {
      return false;
    }
  }
}
