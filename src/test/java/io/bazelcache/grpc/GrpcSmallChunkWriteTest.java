package io.bazelcache.grpc;

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
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.BlobWriter;
import io.bazelcache.storage.ForwardingStore;
import io.bazelcache.storage.disk.DiskStore;
import io.bazelcache.storage.disk.StorageMode;
import io.grpc.ForwardingServerCallListener;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * ByteStream.Write as Bazel sends it: many small (16 KiB, Bazel's Chunker default) requests per
 * stream, through a real server on loopback over a real DiskStore. Exercises the Write call's manual
 * flow control (requests asked for ahead of time) and, for blobs of {@link
 * ByteStreamService#PIPELINE_MIN_SIZE} or more, the writer thread fed through a {@link HandOff} that is
 * woken per {@link ByteStreamService#WAKE_BYTES} or for the last request.
 */
@Timeout(60)
class GrpcSmallChunkWriteTest {
  static final String WRITE_METHOD = "google.bytestream.ByteStream/Write";
  static final int KIB = 1024;
  static final int MIB = 1024 * KIB;
  /** Bazel's default upload chunk size. */
  static final int CHUNK = 16 * KIB;

  @TempDir Path dir;
  DiskStore disk;
  GrpcCacheServer server;
  ManagedChannel channel;
  ByteStreamGrpc.ByteStreamBlockingStub blocking;
  ByteStreamGrpc.ByteStreamStub async;
  ExecutorService pool;

  /** Write messages the service has been handed (its onNext returned). */
  final AtomicInteger writeMessagesDelivered = new AtomicInteger();
  /** Write calls whose cancellation the service has been told of (its onError returned). */
  final AtomicInteger writeCallsCancelled = new AtomicInteger();
  /** Store writes wait for this latch (open unless a test closes it, to stall the writer). */
  volatile CountDownLatch storeGate = new CountDownLatch(0);
  /** Bytes the store's writers have been given (once through the gate). */
  final AtomicLong storeBytesWritten = new AtomicLong();

  void start(StorageMode mode) throws Exception {
    disk = DiskStore.open(dir.resolve("cas"), 1L << 30, 0, mode, 64L << 20);
    ServerInterceptor observing = new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(
          ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
        ServerCall.Listener<Q> listener = next.startCall(call, headers);
        if (!call.getMethodDescriptor().getFullMethodName().equals(WRITE_METHOD)) {
          return listener;
        }
        return new ForwardingServerCallListener.SimpleForwardingServerCallListener<>(listener) {
          @Override
          public void onMessage(Q message) {
            // Counted before the service sees it: after the last request the service answers at once,
            // and the client must not find the count one short.
            writeMessagesDelivered.incrementAndGet();
            super.onMessage(message);
          }

          @Override
          public void onCancel() {
            super.onCancel();
            writeCallsCancelled.incrementAndGet();
          }
        };
      }
    };
    BlobStore cas = new GatedStore(disk);
    server = new GrpcCacheServer(new InetSocketAddress("127.0.0.1", 0), cas, cas,
        GrpcOptions.defaults(), b -> b.intercept(observing)).start();
    channel = NettyChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext()
        .maxInboundMessageSize(64 << 20).build();
    blocking = ByteStreamGrpc.newBlockingStub(channel);
    async = ByteStreamGrpc.newStub(channel);
  }

  @AfterEach
  void tearDown() throws Exception {
    if (pool != null) {
      pool.shutdownNow();
    }
    if (channel != null) {
      channel.shutdownNow();
      channel.awaitTermination(5, TimeUnit.SECONDS);
    }
    if (server != null) {
      server.close();
    }
    if (disk != null) {
      disk.close();
    }
  }

  /** Delegates to the disk store; its writers wait for {@link #storeGate} and count bytes. */
  final class GatedStore extends ForwardingStore {
    GatedStore(BlobStore inner) {
      super(inner);
    }

    @Override
    public BlobWriter newWriter(BlobKey key, long size) throws IOException {
      BlobWriter w = delegate.newWriter(key, size);
      return new InterceptingWriter(w) {
        private void pass(long bytes) throws IOException {
          try {
            if (!storeGate.await(30, TimeUnit.SECONDS)) {
              throw new IOException("store gate not opened");
            }
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
          }
          storeBytesWritten.addAndGet(bytes);
        }

        @Override
        public void write(ByteBuffer data) throws IOException {
          pass(data.remaining());
          w.write(data);
        }

        @Override
        public void write(List<ByteBuffer> data) throws IOException {
          long n = 0;
          for (ByteBuffer b : data) {
            n += b.remaining();
          }
          pass(n);
          w.write(data);
        }
      };
    }
  }

  // ---- helpers -------------------------------------------------------------------------------

  static Digest sha(byte[] data) {
    return Digest.of(DigestFunction.SHA256, data);
  }

  static String uploadName(Digest d) {
    return uploadName(d, false);
  }

  static String uploadName(Digest d, boolean compressed) {
    return "inst/uploads/" + UUID.randomUUID() + "/"
        + (compressed ? "compressed-blobs/zstd/" : "blobs/") + d.hash() + "/" + d.sizeBytes();
  }

  static String readName(Digest d) {
    return "inst/blobs/" + d.hash() + "/" + d.sizeBytes();
  }

  static byte[] randomBytes(int n, long seed) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    return b;
  }

  /** Text-like content that compresses well, different for each seed. */
  static byte[] compressible(int n, long seed) {
    String[] words = {"bazel ", "remote ", "cache ", "action ", "digest ", "blob ", "zstd ", "\n",
        "java ", "grpc ", "chunk " + seed + " "};
    Random r = new Random(seed);
    ByteArrayOutputStream out = new ByteArrayOutputStream(n + 32);
    while (out.size() < n) {
      out.writeBytes(words[r.nextInt(words.length)].getBytes(StandardCharsets.US_ASCII));
    }
    byte[] b = new byte[n];
    System.arraycopy(out.toByteArray(), 0, b, 0, n);
    return b;
  }

  static int chunks(int size, int chunk) {
    return Math.max(1, (size + chunk - 1) / chunk);
  }

  WriteStream upload(String name, long offset) {
    return new WriteStream(async, name, offset);
  }

  byte[] read(Digest d) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    Iterator<ReadResponse> it =
        blocking.read(ReadRequest.newBuilder().setResourceName(readName(d)).build());
    while (it.hasNext()) {
      out.writeBytes(it.next().getData().toByteArray());
    }
    return out.toByteArray();
  }

  QueryWriteStatusResponse query(String name) {
    return blocking.queryWriteStatus(
        QueryWriteStatusRequest.newBuilder().setResourceName(name).build());
  }

  static void await(String what, BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting for " + what);
      }
      Thread.sleep(1);
    }
  }

  /** Asserts the blob is stored, complete, and reads back byte for byte. */
  void assertStored(String uploadName, byte[] data) {
    Digest d = sha(data);
    assertThat(disk.contains(BlobKey.cas(d))).as("stored %s", d).isTrue();
    byte[] back = read(d);
    assertThat(back.length).as("bytes read back of %s", d).isEqualTo(data.length);
    assertThat(back).as("content read back of %s", d).isEqualTo(data);
    QueryWriteStatusResponse q = query(uploadName);
    assertThat(q.getComplete()).isTrue();
    assertThat(q.getCommittedSize()).isEqualTo(data.length);
  }

  /** Asserts nothing of {@code d} is stored and no upload of {@code name} is kept. */
  void assertNothingStored(String name, Digest d) {
    assertThat(disk.contains(BlobKey.cas(d))).as("stored %s", d).isFalse();
    QueryWriteStatusResponse q = query(name);
    assertThat(q.getComplete()).isFalse();
    assertThat(q.getCommittedSize()).as("bytes kept for %s", name).isZero();
  }

  /** Uploads {@code data} in {@code chunk}-byte requests with finish_write on the last; the response. */
  WriteResponse uploadInChunks(String name, byte[] data, int chunk) throws Exception {
    WriteStream u = upload(name, 0).send(data, 0, data.length, chunk, true);
    assertThat(u.messages).isEqualTo(chunks(data.length, chunk));
    return u.finish();
  }

  // ---- a. Bazel-sized chunks -----------------------------------------------------------------

  static final int[] SIZES = {1, CHUNK, CHUNK + 1, 300 * KIB, 2 * MIB - 1, 2 * MIB, 5 * MIB + 7};

  @ParameterizedTest(name = "{0}, compressible={1}")
  @CsvSource({"UNCOMPRESSED, false", "UNCOMPRESSED, true", "ZSTD, false", "ZSTD, true"})
  void uploadsIn16KiBChunksRoundTrip(StorageMode mode, boolean compressible) throws Exception {
    start(mode);
    assertThat((long) 2 * MIB).isEqualTo(ByteStreamService.PIPELINE_MIN_SIZE); // both sides covered
    for (int size : SIZES) {
      byte[] data = compressible ? compressible(size, size) : randomBytes(size, size);
      String name = uploadName(sha(data));
      WriteResponse w = uploadInChunks(name, data, CHUNK);
      assertThat(w.getCommittedSize()).as("committed_size of %d bytes", size).isEqualTo(size);
      assertStored(name, data);
    }
  }

  @Test
  void compressedUploadIn16KiBChunksRoundTrips() throws Exception {
    // Bazel with --remote_cache_compression: the zstd stream cut into 16 KiB requests.
    start(StorageMode.ZSTD);
    for (int size : new int[] {300 * KIB, 3 * MIB + 5}) {
      byte[] data = compressible(size, 1000 + size);
      Digest d = sha(data);
      byte[] z = Zstd.compress(data);
      assertThat(z.length).isGreaterThan(CHUNK).isLessThan(size);
      String name = uploadName(d, true);
      WriteStream u = upload(name, 0).send(z, 0, z.length, CHUNK, true);
      // Compressed: the offset after the last (compressed) byte received.
      assertThat(u.finish().getCommittedSize()).isEqualTo(z.length);
      assertStored(name, data);
    }
  }

  @Test
  void reuploadOfAStoredBlobIn16KiBChunksReturnsItsSize() throws Exception {
    start(StorageMode.ZSTD);
    byte[] data = randomBytes(3 * MIB, 42);
    assertThat(uploadInChunks(uploadName(sha(data)), data, CHUNK).getCommittedSize())
        .isEqualTo(data.length);
    String again = uploadName(sha(data));
    assertThat(uploadInChunks(again, data, CHUNK).getCommittedSize()).isEqualTo(data.length);
    assertStored(again, data);
  }

  // ---- b. flow control -----------------------------------------------------------------------

  /**
   * Writes {@code data} in {@code chunk}-byte requests, sending only while the call is ready (as a
   * well-behaved streaming client does), then half-closes. {@code waits} counts the times the client
   * ran out of readiness before everything was sent and had to wait for the server.
   */
  CompletableFuture<WriteResponse> writeWhenReady(ByteStreamGrpc.ByteStreamStub stub, String name,
      byte[] data, int chunk, AtomicInteger waits) {
    final class WhenReady extends LastResponse<WriteResponse>
        implements ClientResponseObserver<WriteRequest, WriteResponse> {
      int pos;
      boolean halfClosed;

      @Override
      public void beforeStart(ClientCallStreamObserver<WriteRequest> requests) {
        requests.setOnReadyHandler(() -> {
          while (pos < data.length && requests.isReady()) {
            int end = Math.min(data.length, pos + chunk);
            WriteRequest.Builder b = WriteRequest.newBuilder().setWriteOffset(pos)
                .setData(ByteString.copyFrom(data, pos, end - pos))
                .setFinishWrite(end == data.length);
            if (pos == 0) {
              b.setResourceName(name);
            }
            requests.onNext(b.build());
            pos = end;
          }
          if (pos < data.length) {
            waits.incrementAndGet();
          } else if (!halfClosed) {
            halfClosed = true;
            requests.onCompleted();
          }
        });
      }
    }
    WhenReady observer = new WhenReady();
    stub.write(observer);
    return observer.result;
  }

  @ParameterizedTest(name = "chunks of {0}")
  @CsvSource({"1024", "16384"})
  void clientWaitingForReadinessWithALowThresholdCompletes(int chunk) throws Exception {
    start(StorageMode.ZSTD);
    // Ready only while nothing is queued in the transport: every request waits for the one before.
    ByteStreamGrpc.ByteStreamStub stub = async.withOnReadyThreshold(1);
    for (int size : new int[] {MIB + 1, 3 * MIB + 1}) {
      byte[] data = randomBytes(size, size + chunk);
      String name = uploadName(sha(data));
      AtomicInteger waits = new AtomicInteger();
      int before = writeMessagesDelivered.get();
      WriteResponse w = writeWhenReady(stub, name, data, chunk, waits).get(30, TimeUnit.SECONDS);
      assertThat(w.getCommittedSize()).isEqualTo(size);
      // The client did have to wait for the server (so flow control was really in play).
      assertThat(waits.get()).as("times the client waited for readiness").isPositive();
      assertThat(writeMessagesDelivered.get() - before).isEqualTo(chunks(size, chunk));
      assertStored(name, data);
    }
  }

  @ParameterizedTest(name = "chunks of {0}")
  @CsvSource({"1024", "16384"})
  void clientSendingAsFastAsItCanWithALowThresholdCompletes(int chunk) throws Exception {
    start(StorageMode.UNCOMPRESSED);
    ByteStreamGrpc.ByteStreamStub stub = async.withOnReadyThreshold(1);
    for (int size : new int[] {MIB + 1, 3 * MIB + 1}) {
      byte[] data = compressible(size, size + chunk);
      String name = uploadName(sha(data));
      // Ignores isReady: everything is queued client-side at once.
      WriteStream u = new WriteStream(stub, name, 0).send(data, 0, size, chunk, true);
      assertThat(u.messages).isEqualTo(chunks(size, chunk));
      assertThat(u.finish().getCommittedSize()).isEqualTo(size);
      assertStored(name, data);
    }
  }

  @Test
  void manySmallChunksOfOneByteToOneKiBComplete() throws Exception {
    // Many more requests than the server asks for ahead of time (64), of sizes that make it ask for
    // the most (1 MiB / size capped at 64).
    start(StorageMode.UNCOMPRESSED);
    byte[] data = randomBytes(2 * MIB + 333, 77);
    String name = uploadName(sha(data));
    WriteStream u = upload(name, 0);
    Random r = new Random(3);
    int p = 0;
    while (p < data.length) {
      int e = Math.min(data.length, p + 1 + r.nextInt(1024));
      u.send(data, p, e, e - p, e == data.length);
      p = e;
    }
    assertThat(u.messages).isGreaterThan(2000);
    assertThat(u.finish().getCommittedSize()).isEqualTo(data.length);
    assertStored(name, data);
  }

  // ---- c. mixed chunk sizes ------------------------------------------------------------------

  @ParameterizedTest
  @EnumSource(StorageMode.class)
  void mixedChunkSizesInOneStream(StorageMode mode) throws Exception {
    start(mode);
    int[][] patterns = {
      {CHUNK, MIB, 1, 64 * KIB, CHUNK, CHUNK, 0, 7, 2 * MIB, CHUNK, 300 * KIB, 1, MIB - 5},
      {1, 2 * MIB, CHUNK, 0, 3, 256 * KIB, CHUNK, MIB + 1, 64 * KIB},
    };
    long seed = 0;
    for (int[] pattern : patterns) {
      byte[] data = compressible(6 * MIB, ++seed);
      String name = uploadName(sha(data));
      WriteStream u = upload(name, 0);
      int p = 0;
      int i = 0;
      while (p < data.length) {
        int e = Math.min(data.length, p + pattern[i++ % pattern.length]);
        u.send(data, p, e, Math.max(1, e - p), e == data.length);
        p = e;
      }
      assertThat(u.offset).isEqualTo(data.length);
      assertThat(u.finish().getCommittedSize()).isEqualTo(data.length);
      assertStored(name, data);
    }
  }

  // ---- d. cancellation and resumption --------------------------------------------------------

  @Test
  void cancelAfterOneMiBOf16KiBChunksKeepsAStableCommittedSizeAndResumes() throws Exception {
    start(StorageMode.ZSTD);
    byte[] data = randomBytes(4 * MIB, 4);
    String name = uploadName(sha(data));
    WriteStream first = upload(name, 0).send(data, 0, MIB, CHUNK, false);
    assertThat(first.messages).isEqualTo(64);
    // Once the call has reached the service, cancel without waiting for the rest to arrive.
    await("first request delivered", () -> writeMessagesDelivered.get() >= 1);
    first.requests.cancel("client gave up", null);
    assertThat(WriteStream.code(first.result)).isEqualTo(Status.Code.CANCELLED);
    await("server told of the cancellation", () -> writeCallsCancelled.get() == 1);

    QueryWriteStatusResponse q1 = query(name);
    assertThat(q1.getComplete()).isFalse();
    long committed = q1.getCommittedSize();
    assertThat(committed).isBetween(0L, (long) MIB);
    assertThat(committed % CHUNK).as("whole requests only").isZero();
    Thread.sleep(200);
    assertThat(query(name).getCommittedSize()).as("asked again 200 ms later").isEqualTo(committed);
    Thread.sleep(300);
    assertThat(query(name).getCommittedSize()).as("asked again 500 ms later").isEqualTo(committed);
    assertThat(disk.contains(BlobKey.cas(sha(data)))).isFalse();

    WriteStream rest = upload(name, committed).send(data, (int) committed, data.length, CHUNK, true);
    assertThat(rest.finish().getCommittedSize()).isEqualTo(data.length);
    assertStored(name, data);
  }

  @Test
  void cancelAfterEveryRequestArrivedKeepsEveryByteReceivedEvenBelowWakeBytes() throws Exception {
    start(StorageMode.UNCOMPRESSED);
    byte[] data = compressible(4 * MIB, 5);
    String name = uploadName(sha(data));
    // Not a multiple of WAKE_BYTES: the last requests are queued for a writer that was not woken.
    int sent = MIB + 5 * CHUNK;
    assertThat(sent % ByteStreamService.WAKE_BYTES).isNotZero();
    WriteStream first = upload(name, 0).send(data, 0, sent, CHUNK, false);
    await("all requests delivered", () -> writeMessagesDelivered.get() == first.messages);
    first.requests.cancel("client gave up", null);
    await("server told of the cancellation", () -> writeCallsCancelled.get() == 1);

    QueryWriteStatusResponse q = query(name);
    assertThat(q.getComplete()).isFalse();
    assertThat(q.getCommittedSize()).isEqualTo(sent);
    Thread.sleep(200);
    assertThat(query(name).getCommittedSize()).isEqualTo(sent);

    // A wrong resumption offset is refused and leaves the kept upload as it was.
    assertThat(upload(name, sent - CHUNK).send(data, sent - CHUNK, sent, CHUNK, false).failure())
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(query(name).getCommittedSize()).isEqualTo(sent);

    WriteStream rest = upload(name, sent).send(data, sent, data.length, CHUNK, true);
    assertThat(rest.finish().getCommittedSize()).isEqualTo(data.length);
    assertStored(name, data);
  }

  @Test
  void deadlineExceededMidStreamKeepsEveryByteReceivedAndResumes() throws Exception {
    // Bazel's --remote_timeout running out in the middle of an upload.
    start(StorageMode.ZSTD);
    byte[] data = randomBytes(3 * MIB, 12);
    String name = uploadName(sha(data));
    int sent = MIB + 3 * CHUNK;
    WriteStream first = new WriteStream(async.withDeadlineAfter(1500, TimeUnit.MILLISECONDS), name, 0)
        .send(data, 0, sent, CHUNK, false);
    await("all requests delivered", () -> writeMessagesDelivered.get() == first.messages);
    assertThat(WriteStream.code(first.result)).isEqualTo(Status.Code.DEADLINE_EXCEEDED);
    await("server told of the cancellation", () -> writeCallsCancelled.get() == 1);
    QueryWriteStatusResponse q = query(name);
    assertThat(q.getComplete()).isFalse();
    assertThat(q.getCommittedSize()).isEqualTo(sent);
    WriteStream rest = upload(name, sent).send(data, sent, data.length, CHUNK, true);
    assertThat(rest.finish().getCommittedSize()).isEqualTo(data.length);
    assertStored(name, data);
  }

  @Test
  void activeUploadReportsWhatItHasWrittenAndCompletesAfterAPause() throws Exception {
    // A client pausing mid-stream below WAKE_BYTES: nothing stalls, the stream completes later.
    start(StorageMode.UNCOMPRESSED);
    byte[] data = randomBytes(3 * MIB, 6);
    String name = uploadName(sha(data));
    int firstPart = 5 * CHUNK; // below WAKE_BYTES
    WriteStream u = upload(name, 0).send(data, 0, firstPart, CHUNK, false);
    await("requests delivered", () -> writeMessagesDelivered.get() == u.messages);
    Thread.sleep(200);
    long committed = query(name).getCommittedSize();
    assertThat(committed).isBetween(0L, (long) firstPart);
    u.send(data, firstPart, data.length, CHUNK, true);
    assertThat(u.finish().getCommittedSize()).isEqualTo(data.length);
    assertStored(name, data);
  }

  /** Waits until {@link #writeMessagesDelivered} has not changed for 500 ms; its value then. */
  int awaitDeliveriesSettled() throws InterruptedException {
    int last = -1;
    long stableSince = System.nanoTime();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (System.nanoTime() < deadline) {
      int now = writeMessagesDelivered.get();
      if (now != last) {
        last = now;
        stableSince = System.nanoTime();
      } else if (now > 0 && System.nanoTime() - stableSince > TimeUnit.MILLISECONDS.toNanos(500)) {
        return now;
      }
      Thread.sleep(5);
    }
    throw new AssertionError("deliveries did not settle: " + last);
  }

  @Test
  void stalledWriterHoldsBackTheStreamWithinTheHandOffBound() throws Exception {
    start(StorageMode.UNCOMPRESSED);
    byte[] data = randomBytes(12 * MIB, 10);
    String name = uploadName(sha(data));
    storeGate = new CountDownLatch(1);
    WriteStream u = upload(name, 0).send(data, 0, data.length, CHUNK, true);
    int delivered = awaitDeliveriesSettled();
    long deliveredBytes = (long) delivered * CHUNK;
    // The call's thread went on taking requests while the writer was stuck (at least a full queue),
    // but no more than the queue plus the batch the writer holds: back-pressure reached the client.
    assertThat(deliveredBytes).isGreaterThanOrEqualTo(ByteStreamService.HANDOFF_BYTES)
        .isLessThanOrEqualTo(2 * ByteStreamService.HANDOFF_BYTES + 2 * CHUNK)
        .isLessThan(data.length);
    assertThat(u.result).isNotDone();
    assertThat(storeBytesWritten).hasValue(0);
    storeGate.countDown();
    assertThat(u.finish().getCommittedSize()).isEqualTo(data.length);
    assertThat(writeMessagesDelivered).hasValue(u.messages);
    assertThat(storeBytesWritten).hasValue(data.length);
    assertStored(name, data);
  }

  @Test
  void cancelWhileTheWriterIsStalledKeepsEveryByteDelivered() throws Exception {
    start(StorageMode.ZSTD);
    byte[] data = compressible(8 * MIB, 11);
    String name = uploadName(sha(data));
    storeGate = new CountDownLatch(1);
    WriteStream first = upload(name, 0).send(data, 0, 7 * MIB, CHUNK, false);
    awaitDeliveriesSettled();
    first.requests.cancel("client gave up", null);
    assertThat(WriteStream.code(first.result)).isEqualTo(Status.Code.CANCELLED);
    Thread.sleep(100);
    storeGate.countDown();
    await("server told of the cancellation", () -> writeCallsCancelled.get() == 1);
    long delivered = (long) writeMessagesDelivered.get() * CHUNK;
    assertThat(delivered).isGreaterThanOrEqualTo(ByteStreamService.HANDOFF_BYTES)
        .isLessThanOrEqualTo(7 * MIB);

    QueryWriteStatusResponse q = query(name);
    assertThat(q.getComplete()).isFalse();
    assertThat(q.getCommittedSize()).isEqualTo(delivered);
    assertThat(storeBytesWritten).hasValue(delivered);
    Thread.sleep(200);
    assertThat(query(name).getCommittedSize()).isEqualTo(delivered);

    // The rest as one request with finish_write.
    WriteStream rest = upload(name, delivered).send(data, (int) delivered, data.length, true);
    assertThat(rest.messages).isEqualTo(1);
    assertThat(rest.finish().getCommittedSize()).isEqualTo(data.length);
    assertStored(name, data);
  }

  // ---- e. request errors ---------------------------------------------------------------------

  @ParameterizedTest(name = "{0} bytes")
  @CsvSource({"307200", "3145728"})
  void halfCloseWithoutFinishWriteIsInvalidArgumentAndStoresNothing(int size) throws Exception {
    start(StorageMode.ZSTD);
    byte[] data = randomBytes(size, size);
    Digest d = sha(data);
    String name = uploadName(d);
    int sent = size - 3 * CHUNK;
    WriteStream u = upload(name, 0).send(data, 0, sent, CHUNK, false);
    assertThat(u.failure()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(disk.contains(BlobKey.cas(d))).isFalse();
    // The bytes received are kept for resumption, as for any stream that ends without finish_write.
    QueryWriteStatusResponse q = query(name);
    assertThat(q.getComplete()).isFalse();
    assertThat(q.getCommittedSize()).isEqualTo(sent);
    assertThat(upload(name, sent).send(data, sent, size, CHUNK, true).finish().getCommittedSize())
        .isEqualTo(size);
    assertStored(name, data);
  }

  @Test
  void wrongWriteOffsetInTheMiddleIsInvalidArgumentAndStoresNothing() throws Exception {
    start(StorageMode.ZSTD);
    byte[] data = randomBytes(3 * MIB, 7);
    Digest d = sha(data);
    int good = MIB + 3 * CHUNK;

    // A gap.
    String gapName = uploadName(d);
    WriteStream gap = upload(gapName, 0).send(data, 0, good, CHUNK, false);
    gap.offset += CHUNK;
    assertThat(gap.send(data, good + CHUNK, data.length, CHUNK, true).failure())
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertNothingStored(gapName, d);

    // An overlap (a request sent twice).
    String dupName = uploadName(d);
    WriteStream dup = upload(dupName, 0).send(data, 0, good, CHUNK, false);
    dup.offset -= CHUNK;
    assertThat(dup.send(data, good - CHUNK, data.length, CHUNK, true).failure())
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertNothingStored(dupName, d);

    // Nothing left behind stands in the way of a good upload.
    String okName = uploadName(d);
    assertThat(uploadInChunks(okName, data, CHUNK).getCommittedSize()).isEqualTo(data.length);
    assertStored(okName, data);
  }

  @Test
  void wrongContentIsInvalidArgumentAndStoresNothing() throws Exception {
    start(StorageMode.ZSTD);
    byte[] data = randomBytes(3 * MIB, 8);
    Digest d = sha(data);

    byte[] other = randomBytes(3 * MIB, 9);
    String otherName = uploadName(d);
    assertThat(upload(otherName, 0).send(other, 0, other.length, CHUNK, true).failure())
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertNothingStored(otherName, d);
    assertThat(disk.contains(BlobKey.cas(sha(other)))).isFalse();

    byte[] flipped = data.clone();
    flipped[MIB + 12345] ^= 0x40;
    String flippedName = uploadName(d);
    assertThat(upload(flippedName, 0).send(flipped, 0, flipped.length, CHUNK, true).failure())
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertNothingStored(flippedName, d);

    // Too few bytes at finish_write, and more bytes than the digest's size.
    String shortName = uploadName(d);
    assertThat(upload(shortName, 0).send(data, 0, data.length - CHUNK, CHUNK, true).failure())
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertNothingStored(shortName, d);
    byte[] longer = new byte[data.length + CHUNK];
    System.arraycopy(data, 0, longer, 0, data.length);
    String longName = uploadName(d);
    assertThat(upload(longName, 0).send(longer, 0, longer.length, CHUNK, true).failure())
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertNothingStored(longName, d);

    String okName = uploadName(d);
    assertThat(uploadInChunks(okName, data, CHUNK).getCommittedSize()).isEqualTo(data.length);
    assertStored(okName, data);
  }

  // ---- f. concurrency ------------------------------------------------------------------------

  @Test
  void eightConcurrentUploadsIn16KiBChunksOnOneChannel() throws Exception {
    start(StorageMode.ZSTD);
    int n = 8;
    pool = Executors.newFixedThreadPool(n);
    List<byte[]> blobs = new ArrayList<>();
    List<String> names = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      blobs.add(i % 2 == 0 ? randomBytes(3 * MIB, 100 + i) : compressible(3 * MIB, 100 + i));
      names.add(uploadName(sha(blobs.get(i))));
    }
    CountDownLatch go = new CountDownLatch(1);
    List<Future<WriteResponse>> results = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      byte[] data = blobs.get(i);
      String name = names.get(i);
      results.add(pool.submit(() -> {
        go.await();
        return uploadInChunks(name, data, CHUNK);
      }));
    }
    go.countDown();
    for (int i = 0; i < n; i++) {
      assertThat(results.get(i).get(45, TimeUnit.SECONDS).getCommittedSize())
          .as("upload %d", i).isEqualTo(3 * MIB);
    }
    assertThat(writeMessagesDelivered.get()).isEqualTo(n * chunks(3 * MIB, CHUNK));
    for (int i = 0; i < n; i++) {
      assertStored(names.get(i), blobs.get(i));
    }
  }
}
