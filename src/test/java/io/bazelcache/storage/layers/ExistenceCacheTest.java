package io.bazelcache.storage.layers;

import static org.assertj.core.api.Assertions.assertThat;

import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.BlobKey;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class ExistenceCacheTest {
  private final AtomicLong now = new AtomicLong(1_000);

  private static BlobKey key(int i) {
    return BlobKey.cas(Digest.of(DigestFunction.SHA256, ("k" + i).getBytes(StandardCharsets.UTF_8)));
  }

  @Test
  void positiveAnswersExpireAfterTheTtl() {
    ExistenceCache c = new ExistenceCache(Duration.ofNanos(100), 10, now::get);
    c.put(key(1));
    assertThat(c.contains(key(1))).isTrue();
    now.addAndGet(99);
    assertThat(c.contains(key(1))).isTrue();
    now.addAndGet(1);
    assertThat(c.contains(key(1))).isFalse();
    assertThat(c.size()).isZero();
  }

  @Test
  void theOldestEntriesGoFirstWhenFull() {
    ExistenceCache c = new ExistenceCache(Duration.ofSeconds(10), 3, now::get);
    for (int i = 0; i < 5; i++) {
      c.put(key(i));
      now.incrementAndGet();
    }
    assertThat(c.size()).isEqualTo(3);
    assertThat(c.contains(key(0))).isFalse();
    assertThat(c.contains(key(1))).isFalse();
    assertThat(c.contains(key(4))).isTrue();
    // Re-confirming an entry makes it the newest.
    c.put(key(2));
    c.put(key(5));
    assertThat(c.contains(key(2))).isTrue();
    assertThat(c.contains(key(3))).isFalse();
  }

  @Test
  void invalidateAndDisabled() {
    ExistenceCache c = new ExistenceCache(Duration.ofSeconds(10), 3, now::get);
    c.put(key(1));
    c.invalidate(key(1));
    assertThat(c.contains(key(1))).isFalse();
    ExistenceCache off = ExistenceCache.disabled();
    off.put(key(1));
    assertThat(off.contains(key(1))).isFalse();
  }
}
