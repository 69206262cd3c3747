package io.bazelcache.grpc;

import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * A parsed ByteStream resource name (REAPI v2 "ByteStream API" section):
 *
 * <pre>
 * {instance}/blobs/{digest_function/}{hash}/{size}                                   (Read)
 * {instance}/compressed-blobs/{compressor}/{digest_function/}{hash}/{size}           (Read)
 * {instance}/uploads/{uuid}/blobs/{digest_function/}{hash}/{size}{/metadata...}      (Write)
 * {instance}/uploads/{uuid}/compressed-blobs/{compressor}/{digest_function/}{hash}/{size}{/metadata...}
 * </pre>
 *
 * <p>The instance name is zero or more segments, none of them a reserved word. The digest-function
 * segment is present for functions whose hashes cannot be told apart by length (here: {@code blake3});
 * without it the function is SHA-256, the only other function served. {@code sha256} given explicitly is
 * accepted too. The only compressor is {@code zstd}. Anything else is an {@link InvalidResourceNameException}
 * (INVALID_ARGUMENT).
 *
 * @param instanceName the instance segments joined with '/', possibly empty
 * @param uploadId the {uuid} segment of an upload name, or null for a read name
 * @param compressed true for {@code compressed-blobs/zstd}
 * @param digest the blob's digest (function, hash, uncompressed size)
 */
public record ResourceName(String instanceName, String uploadId, boolean compressed, Digest digest) {

  /** Segment words the spec reserves; none may appear in an instance name. */
  static final Set<String> RESERVED =
      Set.of("blobs", "uploads", "actions", "actionResults", "operations", "capabilities",
          "compressed-blobs");

  public static ResourceName parseRead(String name) {
    return parse(name, false);
  }

  public static ResourceName parseWrite(String name) {
    return parse(name, true);
  }

  private static ResourceName parse(String name, boolean upload) {
    if (name == null || name.isEmpty()) {
      throw new InvalidResourceNameException("empty resource name");
    }
    List<String> seg = Arrays.asList(name.split("/", -1));
    int i = 0;
    while (i < seg.size() && !isBlobKeyword(seg.get(i)) && !seg.get(i).equals("uploads")) {
      String s = seg.get(i);
      if (s.isEmpty() || RESERVED.contains(s)) {
        throw bad(name, "bad instance name segment \"" + s + "\"");
      }
      i++;
    }
    if (i == seg.size()) {
      throw bad(name, "no blobs/, compressed-blobs/ or uploads/ segment");
    }
    String instance = String.join("/", seg.subList(0, i));
    String uploadId = null;
    if (upload) {
      if (!seg.get(i).equals("uploads")) {
        throw bad(name, "a write needs {instance}/uploads/{uuid}/...");
      }
      if (i + 1 >= seg.size() || seg.get(i + 1).isEmpty() || RESERVED.contains(seg.get(i + 1))) {
        throw bad(name, "missing upload id after uploads/");
      }
      uploadId = seg.get(i + 1);
      i += 2;
      if (i >= seg.size() || !isBlobKeyword(seg.get(i))) {
        throw bad(name, "expected blobs/ or compressed-blobs/ after the upload id");
      }
    } else if (!isBlobKeyword(seg.get(i))) {
      throw bad(name, "a read needs {instance}/blobs/... or {instance}/compressed-blobs/...");
    }
    boolean compressed = seg.get(i).equals("compressed-blobs");
    i++;
    if (compressed) {
      if (i >= seg.size()) {
        throw bad(name, "missing compressor");
      }
      String compressor = seg.get(i);
      if (!compressor.equals("zstd")) {
        throw bad(name, "unsupported compressor \"" + compressor + "\" (only zstd)");
      }
      i++;
    }
    // Optional digest-function segment: present iff this segment is not itself a hash.
    DigestFunction function = DigestFunction.SHA256;
    if (i < seg.size() && !looksLikeHex(seg.get(i))) {
      try {
        function = DigestFunction.fromName(seg.get(i));
      } catch (IllegalArgumentException e) {
        throw bad(name, "unsupported digest function \"" + seg.get(i) + "\"");
      }
      i++;
    }
    if (i + 2 > seg.size()) {
      throw bad(name, "missing {hash}/{size}");
    }
    String hash = seg.get(i);
    if (hash.length() != DigestFunction.HEX_LENGTH) {
      throw bad(name, "hash of " + hash.length() + " characters (digest function not supported)");
    }
    long size = parseSize(name, seg.get(i + 1));
    i += 2;
    if (i < seg.size() && !upload) {
      throw bad(name, "trailing segments after {hash}/{size}");
    }
    // Upload names may carry optional metadata segments after the size; they are ignored.
    Digest digest;
    try {
      digest = new Digest(function, hash, size);
    } catch (IllegalArgumentException e) {
      throw bad(name, e.getMessage());
    }
    return new ResourceName(instance, uploadId, compressed, digest);
  }

  private static boolean isBlobKeyword(String s) {
    return s.equals("blobs") || s.equals("compressed-blobs");
  }

  private static boolean looksLikeHex(String s) {
    if (s.isEmpty()) {
      return false;
    }
    for (int k = 0; k < s.length(); k++) {
      char c = s.charAt(k);
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
        return false;
      }
    }
    return true;
  }

  private static long parseSize(String name, String s) {
    if (s.isEmpty() || s.length() > 19) {
      throw bad(name, "bad size \"" + s + "\"");
    }
    for (int k = 0; k < s.length(); k++) {
      if (s.charAt(k) < '0' || s.charAt(k) > '9') {
        throw bad(name, "bad size \"" + s + "\"");
      }
    }
    try {
      return Long.parseLong(s);
    } catch (NumberFormatException e) {
      throw bad(name, "bad size \"" + s + "\"");
    }
  }

  private static InvalidResourceNameException bad(String name, String why) {
    String shown = name.length() > 300 ? name.substring(0, 300) + "..." : name;
    return new InvalidResourceNameException("bad resource name \"" + shown + "\": " + why);
  }

  /** A malformed or unsupported resource name: gRPC INVALID_ARGUMENT. */
  public static final class InvalidResourceNameException extends IllegalArgumentException {
    public InvalidResourceNameException(String message) {
      super(message);
    }
  }
}
