package io.bazelcache.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.layers.ExistenceCache;
import io.bazelcache.storage.layers.RemoteStore;
import io.bazelcache.storage.layers.Uploader;
import io.bazelcache.storage.layers.WriteBehindStore;
import io.bazelcache.storage.s3.S3Stats;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** {@link ForwardingBlobWriter} passes every call on unchanged, and so does the writer of {@link WriteBehindStore}. */
class ForwardingBlobWriterTest {
  private static final BlobKey KEY =
      BlobKey.cas(Digest.of(DigestFunction.SHA256, "forwarded".getBytes(StandardCharsets.UTF_8)));

  /** One call received by a {@link RecordingWriter}: its name and its arguments (compared by identity). */
  record Event(String method, Object data, Runnable release) {}

  /** A writer that only records what it is asked to do; it never runs a release by itself. */
  static final class RecordingWriter implements BlobWriter {
    final List<Event> events = new ArrayList<>();
    IOException commitFailure;

    @Override
    public BlobKey key() {
      events.add(new Event("key", null, null));
      return KEY;
    }

    @Override
    public long expectedSize() {
      events.add(new Event("expectedSize", null, null));
      return 4242;
    }

    @Override
    public void write(ByteBuffer data) {
      events.add(new Event("write(ByteBuffer)", data, null));
    }

    @Override
    public void write(List<ByteBuffer> data) {
      events.add(new Event("write(List)", data, null));
    }

    @Override
    public void write(List<ByteBuffer> data, Runnable release) {
      events.add(new Event("write(List, Runnable)", data, release));
    }

    @Override
    public long bytesWritten() {
      events.add(new Event("bytesWritten", null, null));
      return 1717;
    }

    @Override
    public void commit() throws IOException {
      events.add(new Event("commit", null, null));
      if (commitFailure != null) {
        throw commitFailure;
      }
    }

    @Override
    public void close() {
      events.add(new Event("close", null, null));
    }

    List<String> methods() {
      return events.stream().map(Event::method).toList();
    }

    Event last() {
      return events.get(events.size() - 1);
    }
  }

  private static List<ByteBuffer> buffers() {
    return List.of(ByteBuffer.allocateDirect(3), ByteBuffer.wrap(new byte[] {1, 2}));
  }

  @Test
  void forwardsEveryMethodWithTheSameArguments() throws IOException {
    RecordingWriter inner = new RecordingWriter();
    BlobWriter w = new ForwardingBlobWriter(inner) {};

    assertThat(w.key()).isSameAs(KEY);
    assertThat(inner.methods()).containsExactly("key");

    assertThat(w.expectedSize()).isEqualTo(4242);
    assertThat(inner.last().method()).isEqualTo("expectedSize");

    ByteBuffer one = ByteBuffer.wrap(new byte[] {9});
    w.write(one);
    assertThat(inner.last().method()).isEqualTo("write(ByteBuffer)");
    assertThat(inner.last().data()).isSameAs(one);
    assertThat(one.remaining()).isEqualTo(1); // untouched by the forwarder

    // A list write stays one list write (the inner writer's gathering path), not a write per buffer.
    List<ByteBuffer> list = buffers();
    w.write(list);
    assertThat(inner.last().method()).isEqualTo("write(List)");
    assertThat(inner.last().data()).isSameAs(list);

    // The async list write hands over the caller's release itself, and does not run it.
    List<ByteBuffer> asyncList = buffers();
    AtomicInteger runs = new AtomicInteger();
    Runnable release = runs::incrementAndGet;
    w.write(asyncList, release);
    assertThat(inner.last().method()).isEqualTo("write(List, Runnable)");
    assertThat(inner.last().data()).isSameAs(asyncList);
    assertThat(inner.last().release()).isSameAs(release);
    assertThat(runs.get()).isZero();
    inner.last().release().run(); // the inner writer runs it when done: exactly the caller's callback
    assertThat(runs.get()).isEqualTo(1);

    assertThat(w.bytesWritten()).isEqualTo(1717);
    assertThat(inner.last().method()).isEqualTo("bytesWritten");

    w.commit();
    assertThat(inner.last().method()).isEqualTo("commit");

    w.close();
    assertThat(inner.last().method()).isEqualTo("close");

    // Each call was forwarded exactly once, in order, and nothing else reached the inner writer.
    assertThat(inner.methods()).containsExactly("key", "expectedSize", "write(ByteBuffer)", "write(List)",
        "write(List, Runnable)", "bytesWritten", "commit", "close");
    assertThat(runs.get()).isEqualTo(1);
  }

