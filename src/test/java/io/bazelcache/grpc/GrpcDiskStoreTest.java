package io.bazelcache.grpc;

import static io.bazelcache.grpc.GrpcServerFixture.random;
import static org.assertj.core.api.Assertions.assertThat;

import build.bazel.remote.execution.v2.ActionCacheGrpc;
import build.bazel.remote.execution.v2.ActionResult;
import build.bazel.remote.execution.v2.BatchReadBlobsRequest;
import build.bazel.remote.execution.v2.BatchReadBlobsResponse;
import build.bazel.remote.execution.v2.BatchUpdateBlobsRequest;
import build.bazel.remote.execution.v2.Compressor;
import build.bazel.remote.execution.v2.ContentAddressableStorageGrpc;
import build.bazel.remote.execution.v2.GetActionResultRequest;
import build.bazel.remote.execution.v2.OutputFile;
import build.bazel.remote.execution.v2.UpdateActionResultRequest;
import com.github.luben.zstd.Zstd;
import com.google.bytestream.ByteStreamGrpc;
import com.google.bytestream.ByteStreamProto.QueryWriteStatusRequest;
import com.google.bytestream.ByteStreamProto.ReadRequest;
import com.google.bytestream.ByteStreamProto.ReadResponse;
import com.google.bytestream.ByteStreamProto.WriteRequest;
import com.google.bytestream.ByteStreamProto.WriteResponse;
import com.google.protobuf.ByteString;
import io.bazelcache.ac.CompletenessCheckingStore;
import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.disk.DiskStore;
import io.bazelcache.storage.disk.StorageMode;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCallStreamObserver;
import java.io.ByteArrayOutputStream;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The gRPC services over the real DiskStore, in both storage modes. */
class GrpcDiskStoreTest {
  @TempDir Path dir;

