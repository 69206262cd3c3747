package io.bazelcache.grpc;

import static io.bazelcache.grpc.GrpcServerFixture.random;
import static org.assertj.core.api.Assertions.assertThat;

import com.github.luben.zstd.Zstd;
import com.google.bytestream.ByteStreamGrpc;
import com.google.bytestream.ByteStreamProto.QueryWriteStatusRequest;
import com.google.bytestream.ByteStreamProto.QueryWriteStatusResponse;
import com.google.bytestream.ByteStreamProto.ReadRequest;
import com.google.bytestream.ByteStreamProto.ReadResponse;
import com.google.bytestream.ByteStreamProto.WriteRequest;
import com.google.bytestream.ByteStreamProto.WriteResponse;
import com.google.protobuf.ByteString;
import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.BlobKey;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.io.ByteArrayOutputStream;
import java.time.Duration;
import java.util.Iterator;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class ByteStreamServiceTest {
  GrpcServerFixture f;
  ByteStreamGrpc.ByteStreamBlockingStub blocking;
  ByteStreamGrpc.ByteStreamStub async;
  InstrumentedStore instrumented;

  void start(GrpcOptions options) throws Exception {
    f = new GrpcServerFixture(options, true, s -> instrumented = new InstrumentedStore(s));
    blocking = ByteStreamGrpc.newBlockingStub(f.channel);
    async = ByteStreamGrpc.newStub(f.channel);
  }

  void start() throws Exception {
    start(GrpcOptions.defaults().withMaxBlobSize(64 << 20));
  }

  @AfterEach
  void tearDown() throws Exception {
    if (f != null) {
      f.close();
    }
  }

  // ---- helpers -------------------------------------------------------------------------------

  static Digest sha(byte[] data) {
    return Digest.of(DigestFunction.SHA256, data);
  }

  static String uploadName(Digest d, boolean compressed) {
    String fn = d.function() == DigestFunction.SHA256 ? "" : d.function().lowerName() + "/";
    return "inst/uploads/" + UUID.randomUUID() + "/" + (compressed ? "compressed-blobs/zstd/" : "blobs/")
        + fn + d.hash() + "/" + d.sizeBytes();
  }

  static String readName(Digest d, boolean compressed) {
    String fn = d.function() == DigestFunction.SHA256 ? "" : d.function().lowerName() + "/";
    return "inst/" + (compressed ? "compressed-blobs/zstd/" : "blobs/") + fn + d.hash() + "/"
        + d.sizeBytes();
  }

  /** An open Write stream on this test's server. */
  final class Upload extends WriteStream {
    Upload(String name, long startOffset) {
      super(async, name, startOffset);
    }
  }

  byte[] read(String name, long offset, long limit) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    Iterator<ReadResponse> it = blocking.read(ReadRequest.newBuilder().setResourceName(name)
        .setReadOffset(offset).setReadLimit(limit).build());
    while (it.hasNext()) {
      ReadResponse r = it.next();
      assertThat(r.getData().size()).isLessThanOrEqualTo(2 * 1024 * 1024);
      out.writeBytes(r.getData().toByteArray());
    }
    return out.toByteArray();
  }

  Status.Code readCode(String name, long offset, long limit) {
    try {
      read(name, offset, limit);
      return Status.Code.OK;
    } catch (StatusRuntimeException e) {
      return e.getStatus().getCode();
    }
  }

  QueryWriteStatusResponse query(String name) {
    return blocking.queryWriteStatus(QueryWriteStatusRequest.newBuilder().setResourceName(name).build());
  }

  // ---- tests ---------------------------------------------------------------------------------

  @Test
  void writeThenReadWithOffsetsAndLimits() throws Exception {
    start();
    byte[] data = random(5 * 1024 * 1024 + 123, 1);
    Digest d = sha(data);
    WriteResponse w = new Upload(uploadName(d, false), 0).sendAll(data, 0, data.length, true).finish();
    assertThat(w.getCommittedSize()).isEqualTo(data.length);
    assertThat(f.store.entries().get(BlobKey.cas(d))).isEqualTo(data);

    assertThat(read(readName(d, false), 0, 0)).isEqualTo(data);
    assertThat(read(readName(d, false), 1000, 0))
        .isEqualTo(java.util.Arrays.copyOfRange(data, 1000, data.length));
    assertThat(read(readName(d, false), 10, 100))
        .isEqualTo(java.util.Arrays.copyOfRange(data, 10, 110));
    assertThat(read(readName(d, false), data.length, 0)).isEmpty();
    // Names without an instance work too.
    assertThat(read("blobs/" + d.hash() + "/" + d.sizeBytes(), 0, 0)).isEqualTo(data);
  }

  @Test
  void readsServeStoredFilesAndTheStoredZstdForm() throws Exception {
    start();
    byte[] data = new byte[3 * 1024 * 1024 + 5];
    for (int i = 0; i < data.length; i++) {
      data[i] = (byte) (i % 97 < 50 ? 0 : i);
    }
    Digest d = sha(data);
    f.store.put(BlobKey.cas(d), data);
    instrumented.fileBacked.set(true);
    assertThat(read(readName(d, false), 0, 0)).isEqualTo(data);
    assertThat(read(readName(d, false), 1_500_000, 1_000_000))
        .isEqualTo(java.util.Arrays.copyOfRange(data, 1_500_000, 2_500_000));
    byte[] z = read(readName(d, true), 0, 0);
    assertThat(instrumented.zstdFileUses.get()).isEqualTo(1);
    assertThat(z).isEqualTo(Zstd.compress(data)); // exactly the stored form
    // From an offset the stored frame cannot be used: compressed on the fly.
    byte[] tail = read(readName(d, true), 100, 0);
    assertThat(instrumented.zstdFileUses.get()).isEqualTo(1);
    assertThat(Zstd.decompress(tail, data.length - 100))
        .isEqualTo(java.util.Arrays.copyOfRange(data, 100, data.length));
  }

  @Test
  void readErrors() throws Exception {
    start();
    byte[] data = random(1000, 2);
    Digest d = sha(data);
    f.store.put(BlobKey.cas(d), data);
    assertThat(readCode(readName(d, false), 1001, 0)).isEqualTo(Status.Code.OUT_OF_RANGE);
    assertThat(readCode(readName(d, false), -1, 0)).isEqualTo(Status.Code.OUT_OF_RANGE);
    assertThat(readCode(readName(d, false), 0, -1)).isEqualTo(Status.Code.OUT_OF_RANGE);
    assertThat(readCode(readName(d, true), 0, 10)).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(readCode("blobs/xyz/10", 0, 0)).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(readCode("compressed-blobs/brotli/" + d.hash() + "/1000", 0, 0))
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(readCode(uploadName(d, false), 0, 0)).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(readCode(readName(sha(random(10, 3)), false), 0, 0)).isEqualTo(Status.Code.NOT_FOUND);
    // The right hash with the wrong size is not that blob.
    assertThat(readCode("blobs/" + d.hash() + "/999", 0, 0)).isEqualTo(Status.Code.NOT_FOUND);
    // The empty blob is always there.
    assertThat(read(readName(sha(new byte[0]), false), 0, 0)).isEmpty();
  }

  @Test
  void compressedWriteAndReadRoundTrip() throws Exception {
    start();
    byte[] data = new byte[3 * 1024 * 1024];
    for (int i = 0; i < data.length; i++) {
      data[i] = (byte) (i % 251 < 100 ? 0 : i * 31);
    }
    Digest d = sha(data);
    byte[] z = Zstd.compress(data);
    assertThat(z.length).isLessThan(data.length);
    WriteResponse w = new Upload(uploadName(d, true), 0).sendAll(z, 0, z.length, true).finish();
    assertThat(w.getCommittedSize()).isEqualTo(z.length);
    assertThat(f.store.entries().get(BlobKey.cas(d))).isEqualTo(data);

    byte[] got = read(readName(d, true), 0, 0);
    assertThat(got.length).isLessThan(data.length);
    assertThat(Zstd.decompress(got, data.length)).isEqualTo(data);
    byte[] tail = read(readName(d, true), 1_000_000, 0);
    assertThat(Zstd.decompress(tail, data.length - 1_000_000))
        .isEqualTo(java.util.Arrays.copyOfRange(data, 1_000_000, data.length));

    // Existing blob: compressed early return is -1, uncompressed is the size.
    assertThat(new Upload(uploadName(d, true), 0).send(z, 0, 10, false).finish().getCommittedSize())
        .isEqualTo(-1);
    assertThat(new Upload(uploadName(d, false), 0).send(data, 0, 10, false).finish()
        .getCommittedSize()).isEqualTo(data.length);
  }

  @Test
  void corruptOrMismatchedCompressedWriteStoresNothing() throws Exception {
    start();
    byte[] data = random(10000, 4);
    Digest d = sha(data);
    byte[] z = Zstd.compress(data);
    assertThat(new Upload(uploadName(d, true), 0).send(random(100, 5), 0, 100, true).failure())
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(new Upload(uploadName(d, true), 0).send(z, 0, z.length - 3, true).failure())
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    byte[] other = Zstd.compress(random(10000, 6));
    assertThat(new Upload(uploadName(d, true), 0).send(other, 0, other.length, true).failure())
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(f.store.entries()).isEmpty();
  }

  @Test
  void badWritesAreInvalidArgumentAndStoreNothing() throws Exception {
    start(GrpcOptions.defaults().withMaxBlobSize(1 << 20));
    byte[] data = random(10000, 7);
    Digest d = sha(data);
    // Wrong content.
    byte[] other = random(10000, 8);
    assertThat(new Upload(uploadName(d, false), 0).sendAll(other, 0, other.length, true).failure())
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    // Too few bytes at finish_write.
    assertThat(new Upload(uploadName(d, false), 0).send(data, 0, 9999, true).failure())
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    // Too many bytes.
    byte[] longer = java.util.Arrays.copyOf(data, 10001);
    assertThat(new Upload(uploadName(d, false), 0).send(longer, 0, 10001, true).failure())
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    // A gap in the offsets.
    WriteStream gap = new Upload(uploadName(d, false), 0).send(data, 0, 100, false);
    gap.offset += 5;
    assertThat(gap.send(data, 105, 10000, true).failure()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    // A nonzero first offset with nothing to resume.
    assertThat(new Upload(uploadName(d, false), 100).send(data, 100, 10000, true).failure())
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    // A read name, a bad name, a negative offset.
    assertThat(new Upload(readName(d, false), 0).send(data, 0, 10000, true).failure())
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(new Upload("uploads/x/blobs/abc/1", 0).send(data, 0, 1, true).failure())
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(new Upload(uploadName(d, false), -1).send(data, 0, 1, true).failure())
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    // Over max_cas_blob_size_bytes.
    byte[] big = random((1 << 20) + 1, 9);
    assertThat(new Upload(uploadName(sha(big), false), 0).send(big, 0, 10, false).failure())
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    // Half-closed without finish_write.
    assertThat(new Upload(uploadName(d, false), 0).send(data, 0, 10000, false).failure())
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(f.store.entries()).isEmpty();
  }

  @Test
  void fullStoreIsResourceExhausted() throws Exception {
    start();
    instrumented.full.set(true);
    byte[] data = random(1000, 10);
    assertThat(new Upload(uploadName(sha(data), false), 0).send(data, 0, 1000, true).failure())
        .isEqualTo(Status.Code.RESOURCE_EXHAUSTED);
    assertThat(f.store.entries()).isEmpty();
  }

  @Test
  void interruptedUploadResumesFromQueryWriteStatus() throws Exception {
    start();
    byte[] data = random(3 * 1024 * 1024, 11);
    Digest d = sha(data);
    String name = uploadName(d, false);
    int half = data.length / 2;
    WriteStream first = new Upload(name, 0).sendAll(data, 0, half, false);
    // Wait until the server has taken every byte, then cancel the stream.
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (query(name).getCommittedSize() < half && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    first.requests.cancel("client gave up", null);
    assertThat(Status.fromThrowable(
        org.assertj.core.api.Assertions.catchThrowable(() -> first.result.get(10, TimeUnit.SECONDS))
            .getCause()).getCode()).isEqualTo(Status.Code.CANCELLED);

    QueryWriteStatusResponse q = query(name);
    while (q.getCommittedSize() != half && System.nanoTime() < deadline) {
      Thread.sleep(10);
      q = query(name);
    }
    assertThat(q.getCommittedSize()).isEqualTo(half);
    assertThat(q.getComplete()).isFalse();

    // A wrong resume offset is refused and leaves the upload resumable.
    assertThat(new Upload(name, half - 1).send(data, half - 1, half + 10, false).failure())
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(query(name).getCommittedSize()).isEqualTo(half);

    WriteResponse w = new Upload(name, half).sendAll(data, half, data.length, true).finish();
    assertThat(w.getCommittedSize()).isEqualTo(data.length);
    assertThat(f.store.entries().get(BlobKey.cas(d))).isEqualTo(data);
    q = query(name);
    assertThat(q.getComplete()).isTrue();
    assertThat(q.getCommittedSize()).isEqualTo(data.length);
  }

  @Test
  void interruptedCompressedUploadResumesWithANewZstdStream() throws Exception {
    start();
    byte[] data = random(2 * 1024 * 1024, 19);
    Digest d = sha(data);
    String name = uploadName(d, true);
    byte[] z = Zstd.compress(data);
    WriteStream first = new Upload(name, 0).sendAll(z, 0, z.length / 2, false);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (query(name).getCommittedSize() < 500_000 && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    Thread.sleep(200); // let the server take the rest of what was sent
    first.requests.cancel("interrupted", null);
    org.assertj.core.api.Assertions.catchThrowable(() -> first.result.get(10, TimeUnit.SECONDS));
    Thread.sleep(100);
    // committed_size of a compressed upload is in uncompressed bytes.
    long committed = query(name).getCommittedSize();
    assertThat(committed).isBetween(500_000L, (long) data.length - 1);
    byte[] rest = Zstd.compress(java.util.Arrays.copyOfRange(data, (int) committed, data.length));
    WriteStream second = new Upload(name, committed);
    WriteResponse w = second.sendAll(rest, 0, rest.length, true).finish();
    assertThat(w.getCommittedSize()).isEqualTo(committed + rest.length);
    assertThat(f.store.entries().get(BlobKey.cas(d))).isEqualTo(data);
  }

  @Test
  void interruptedUploadIsDiscardedAfterTheWindow() throws Exception {
    start(GrpcOptions.defaults().withUploadResumeWindow(Duration.ofMillis(300)));
    byte[] data = random(100_000, 12);
    Digest d = sha(data);
    String name = uploadName(d, false);
    WriteStream u = new Upload(name, 0).sendAll(data, 0, 50_000, false);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (query(name).getCommittedSize() < 50_000 && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    u.requests.cancel("bye", null);
    Thread.sleep(1500);
    assertThat(query(name).getCommittedSize()).isZero();
    assertThat(new Upload(name, 50_000).send(data, 50_000, 100_000, true).failure())
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(f.store.entries()).isEmpty();
    assertThat(f.server.options().uploadResumeWindow()).isEqualTo(Duration.ofMillis(300));
  }

  @Test
  void deadlineExceededUploadWithoutWindowLeavesNothing() throws Exception {
    start(GrpcOptions.defaults().withUploadResumeWindow(Duration.ZERO));
    byte[] data = random(100_000, 13);
    Digest d = sha(data);
    String name = uploadName(d, false);
    CompletableFuture<Throwable> err = new CompletableFuture<>();
    StreamObserver<WriteRequest> req = async.withDeadlineAfter(300, TimeUnit.MILLISECONDS)
        .write(new StreamObserver<>() {
          @Override
          public void onNext(WriteResponse value) {}

          @Override
          public void onError(Throwable t) {
            err.complete(t);
          }

          @Override
          public void onCompleted() {
            err.complete(null);
          }
        });
    req.onNext(WriteRequest.newBuilder().setResourceName(name)
        .setData(ByteString.copyFrom(data, 0, 50_000)).build());
    assertThat(Status.fromThrowable(err.get(10, TimeUnit.SECONDS)).getCode())
        .isEqualTo(Status.Code.DEADLINE_EXCEEDED);
    Thread.sleep(200);
    assertThat(query(name).getCommittedSize()).isZero();
    assertThat(f.store.entries()).isEmpty();
  }

  @Test
  void closeIsBoundedByTheGracePeriod() throws Exception {
    start(GrpcOptions.defaults().withShutdownGrace(Duration.ofMillis(300)));
    byte[] data = random(1000, 20);
    WriteStream open = new Upload(uploadName(sha(data), false), 0).send(data, 0, 500, false);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (query(open.name).getCommittedSize() < 500 && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    long t0 = System.nanoTime();
    f.server.close();
    assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(5));
    Throwable t = org.assertj.core.api.Assertions.catchThrowable(
        () -> open.result.get(10, TimeUnit.SECONDS));
    assertThat(Status.fromThrowable(t.getCause()).getCode()).isNotEqualTo(Status.Code.OK);
    assertThat(f.store.entries()).isEmpty();
  }

  @Test
  void queryWriteStatusOfUnknownAndBadNames() throws Exception {
    start();
    Digest d = sha(random(10, 14));
    QueryWriteStatusResponse q = query(uploadName(d, false));
    assertThat(q.getCommittedSize()).isZero();
    assertThat(q.getComplete()).isFalse();
    try {
      query("nonsense");
      throw new AssertionError("expected INVALID_ARGUMENT");
    } catch (StatusRuntimeException e) {
      assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    }
  }

  @Test
  void blake3RoundTripKeptApartFromSha256() throws Exception {
    start();
    byte[] data = random(200_000, 15);
    Digest b3 = Digest.of(DigestFunction.BLAKE3, data);
    String name = uploadName(b3, false);
    assertThat(name).contains("/blobs/blake3/");
    assertThat(new Upload(name, 0).sendAll(data, 0, data.length, true).finish().getCommittedSize())
        .isEqualTo(data.length);
    assertThat(f.store.entries()).containsOnlyKeys(BlobKey.cas(b3));
    assertThat(read(readName(b3, false), 0, 0)).isEqualTo(data);
    assertThat(Zstd.decompress(read(readName(b3, true), 0, 0), data.length)).isEqualTo(data);
    // The same hex under SHA-256 is another key: not found.
    Digest asSha = new Digest(DigestFunction.SHA256, b3.hash(), b3.sizeBytes());
    assertThat(readCode(readName(asSha, false), 0, 0)).isEqualTo(Status.Code.NOT_FOUND);
    // Compressed BLAKE3 upload.
    byte[] more = random(50_000, 16);
    Digest b3more = Digest.of(DigestFunction.BLAKE3, more);
    byte[] z = Zstd.compress(more);
    new Upload(uploadName(b3more, true), 0).send(z, 0, z.length, true).finish();
    assertThat(f.store.entries().get(BlobKey.cas(b3more))).isEqualTo(more);
    // SHA-256 content under a BLAKE3 name is a digest mismatch.
    Digest wrong = Digest.of(DigestFunction.BLAKE3, random(100, 17));
    byte[] shaData = random(100, 18);
    assertThat(new Upload(uploadName(new Digest(DigestFunction.BLAKE3, sha(shaData).hash(), 100), false), 0)
        .send(shaData, 0, 100, true).failure()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(wrong.function()).isEqualTo(DigestFunction.BLAKE3);
  }

  @Test
  void emptyBlobUploadReturnsAtOnce() throws Exception {
    start();
    Digest empty = sha(new byte[0]);
    assertThat(new Upload(uploadName(empty, false), 0).send(new byte[0], 0, 0, true).finish()
        .getCommittedSize()).isZero();
    assertThat(f.store.entries()).isEmpty();
  }
}
