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
import io.bazelcache.ac.CompletenessCheckingStore;
import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.BlobWriter;
import io.bazelcache.storage.ForwardingStore;
import io.bazelcache.storage.disk.DiskStore;
import io.bazelcache.storage.disk.StorageMode;
import io.grpc.CallOptions;
import io.grpc.ForwardingServerCallListener;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.StreamObserver;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * ByteStream.Write of blobs of {@link ByteStreamService#PIPELINE_MIN_SIZE} or more (written by a
 * per-call writer thread) through a real server on loopback over a real DiskStore.
 */
@Timeout(120)
class GrpcPipelinedWriteTest {
  static final String WRITE_METHOD = "google.bytestream.ByteStream/Write";
  static final int MIB = 1024 * 1024;

  @TempDir Path dir;
  DiskStore disk;
  GrpcCacheServer server;
  ManagedChannel channel;
  ByteStreamGrpc.ByteStreamBlockingStub blocking;
  ByteStreamGrpc.ByteStreamStub async;

  /** Write messages the server has handed to the service (its onNext returned). */
  final AtomicInteger writeMessagesDelivered = new AtomicInteger();
  /** Store writes are slowed by this many microseconds per 64 KiB, to make the writer thread lag. */
  volatile long writeDelayMicrosPer64K;
  /** Bytes the store's writers have been given. */
  final AtomicLong storeBytesWritten = new AtomicLong();

