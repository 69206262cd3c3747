package io.bazelcache.http;

import io.bazelcache.digest.Digest;
import java.io.ByteArrayOutputStream;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * A request target of the HTTP cache: {@code [/instance/...]/ac/<hash>} or {@code .../cas/<hash>}, the form
 * bazel-remote accepts (bazel-remote matches the decoded path against an optional prefix, then {@code ac/} or {@code cas/}, then 64
 * lowercase hex characters). The hash is the only part
 * that ever names storage, and only after validation as 64 lowercase hex characters; the instance (any prefix) is
 * kept as a string for AC key mangling and never reaches a file system.
 *
 * <p>Stricter than bazel-remote: percent-escapes must be well formed UTF-8, and control characters, backslashes and
 * {@code .}/{@code ..} segments are refused anywhere in the path.
 */
record CachePath(Area area, String instance, String hash) {

  enum Area {
    AC,
    CAS
  }

  /** What a request target designates. */
  sealed interface Target permits Cache, Status, Unknown {}

  record Cache(CachePath path) implements Target {}

  record Status() implements Target {}

  record Unknown(String path) implements Target {}

  /** A target that can never be served: HTTP 400 with {@link #getMessage()}. */
  static final class BadPathException extends Exception {
    BadPathException(String message) {
      super(message, null, false, false);
    }
  }

  /**
   * Classifies a request target (origin form, or absolute form whose scheme and authority are dropped; the query is
   * ignored). Paths that try to be cache paths but are malformed, and paths that are unsafe, are rejected.
   */
  static Target parse(String uri) throws BadPathException {
    String raw = uri;
    if (raw.startsWith("http://") || raw.startsWith("https://")) {
      int slash = raw.indexOf('/', raw.indexOf("//") + 2);
      raw = slash < 0 ? "/" : raw.substring(slash);
    }
    int q = raw.indexOf('?');
    if (q >= 0) {
      raw = raw.substring(0, q);
    }
    int hashMark = raw.indexOf('#');
    if (hashMark >= 0) {
      raw = raw.substring(0, hashMark);
    }
    if (!raw.startsWith("/")) {
      throw new BadPathException("request target must be an absolute path");
    }
    String path = decode(raw);
    for (int i = 0; i < path.length(); i++) {
      char c = path.charAt(i);
      if (c < 0x20 || c == 0x7f || c == '\\') {
        throw new BadPathException("path contains a forbidden character");
      }
    }
    String[] segments = path.substring(1).split("/", -1);
    for (String s : segments) {
      if (s.equals(".") || s.equals("..")) {
        throw new BadPathException("path contains a dot segment");
      }
    }
    if (path.equals("/status")) {
      return new Status();
    }
    int n = segments.length;
    if (n >= 2 && (segments[n - 2].equals("ac") || segments[n - 2].equals("cas"))) {
      String hash = segments[n - 1];
      if (!Digest.isValidHex(hash)) {
        throw new BadPathException(
            "resource name must be a SHA256 hash in hex (64 lowercase characters), got '" + abbreviate(hash) + "'");
      }
      // Everything before "<area>/<hash>", minus the leading slash and one trailing slash, as bazel-remote does.
      String prefix = path.substring(1, path.length() - segments[n - 2].length() - hash.length() - 1);
      String instance = prefix.endsWith("/") ? prefix.substring(0, prefix.length() - 1) : prefix;
      Area area = segments[n - 2].equals("ac") ? Area.AC : Area.CAS;
      return new Cache(new CachePath(area, instance, hash));
    }
    for (String s : segments) {
      if (s.equals("ac") || s.equals("cas")) {
        throw new BadPathException("the path is invalid, expected [instance/](ac|cas)/<sha256>");
      }
    }
    return new Unknown(path);
  }

  /**
   * The storage hash of an AC entry under {@code instance}: unchanged for the empty instance, otherwise
   * {@code hex(sha256(utf8(hash) ++ utf8(instance)))} with no separator (bazel-remote's TransformActionCacheKey).
   */
  static String mangleAcHash(String hash, String instance) {
    if (instance.isEmpty()) {
      return hash;
    }
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      md.update(hash.getBytes(StandardCharsets.UTF_8));
      md.update(instance.getBytes(StandardCharsets.UTF_8));
      return HexFormat.of().formatHex(md.digest());
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static String decode(String raw) throws BadPathException {
    ByteArrayOutputStream out = new ByteArrayOutputStream(raw.length());
    for (int i = 0; i < raw.length(); i++) {
      char c = raw.charAt(i);
      if (c == '%') {
        if (i + 2 >= raw.length()) {
          throw new BadPathException("truncated percent-escape in path");
        }
        int hi = Character.digit(raw.charAt(i + 1), 16);
        int lo = Character.digit(raw.charAt(i + 2), 16);
        if (hi < 0 || lo < 0) {
          throw new BadPathException("malformed percent-escape in path");
        }
        out.write(hi << 4 | lo);
        i += 2;
      } else if (c <= 0xff) {
        out.write(c); // the decoder hands over request-line bytes as ISO-8859-1 characters
      } else {
        throw new BadPathException("path contains a non-byte character");
      }
    }
    try {
      return StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(ByteBuffer.wrap(out.toByteArray()))
          .toString();
    } catch (CharacterCodingException e) {
      throw new BadPathException("path is not valid UTF-8");
    }
  }

  private static String abbreviate(String s) {
    String t = s.length() > 80 ? s.substring(0, 80) + "..." : s;
    StringBuilder sb = new StringBuilder(t.length());
    for (int i = 0; i < t.length(); i++) {
      char c = t.charAt(i);
      sb.append(c >= 0x20 && c < 0x7f ? c : '?');
    }
    return sb.toString();
  }
}
