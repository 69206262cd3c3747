package io.bazelcache.ac;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import org.junit.jupiter.api.Test;

class DigestProtosTest {

  @Test
  void convertsBothWays() {
    Digest d = Digest.of(DigestFunction.BLAKE3, "hello".getBytes());
    build.bazel.remote.execution.v2.Digest p = DigestProtos.toProto(d);
    assertThat(p.getHash()).isEqualTo(d.hash());
    assertThat(p.getSizeBytes()).isEqualTo(5);
    assertThat(DigestProtos.fromProto(p, DigestFunction.BLAKE3)).isEqualTo(d);
  }

  @Test
  void rejectsMalformedDigestsNamingTheField() {
    build.bazel.remote.execution.v2.Digest bad =
        build.bazel.remote.execution.v2.Digest.newBuilder().setHash("xyz").setSizeBytes(1).build();
    assertThatThrownBy(() -> DigestProtos.fromProto(bad, DigestFunction.SHA256, "blob_digests[3]"))
        .isInstanceOf(Digest.InvalidDigestException.class)
        .hasMessageStartingWith("blob_digests[3]: invalid sha256 hash \"xyz\"");
    assertThatThrownBy(() -> DigestProtos.fromProto(null, DigestFunction.SHA256))
        .isInstanceOf(Digest.InvalidDigestException.class)
        .hasMessage("missing digest");
  }

  @Test
  void mapsDigestFunctionValues() {
    assertThat(DigestProtos.functionOf(build.bazel.remote.execution.v2.DigestFunction.Value.UNKNOWN))
        .isEqualTo(DigestFunction.SHA256);
    assertThat(DigestProtos.functionOf(build.bazel.remote.execution.v2.DigestFunction.Value.BLAKE3))
        .isEqualTo(DigestFunction.BLAKE3);
    assertThat(DigestProtos.toProto(DigestFunction.BLAKE3))
        .isEqualTo(build.bazel.remote.execution.v2.DigestFunction.Value.BLAKE3);
    assertThat(DigestProtos.toProto(DigestFunction.SHA256))
        .isEqualTo(build.bazel.remote.execution.v2.DigestFunction.Value.SHA256);
    assertThatThrownBy(
            () -> DigestProtos.functionOf(build.bazel.remote.execution.v2.DigestFunction.Value.MD5))
        .isInstanceOf(DigestFunction.UnsupportedDigestFunctionException.class);
    assertThatThrownBy(
            () -> DigestProtos.functionOf(build.bazel.remote.execution.v2.DigestFunction.Value.UNRECOGNIZED))
        .isInstanceOf(DigestFunction.UnsupportedDigestFunctionException.class);
  }
}
