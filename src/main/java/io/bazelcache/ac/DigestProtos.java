package io.bazelcache.ac;

import io.bazelcache.digest.Digest;
import io.bazelcache.digest.Digest.InvalidDigestException;
import io.bazelcache.digest.DigestFunction;

/** Conversions between REAPI's wire {@code Digest} / {@code DigestFunction.Value} and ours. */
public final class DigestProtos {
  private DigestProtos() {}

  /**
   * The validated digest of {@code proto} under {@code function}.
   *
   * @throws InvalidDigestException if the digest is malformed (bad hex, wrong length, negative
   *     size, size 0 with a non-empty hash)
   */
  public static Digest fromProto(
      build.bazel.remote.execution.v2.Digest proto, DigestFunction function) {
    if (proto == null) {
      throw new InvalidDigestException("missing digest");
    }
    return new Digest(function, proto.getHash(), proto.getSizeBytes());
  }

  /**
   * Like {@link #fromProto(build.bazel.remote.execution.v2.Digest, DigestFunction)}, but the error
   * message starts with {@code field} (e.g. {@code "output_files[0].digest"}).
   */
  public static Digest fromProto(
      build.bazel.remote.execution.v2.Digest proto, DigestFunction function, String field) {
    try {
      return fromProto(proto, function);
    } catch (InvalidDigestException e) {
      throw new InvalidDigestException(field + ": " + e.getMessage());
    }
  }

  /**
   * Like {@link #fromProto(build.bazel.remote.execution.v2.Digest, DigestFunction, String)} for element
   * {@code index} of a repeated field; the name {@code field[index]} is built only for an error message.
   */
  public static Digest fromProto(
      build.bazel.remote.execution.v2.Digest proto, DigestFunction function, String field, int index) {
    try {
      return fromProto(proto, function);
    } catch (InvalidDigestException e) {
      throw new InvalidDigestException(field + "[" + index + "]: " + e.getMessage());
    }
  }

  public static build.bazel.remote.execution.v2.Digest toProto(Digest digest) {
    return build.bazel.remote.execution.v2.Digest.newBuilder()
        .setHash(digest.hash())
        .setSizeBytes(digest.sizeBytes())
        .build();
  }

  /**
   * The function a request names. UNKNOWN (0, i.e. the field was not set) means SHA-256, as for
   * clients older than REAPI v2.3.
   *
   * @throws DigestFunction.UnsupportedDigestFunctionException for functions we do not serve
   */
  public static DigestFunction functionOf(
      build.bazel.remote.execution.v2.DigestFunction.Value value) {
    if (value == build.bazel.remote.execution.v2.DigestFunction.Value.UNRECOGNIZED) {
      throw new DigestFunction.UnsupportedDigestFunctionException(
          "unrecognised digest function number");
    }
    return DigestFunction.fromProtoNumber(value.getNumber());
  }

  /** {@link #functionOf(build.bazel.remote.execution.v2.DigestFunction.Value)} for a raw enum number. */
  public static DigestFunction functionOf(int number) {
    build.bazel.remote.execution.v2.DigestFunction.Value v =
        build.bazel.remote.execution.v2.DigestFunction.Value.forNumber(number);
    return functionOf(v == null ? build.bazel.remote.execution.v2.DigestFunction.Value.UNRECOGNIZED : v);
  }

  public static build.bazel.remote.execution.v2.DigestFunction.Value toProto(
      DigestFunction function) {
    return build.bazel.remote.execution.v2.DigestFunction.Value.forNumber(function.protoNumber());
  }
}
