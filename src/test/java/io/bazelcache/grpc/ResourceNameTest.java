package io.bazelcache.grpc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.bazelcache.digest.DigestFunction;
import org.junit.jupiter.api.Test;

class ResourceNameTest {
  static final String H = "a".repeat(64);

  @Test
  void readNames() {
    ResourceName r = ResourceName.parseRead("blobs/" + H + "/12");
    assertThat(r.instanceName()).isEmpty();
    assertThat(r.compressed()).isFalse();
    assertThat(r.digest().function()).isEqualTo(DigestFunction.SHA256);
    assertThat(r.digest().sizeBytes()).isEqualTo(12);

    r = ResourceName.parseRead("my/inst/compressed-blobs/zstd/blake3/" + H + "/7");
    assertThat(r.instanceName()).isEqualTo("my/inst");
    assertThat(r.compressed()).isTrue();
    assertThat(r.digest().function()).isEqualTo(DigestFunction.BLAKE3);

    r = ResourceName.parseRead("x/blobs/sha256/" + H + "/7");
    assertThat(r.digest().function()).isEqualTo(DigestFunction.SHA256);
  }

  @Test
  void uploadNames() {
    ResourceName r = ResourceName.parseWrite("inst/uploads/uuid-1/blobs/" + H + "/5/some/meta/data");
    assertThat(r.instanceName()).isEqualTo("inst");
    assertThat(r.uploadId()).isEqualTo("uuid-1");
    assertThat(r.digest().sizeBytes()).isEqualTo(5);

    r = ResourceName.parseWrite("uploads/u/compressed-blobs/zstd/blake3/" + H + "/5");
    assertThat(r.compressed()).isTrue();
    assertThat(r.digest().function()).isEqualTo(DigestFunction.BLAKE3);
  }

  @Test
  void badNames() {
    String[] bad = {
      "",
      "blobs/" + H,
      "blobs/" + H + "/-1",
      "blobs/" + H + "/x",
      "blobs/" + H + "/99999999999999999999",
      "blobs/" + H.toUpperCase() + "/1",
      "blobs/" + "a".repeat(40) + "/1",
      "blobs/md5/" + H + "/1",
      "blobs/" + H + "/1/extra",
      "compressed-blobs/gzip/" + H + "/1",
      "compressed-blobs/" + H + "/1",
      "actions/blobs/" + H + "/1",
      "a//blobs/" + H + "/1",
      "uploads/u/blobs/" + H + "/1",
      "blobs/" + H + "/0",
      "nothing/here",
    };
    for (String name : bad) {
      assertThatThrownBy(() -> ResourceName.parseRead(name))
          .as(name)
          .isInstanceOf(IllegalArgumentException.class);
    }
    String[] badWrites = {
      "blobs/" + H + "/1",
      "uploads/blobs/" + H + "/1",
      "uploads/u/" + H + "/1",
      "uploads/u/blobs/" + H,
    };
    for (String name : badWrites) {
      assertThatThrownBy(() -> ResourceName.parseWrite(name))
          .as(name)
          .isInstanceOf(IllegalArgumentException.class);
    }
  }
}