  void start(StorageMode mode) throws Exception {
    disk = DiskStore.open(dir.resolve("cas"), 1L << 30, 0, mode, 64L << 20);
    BlobStore cas = new SlowStore(disk);
    ServerInterceptor counting = new ServerInterceptor() {
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
            super.onMessage(message);
            writeMessagesDelivered.incrementAndGet();
          }
        };
      }
    };
    server = new GrpcCacheServer(new InetSocketAddress("127.0.0.1", 0), cas,
        new CompletenessCheckingStore(cas), GrpcOptions.defaults().withMaxBlobSize(64L << 20),
        b -> b.intercept(counting)).start();
    channel = NettyChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext()
        .maxInboundMessageSize(64 << 20).build();
    blocking = ByteStreamGrpc.newBlockingStub(channel);
    async = ByteStreamGrpc.newStub(channel);
  }

  @AfterEach
  void tearDown() throws Exception {
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

  // ---- store wrapper -------------------------------------------------------------------------

  /** Delegates to the disk store; its writers count bytes and can be slowed down. */
  final class SlowStore extends ForwardingStore {
    SlowStore(BlobStore inner) {
      super(inner);
    }

    @Override
    public BlobWriter newWriter(BlobKey key, long size) throws IOException {
      BlobWriter w = delegate.newWriter(key, size);
      return new InterceptingWriter(w) {
        private void delay(long bytes) throws IOException {
          long micros = writeDelayMicrosPer64K * bytes / 65536;
          if (micros > 0) {
            try {
              TimeUnit.MICROSECONDS.sleep(micros);
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
              throw new IOException("interrupted", e);
            }
          }
        }

        @Override
        public void write(ByteBuffer data) throws IOException {
          long n = data.remaining();
          delay(n);
          w.write(data);
          storeBytesWritten.addAndGet(n);
        }

        @Override
        public void write(List<ByteBuffer> data) throws IOException {
          long n = 0;
          for (ByteBuffer b : data) {
            n += b.remaining();
          }
          delay(n);
          w.write(data);
          storeBytesWritten.addAndGet(n);
        }
      };
    }
  }

  // ---- helpers -------------------------------------------------------------------------------

  static Digest sha(byte[] data) {
    return Digest.of(DigestFunction.SHA256, data);
  }

  static String uploadName(Digest d, boolean compressed) {
    return "inst/uploads/" + UUID.randomUUID() + "/"
        + (compressed ? "compressed-blobs/zstd/" : "blobs/") + d.hash() + "/" + d.sizeBytes();
  }

  static String readName(Digest d, boolean compressed) {
    return "inst/" + (compressed ? "compressed-blobs/zstd/" : "blobs/") + d.hash() + "/"
        + d.sizeBytes();
  }

  /** Partly compressible content: random runs and runs of a repeated pattern. */
  static byte[] content(int n, long seed) {
    Random r = new Random(seed);
    byte[] b = new byte[n];
    int p = 0;
    while (p < n) {
      int run = Math.min(n - p, 1 + r.nextInt(4096));
      if (r.nextBoolean()) {
        byte[] rnd = new byte[run];
        r.nextBytes(rnd);
        System.arraycopy(rnd, 0, b, p, run);
      } else {
        for (int i = 0; i < run; i++) {
          b[p + i] = (byte) ("bazel-cache ".charAt(i % 12));
        }
      }
      p += run;
    }
    return b;
  }

  /** An open Write stream on this test's server. */
  final class Upload extends WriteStream {
    Upload(String name, long startOffset) {
      super(async, name, startOffset);
    }
  }

  byte[] read(String name) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    Iterator<ReadResponse> it = blocking.read(ReadRequest.newBuilder().setResourceName(name).build());
    while (it.hasNext()) {
      out.writeBytes(it.next().getData().toByteArray());
    }
    return out.toByteArray();
  }

  QueryWriteStatusResponse query(String name) {
    return blocking.queryWriteStatus(QueryWriteStatusRequest.newBuilder().setResourceName(name).build());
  }

  // ---- round trips ---------------------------------------------------------------------------

  @ParameterizedTest(name = "{0} bytes in chunks of {1}, compressed={2}, {3}")
  @CsvSource({
    "3145729, 65536, false, UNCOMPRESSED",
    "3145729, 1048576, false, ZSTD",
    "8388608, 65536, false, ZSTD",
    "8388608, 1048576, false, UNCOMPRESSED",
    "3145729, 65536, true, ZSTD",
    "3145729, 1048576, true, UNCOMPRESSED",
    "8388608, 65536, true, UNCOMPRESSED",
    "8388608, 1048576, true, ZSTD",
  })
  void pipelinedUploadRoundTrips(int size, int chunk, boolean compressed, StorageMode mode)
      throws Exception {
    start(mode);
    assertThat((long) size).isGreaterThanOrEqualTo(ByteStreamService.PIPELINE_MIN_SIZE);
    byte[] data = content(size, size + chunk);
    Digest d = sha(data);
    byte[] sent = compressed ? Zstd.compress(data) : data;
    if (compressed) {
      assertThat(sent.length).isLessThan(size).isGreaterThan(chunk);
    }
    WriteStream u = new Upload(uploadName(d, compressed), 0).send(sent, 0, sent.length, chunk, true);
    WriteResponse w = u.finish();
    // Uncompressed: the blob's size; compressed: the compressed bytes received.
    assertThat(w.getCommittedSize()).isEqualTo(compressed ? sent.length : size);
    assertThat(disk.contains(BlobKey.cas(d))).isTrue();
    assertThat(storeBytesWritten).hasValue(size);

    assertThat(read(readName(d, false))).isEqualTo(data);
    assertThat(Zstd.decompress(read(readName(d, true)), size)).isEqualTo(data);
    QueryWriteStatusResponse q = query(u.name);
    assertThat(q.getComplete()).isTrue();
    assertThat(q.getCommittedSize()).isEqualTo(size);
  }

  @Test
  void pipelinedUploadWithManySmallAndUnevenChunks() throws Exception {
    start(StorageMode.UNCOMPRESSED);
    byte[] data = content(3 * MIB + 12345, 99);
    Digest d = sha(data);
    WriteStream u = new Upload(uploadName(d, false), 0);
    Random r = new Random(5);
    int p = 0;
    while (p < data.length) {
      int e = Math.min(data.length, p + r.nextInt(100_000)); // includes empty chunks
      u.send(data, p, e, Math.max(1, e - p), e == data.length);
      p = e;
    }
    assertThat(u.finish().getCommittedSize()).isEqualTo(data.length);
    assertThat(read(readName(d, false))).isEqualTo(data);
  }

  // ---- failures ------------------------------------------------------------------------------

  @Test
  void pipelinedUploadWithWrongContentFailsAndStoresNothing() throws Exception {
    start(StorageMode.ZSTD);
    byte[] data = content(4 * MIB, 1);
    byte[] other = content(4 * MIB, 2);
    Digest d = sha(data);

    // Other bytes of the right size.
    String name = uploadName(d, false);
    assertThat(new Upload(name, 0).send(other, 0, other.length, 65536, true).failure())
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(query(name).getCommittedSize()).isZero(); // not kept for resumption
    // One flipped byte near the end, in 1 MiB chunks.
    byte[] flipped = data.clone();
    flipped[flipped.length - 10] ^= 1;
    assertThat(new Upload(uploadName(d, false), 0).send(flipped, 0, flipped.length, MIB, true)
        .failure()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    // Too few bytes at finish_write.
    assertThat(new Upload(uploadName(d, false), 0).send(data, 0, 3 * MIB, 65536, true).failure())
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    // Compressed: other content, and the right content cut inside its zstd frame.
    byte[] zOther = Zstd.compress(other);
    assertThat(new Upload(uploadName(d, true), 0).send(zOther, 0, zOther.length, 65536, true)
        .failure()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    byte[] z = Zstd.compress(data);
    assertThat(new Upload(uploadName(d, true), 0).send(z, 0, z.length - 100, 65536, true).failure())
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    // A gap in the offsets after a few chunks.
    WriteStream gap = new Upload(uploadName(d, false), 0).send(data, 0, 5 * 65536, 65536, false);
    gap.offset += 1;
    assertThat(gap.send(data, 5 * 65536 + 1, data.length, 65536, true).failure())
        .isEqualTo(Status.Code.INVALID_ARGUMENT);

    assertThat(disk.contains(BlobKey.cas(d))).isFalse();
    assertThat(disk.contains(BlobKey.cas(sha(other)))).isFalse();
    assertThat(disk.contains(BlobKey.cas(sha(flipped)))).isFalse();

    // Nothing left behind stands in the way of a good upload.
    assertThat(new Upload(uploadName(d, false), 0).send(data, 0, data.length, 65536, true).finish()
        .getCommittedSize()).isEqualTo(data.length);
    assertThat(read(readName(d, false))).isEqualTo(data);
  }

  // ---- cancellation and resumption -----------------------------------------------------------

  @ParameterizedTest(name = "chunks of {0}")
  @ValueSource(ints = {65536, 1048576})
  void cancelledPipelinedUploadReportsEverythingReceivedAndResumes(int chunk) throws Exception {
    start(StorageMode.UNCOMPRESSED);
    // The writer thread lags behind what the server received (about 64 ms per MiB written).
    writeDelayMicrosPer64K = 4000;
    byte[] data = content(8 * MIB, chunk);
    Digest d = sha(data);
    String name = uploadName(d, false);
    int half = data.length / 2;
    WriteStream first = new Upload(name, 0).send(data, 0, half, chunk, false);
    // Wait until the service has been handed every message sent (not until they are written).
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (writeMessagesDelivered.get() < first.messages && System.nanoTime() < deadline) {
      Thread.sleep(1);
    }
    assertThat(writeMessagesDelivered).hasValue(first.messages);
    long writtenAtCancel = storeBytesWritten.get();
    first.requests.cancel("client gave up", null);

    // Right away: all the bytes received, not the (smaller) number written so far.
    QueryWriteStatusResponse q = query(name);
    assertThat(q.getComplete()).isFalse();
    assertThat(q.getCommittedSize())
        .as("QueryWriteStatus right after cancelling (%d bytes had been written then)", writtenAtCancel)
        .isEqualTo(half);
    assertThat(storeBytesWritten).hasValue(half);
    assertThat(WriteStream.code(first.result)).isEqualTo(Status.Code.CANCELLED);
    assertThat(query(name).getCommittedSize()).isEqualTo(half);

    writeDelayMicrosPer64K = 0;
    WriteResponse w = new Upload(name, half).send(data, half, data.length, chunk, true).finish();
    assertThat(w.getCommittedSize()).isEqualTo(data.length);
    assertThat(disk.contains(BlobKey.cas(d))).isTrue();
    assertThat(read(readName(d, false))).isEqualTo(data);
    q = query(name);
    assertThat(q.getComplete()).isTrue();
    assertThat(q.getCommittedSize()).isEqualTo(data.length);
  }

  // ---- malformed requests --------------------------------------------------------------------

  static final MethodDescriptor.Marshaller<byte[]> RAW = new MethodDescriptor.Marshaller<>() {
    @Override
    public InputStream stream(byte[] value) {
      return new ByteArrayInputStream(value);
    }

    @Override
    public byte[] parse(InputStream stream) {
      try {
        return stream.readAllBytes();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  };

  static final MethodDescriptor<byte[], byte[]> RAW_WRITE = MethodDescriptor.<byte[], byte[]>newBuilder()
      .setType(MethodDescriptor.MethodType.CLIENT_STREAMING)
      .setFullMethodName(WRITE_METHOD)
      .setRequestMarshaller(RAW)
      .setResponseMarshaller(RAW)
      .build();

  /** Sends {@code messages} as raw Write request messages, then half-closes; the response or error. */
  CompletableFuture<byte[]> rawWrite(List<byte[]> messages) {
    LastResponse<byte[]> responses = new LastResponse<>();
    StreamObserver<byte[]> req = ClientCalls.asyncClientStreamingCall(
        channel.newCall(RAW_WRITE, CallOptions.DEFAULT), responses);
    for (byte[] m : messages) {
      req.onNext(m);
    }
    req.onCompleted();
    return responses.result;
  }

  @Test
  void rawWriteOfAValidMessageWorks() throws Exception {
    // The raw method descriptor reaches the real Write (so the failures below are the parser's).
    start(StorageMode.UNCOMPRESSED);
    byte[] data = content(1000, 3);
    Digest d = sha(data);
    byte[] msg = WriteRequest.newBuilder().setResourceName(uploadName(d, false)).setFinishWrite(true)
        .setData(ByteString.copyFrom(data)).build().toByteArray();
    byte[] resp = rawWrite(List.of(msg)).get(30, TimeUnit.SECONDS);
    assertThat(WriteResponse.parseFrom(resp).getCommittedSize()).isEqualTo(1000);
    assertThat(read(readName(d, false))).isEqualTo(data);
  }

  @Test
  void malformedWriteRequestIsInvalidArgument() throws Exception {
    start(StorageMode.UNCOMPRESSED);
    byte[] data = content(1000, 4);
    Digest d = sha(data);
    String name = uploadName(d, false);
    byte[] nameField = WriteRequest.newBuilder().setResourceName(name).build().toByteArray();
    List<byte[]> malformed = List.of(
        bytes(0x52, 0x05, 1, 2), // data: length beyond the end
        concat(nameField, bytes(0x10, 0x80)), // write_offset: truncated varint
        bytes(0x00, 0x01), // field number 0
        bytes(0x0A, 0x02, 0xC3, 0x28), // resource_name: invalid UTF-8
        concat(nameField, bytes(0x3B, 0x3C)), // a group
        concat(nameField, bytes(0x3F))); // wire type 7
    for (byte[] m : malformed) {
      assertThat(WriteStream.code(rawWrite(List.of(m))))
          .as("malformed %s", Arrays.toString(m))
          .isEqualTo(Status.Code.INVALID_ARGUMENT);
    }
    assertThat(disk.contains(BlobKey.cas(d))).isFalse();
  }

  @Test
  void malformedMessageInTheMiddleOfAPipelinedUploadIsInvalidArgument() throws Exception {
    start(StorageMode.UNCOMPRESSED);
    byte[] data = content(3 * MIB, 5);
    Digest d = sha(data);
    String name = uploadName(d, false);
    List<byte[]> messages = new ArrayList<>();
    int chunk = 65536;
    for (int p = 0; p < MIB; p += chunk) {
      WriteRequest.Builder b = WriteRequest.newBuilder().setWriteOffset(p)
          .setData(ByteString.copyFrom(data, p, chunk));
      if (p == 0) {
        b.setResourceName(name);
      }
      messages.add(b.build().toByteArray());
    }
    // Then a chunk whose data field claims more bytes than the message holds.
    byte[] next = WriteRequest.newBuilder().setWriteOffset(MIB)
        .setData(ByteString.copyFrom(data, MIB, chunk)).build().toByteArray();
    messages.add(Arrays.copyOf(next, next.length - 1));
    assertThat(WriteStream.code(rawWrite(messages))).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(disk.contains(BlobKey.cas(d))).isFalse();
  }

  static byte[] bytes(int... values) {
    byte[] b = new byte[values.length];
    for (int i = 0; i < values.length; i++) {
      b[i] = (byte) values[i];
    }
    return b;
  }

  static byte[] concat(byte[] a, byte[] b) {
    byte[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