  @Test
  void innerFailuresComeThroughUnchanged() {
    RecordingWriter inner = new RecordingWriter();
    inner.commitFailure = new DigestMismatchException("bad content");
    BlobWriter w = new ForwardingBlobWriter(inner) {};
    assertThatThrownBy(w::commit).isSameAs(inner.commitFailure);
    assertThat(inner.methods()).containsExactly("commit");
  }

  /** A store whose writers record their calls; it holds nothing. */
  static final class RecordingStore implements BlobStore {
    final List<RecordingWriter> writers = new ArrayList<>();
    final List<BlobKey> newWriterKeys = new ArrayList<>();

    @Override
    public synchronized BlobWriter newWriter(BlobKey key, long size) {
      newWriterKeys.add(key);
      RecordingWriter w = new RecordingWriter();
      writers.add(w);
      return w;
    }

    @Override
    public Blob get(BlobKey key) {
      return null; // the uploader then skips the key: nothing reaches the remote
    }

    @Override
    public boolean contains(BlobKey key) {
      return false;
    }

    @Override
    public StoreStats stats() {
      return new StoreStats(0, 0, 0, 1, 0);
    }
  }

  /** A remote that counts the calls it gets (none expected: the inner store never has the entry). */
  static final class CountingRemote implements RemoteStore {
    final AtomicInteger calls = new AtomicInteger();

    @Override
    public boolean exists(BlobKey key) {
      calls.incrementAndGet();
      return false;
    }

    @Override
    public RemoteEntry fetch(BlobKey key, long maxSize) {
      calls.incrementAndGet();
      return null;
    }

    @Override
    public void upload(BlobKey key, Blob blob) {
      calls.incrementAndGet();
    }
  }

  @Test
  void writeBehindStoreWriterPassesAsyncListWritesThrough() throws Exception {
    RecordingStore inner = new RecordingStore();
    S3Stats stats = new S3Stats();
    CountingRemote remote = new CountingRemote();
    Uploader uploader = new Uploader(inner, remote, 1, 16, Uploader.Retry.defaults(),
        Duration.ofSeconds(5), stats, ExistenceCache.disabled());
    try (WriteBehindStore store = new WriteBehindStore(inner, uploader)) {
      BlobWriter w = store.newWriter(KEY, 4242);
      assertThat(inner.newWriterKeys).containsExactly(KEY);
      RecordingWriter rec = inner.writers.get(0);

      List<ByteBuffer> asyncList = buffers();
      AtomicInteger runs = new AtomicInteger();
      Runnable release = runs::incrementAndGet;
      w.write(asyncList, release);
      assertThat(rec.methods()).containsExactly("write(List, Runnable)");
      assertThat(rec.last().data()).isSameAs(asyncList);
      assertThat(rec.last().release()).isSameAs(release);
      assertThat(runs.get()).isZero(); // not run by the layer: the inner writer decides when

      List<ByteBuffer> list = buffers();
      w.write(list);
      assertThat(rec.last().method()).isEqualTo("write(List)");
      assertThat(rec.last().data()).isSameAs(list);

      assertThat(w.key()).isSameAs(KEY);
      assertThat(w.expectedSize()).isEqualTo(4242);
      assertThat(w.bytesWritten()).isEqualTo(1717);

      assertThat(stats.uploadsQueued.get()).isZero();
      w.commit();
      w.close();
      assertThat(rec.methods()).containsExactly("write(List, Runnable)", "write(List)", "key", "expectedSize",
          "bytesWritten", "commit", "close");
      // The layer's own step: a successful commit queues the key for upload.
      assertThat(stats.uploadsQueued.get()).isEqualTo(1);

      // A failed inner commit queues nothing and its failure comes through.
      BlobWriter w2 = store.newWriter(KEY, 4242);
      RecordingWriter rec2 = inner.writers.get(1);
      rec2.commitFailure = new DigestMismatchException("bad content");
      assertThatThrownBy(w2::commit).isSameAs(rec2.commitFailure);
      w2.close();
      assertThat(rec2.methods()).containsExactly("commit", "close");
      assertThat(uploader.awaitIdle(Duration.ofSeconds(5))).isTrue();
      assertThat(stats.uploadsQueued.get()).isEqualTo(1);
    }
    // The queued key was handled (skipped: the inner store does not have it), never sent to the remote.
    assertThat(remote.calls.get()).isZero();
    assertThat(stats.uploadsDone.get()).isZero();
  }
}