  @ParameterizedTest
  @EnumSource(StorageMode.class)
  void roundTripsThroughTheDiskStore(StorageMode mode) throws Exception {
    try (DiskStore disk = DiskStore.open(dir, 1L << 30, 0, mode, 64L << 20);
        GrpcCacheServer server = new GrpcCacheServer(new InetSocketAddress("127.0.0.1", 0), disk,
            new CompletenessCheckingStore(disk), GrpcOptions.defaults().withMaxBlobSize(64L << 20))
            .start()) {
      ManagedChannel ch = NettyChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext()
          .maxInboundMessageSize(16 << 20).build();
      try {
        var bs = ByteStreamGrpc.newBlockingStub(ch);
        byte[] data = new byte[5 * 1024 * 1024 + 3];
        for (int i = 0; i < data.length; i++) {
          data[i] = (byte) (i % 89 < 40 ? 'a' : i);
        }
        for (DigestFunction fn : DigestFunction.values()) {
          Digest d = Digest.of(fn, data);
          String fnSeg = fn == DigestFunction.SHA256 ? "" : fn.lowerName() + "/";
          String upload = "i/uploads/u-" + fn + "/blobs/" + fnSeg + d.hash() + "/" + d.sizeBytes();
          int half = data.length / 2;

          // Interrupted upload, resumed from QueryWriteStatus.
          ClientCallStreamObserver<WriteRequest> w = write(ByteStreamGrpc.newStub(ch), new CompletableFuture<>());
          w.onNext(WriteRequest.newBuilder().setResourceName(upload)
              .setData(ByteString.copyFrom(data, 0, half)).build());
          long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
          while (committed(bs, upload) < half && System.nanoTime() < deadline) {
            Thread.sleep(10);
          }
          w.cancel("interrupted", null);
          Thread.sleep(100);
          assertThat(committed(bs, upload)).isEqualTo(half);
          CompletableFuture<WriteResponse> done = new CompletableFuture<>();
          ClientCallStreamObserver<WriteRequest> w2 = write(ByteStreamGrpc.newStub(ch), done);
          w2.onNext(WriteRequest.newBuilder().setResourceName(upload).setWriteOffset(half)
              .setData(ByteString.copyFrom(data, half, data.length - half)).setFinishWrite(true).build());
          w2.onCompleted();
          assertThat(done.get(30, TimeUnit.SECONDS).getCommittedSize()).isEqualTo(data.length);

          String read = "i/blobs/" + fnSeg + d.hash() + "/" + d.sizeBytes();
          assertThat(read(bs, read, 0)).isEqualTo(data);
          assertThat(read(bs, read, 3_000_000))
              .isEqualTo(java.util.Arrays.copyOfRange(data, 3_000_000, data.length));
          String zread = "i/compressed-blobs/zstd/" + fnSeg + d.hash() + "/" + d.sizeBytes();
          byte[] z = read(bs, zread, 0);
          assertThat(z.length).isLessThan(data.length);
          assertThat(decompressAll(z, data.length)).isEqualTo(data);
        }

        // Batch update (one zstd item) and read back compressed; then an AC entry that refers to it.
        byte[] small = random(20_000, 1);
        Digest sd = Digest.of(DigestFunction.SHA256, small);
        var cas = ContentAddressableStorageGrpc.newBlockingStub(ch);
        var resp = cas.batchUpdateBlobs(BatchUpdateBlobsRequest.newBuilder()
            .addRequests(BatchUpdateBlobsRequest.Request.newBuilder()
                .setDigest(GrpcServerFixture.proto(sd)).setCompressor(Compressor.Value.ZSTD)
                .setData(ByteString.copyFrom(Zstd.compress(small)))).build());
        assertThat(resp.getResponses(0).getStatus().getCode()).isZero();
        BatchReadBlobsResponse r = cas.batchReadBlobs(BatchReadBlobsRequest.newBuilder()
            .addDigests(GrpcServerFixture.proto(sd)).addAcceptableCompressors(Compressor.Value.ZSTD)
            .build());
        BatchReadBlobsResponse.Response item = r.getResponses(0);
        byte[] got = item.getCompressor() == Compressor.Value.ZSTD
            ? decompressAll(item.getData().toByteArray(), small.length)
            : item.getData().toByteArray();
        assertThat(got).isEqualTo(small);

        var ac = ActionCacheGrpc.newBlockingStub(ch);
        var action = GrpcServerFixture.proto("action".getBytes());
        ac.updateActionResult(UpdateActionResultRequest.newBuilder().setActionDigest(action)
            .setActionResult(ActionResult.newBuilder().addOutputFiles(
                OutputFile.newBuilder().setPath("o").setDigest(GrpcServerFixture.proto(sd)))).build());
        ActionResult hit = ac.getActionResult(GetActionResultRequest.newBuilder()
            .setActionDigest(action).addInlineOutputFiles("o").build());
        assertThat(hit.getOutputFiles(0).getContents().toByteArray()).isEqualTo(small);
      } finally {
        ch.shutdownNow();
      }
    }
  }

  /** Decompresses a stream of one or more zstd frames (possibly with skippable frames). */
  static byte[] decompressAll(byte[] z, int size) throws Exception {
    try (var in = new com.github.luben.zstd.ZstdInputStream(new java.io.ByteArrayInputStream(z))) {
      byte[] out = in.readAllBytes();
      assertThat(out.length).isEqualTo(size);
      return out;
    }
  }

  static long committed(ByteStreamGrpc.ByteStreamBlockingStub bs, String name) {
    return bs.queryWriteStatus(QueryWriteStatusRequest.newBuilder().setResourceName(name).build())
        .getCommittedSize();
  }

  static byte[] read(ByteStreamGrpc.ByteStreamBlockingStub bs, String name, long offset) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    Iterator<ReadResponse> it = bs.read(
        ReadRequest.newBuilder().setResourceName(name).setReadOffset(offset).build());
    while (it.hasNext()) {
      out.writeBytes(it.next().getData().toByteArray());
    }
    return out.toByteArray();
  }

  static ClientCallStreamObserver<WriteRequest> write(
      ByteStreamGrpc.ByteStreamStub stub, CompletableFuture<WriteResponse> done) {
    return (ClientCallStreamObserver<WriteRequest>) stub.write(new LastResponse<>(done));
  }
}
