package io.bazelcache.grpc;

import static org.assertj.core.api.Assertions.assertThat;

import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.BlobWriter;
import io.bazelcache.storage.Kind;
import java.nio.ByteBuffer;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class UploadRegistryTest {

  static final class FakeWriter implements BlobWriter {
    boolean closed;

    @Override
    public BlobKey key() {
      return new BlobKey(Kind.CAS, DigestFunction.SHA256, "a".repeat(64));
    }

    @Override
    public long expectedSize() {
      return 100;
    }

    @Override
    public void write(ByteBuffer data) {}

    @Override
    public long bytesWritten() {
      return 0;
    }

    @Override
    public void commit() {}

    @Override
    public void close() {
      closed = true;
    }
  }

  @Test
  void keepsAtMostMaxParkedDiscardingTheOldest() throws Exception {
    try (UploadRegistry r = new UploadRegistry(Duration.ofMinutes(1), 2)) {
      FakeWriter[] w = new FakeWriter[3];
      for (int i = 0; i < 3; i++) {
        w[i] = new FakeWriter();
        UploadRegistry.Upload u = r.start("u" + i, w[i]);
        u.committed = 10;
        r.park(u);
        Thread.sleep(2);
      }
      assertThat(r.parkedCount()).isEqualTo(2);
      assertThat(w[0].closed).isTrue();
      assertThat(w[1].closed).isFalse();
      assertThat(r.committed("u0")).isEqualTo(-1);
      assertThat(r.committed("u2")).isEqualTo(10);
      // Resuming takes it out of the parked set; a second resume while active is Busy.
      assertThat(r.resume("u1")).isInstanceOf(UploadRegistry.Resumed.class);
      assertThat(r.resume("u1")).isInstanceOf(UploadRegistry.Busy.class);
      assertThat(r.resume("nope")).isInstanceOf(UploadRegistry.NotFound.class);
      // A new upload of a parked name replaces and discards it.
      FakeWriter fresh = new FakeWriter();
      r.start("u2", fresh);
      assertThat(w[2].closed).isTrue();
      assertThat(fresh.closed).isFalse();
    }
  }

  @Test
  void uploadsWithoutBytesOrWithoutAWindowAreDiscardedAtOnce() {
    try (UploadRegistry r = new UploadRegistry(Duration.ZERO, 10)) {
      FakeWriter w = new FakeWriter();
      UploadRegistry.Upload u = r.start("x", w);
      u.committed = 10;
      r.park(u);
      assertThat(w.closed).isTrue();
      assertThat(r.committed("x")).isEqualTo(-1);
    }
    try (UploadRegistry r = new UploadRegistry(Duration.ofMinutes(1), 10)) {
      FakeWriter w = new FakeWriter();
      r.park(r.start("y", w));
      assertThat(w.closed).isTrue();
    }
  }

  @Test
  void expiredUploadsAreSweptAndCloseDiscardsTheRest() throws Exception {
    FakeWriter kept = new FakeWriter();
    try (UploadRegistry r = new UploadRegistry(Duration.ofMillis(50), 10)) {
      FakeWriter w = new FakeWriter();
      UploadRegistry.Upload u = r.start("x", w);
      u.committed = 1;
      r.park(u);
      Thread.sleep(100);
      r.sweep();
      assertThat(w.closed).isTrue();
      UploadRegistry.Upload k = r.start("k", kept);
      k.committed = 1;
      r.park(k);
    }
    assertThat(kept.closed).isTrue();
  }
}
