package io.bazelcache.grpc;

import static org.assertj.core.api.Assertions.assertThat;

import build.bazel.remote.execution.v2.CacheCapabilities;
import build.bazel.remote.execution.v2.CapabilitiesGrpc;
import build.bazel.remote.execution.v2.Compressor;
import build.bazel.remote.execution.v2.DigestFunction;
import build.bazel.remote.execution.v2.GetCapabilitiesRequest;
import build.bazel.remote.execution.v2.ServerCapabilities;
import build.bazel.remote.execution.v2.SymlinkAbsolutePathStrategy;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.reflection.v1.ServerReflectionGrpc;
import io.grpc.reflection.v1.ServerReflectionRequest;
import io.grpc.reflection.v1.ServerReflectionResponse;
import io.grpc.reflection.v1.ServiceResponse;
import io.grpc.stub.StreamObserver;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class CapabilitiesHealthReflectionTest {
  GrpcServerFixture f;

  @BeforeEach
  void setUp() throws Exception {
    f = new GrpcServerFixture(GrpcOptions.defaults().withMaxBlobSize(1234567), true);
  }

  @AfterEach
  void tearDown() throws Exception {
    f.close();
  }

  @Test
  void capabilitiesAdvertiseWhatIsImplemented() {
    ServerCapabilities caps = CapabilitiesGrpc.newBlockingStub(f.channel)
        .getCapabilities(GetCapabilitiesRequest.newBuilder().setInstanceName("any").build());
    CacheCapabilities c = caps.getCacheCapabilities();
    assertThat(c.getDigestFunctionsList())
        .containsExactly(DigestFunction.Value.SHA256, DigestFunction.Value.BLAKE3);
    assertThat(c.getSupportedCompressorsList()).containsExactly(Compressor.Value.ZSTD);
    assertThat(c.getSupportedBatchUpdateCompressorsList()).containsExactly(Compressor.Value.ZSTD);
    assertThat(c.getMaxBatchTotalSizeBytes()).isEqualTo(4 * 1024 * 1024);
    assertThat(c.getMaxCasBlobSizeBytes()).isEqualTo(1234567);
    assertThat(c.getActionCacheUpdateCapabilities().getUpdateEnabled()).isTrue();
    assertThat(c.getSymlinkAbsolutePathStrategy())
        .isEqualTo(SymlinkAbsolutePathStrategy.Value.ALLOWED);
    assertThat(c.getSplitBlobSupport()).isFalse();
    assertThat(c.getSpliceBlobSupport()).isFalse();
    assertThat(caps.hasExecutionCapabilities()).isFalse();
    assertThat(caps.getLowApiVersion().getMajor()).isEqualTo(2);
    assertThat(caps.getLowApiVersion().getMinor()).isEqualTo(0);
    assertThat(caps.getHighApiVersion().getMajor()).isEqualTo(2);
    assertThat(caps.getHighApiVersion().getMinor()).isEqualTo(3);
  }

  @Test
  void healthServingForBothNames() {
    HealthGrpc.HealthBlockingStub health = HealthGrpc.newBlockingStub(f.channel);
    for (String service : List.of("", "/grpc.health.v1.Health/Check")) {
      HealthCheckResponse r =
          health.check(HealthCheckRequest.newBuilder().setService(service).build());
      assertThat(r.getStatus()).as(service).isEqualTo(HealthCheckResponse.ServingStatus.SERVING);
    }
  }

  @Test
  void reflectionListsServices() throws Exception {
    CompletableFuture<ServerReflectionResponse> result = new CompletableFuture<>();
    StreamObserver<ServerReflectionRequest> req = ServerReflectionGrpc.newStub(f.channel)
        .serverReflectionInfo(new StreamObserver<>() {
          @Override
          public void onNext(ServerReflectionResponse value) {
            result.complete(value);
          }

          @Override
          public void onError(Throwable t) {
            result.completeExceptionally(t);
          }

          @Override
          public void onCompleted() {}
        });
    req.onNext(ServerReflectionRequest.newBuilder().setListServices("").build());
    req.onCompleted();
    List<String> names = result.get(10, TimeUnit.SECONDS).getListServicesResponse()
        .getServiceList().stream().map(ServiceResponse::getName).toList();
    assertThat(names).contains(
        "build.bazel.remote.execution.v2.Capabilities",
        "build.bazel.remote.execution.v2.ActionCache",
        "build.bazel.remote.execution.v2.ContentAddressableStorage",
        "google.bytestream.ByteStream",
        "grpc.health.v1.Health");
  }

  @Test
  void customizerCanAddGlobalInterceptors() throws Exception {
    java.util.List<String> methods = new java.util.concurrent.CopyOnWriteArrayList<>();
    io.grpc.ServerInterceptor recorder = new io.grpc.ServerInterceptor() {
      @Override
      public <Q, R> io.grpc.ServerCall.Listener<Q> interceptCall(io.grpc.ServerCall<Q, R> call,
          io.grpc.Metadata headers, io.grpc.ServerCallHandler<Q, R> next) {
        methods.add(call.getMethodDescriptor().getFullMethodName());
        return next.startCall(call, headers);
      }
    };
    io.bazelcache.testing.MemoryBlobStore store = new io.bazelcache.testing.MemoryBlobStore();
    try (GrpcCacheServer server = new GrpcCacheServer(
        new java.net.InetSocketAddress("127.0.0.1", 0), store, store, GrpcOptions.defaults(),
        b -> b.intercept(recorder)).start()) {
      io.grpc.ManagedChannel ch = io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder
          .forAddress("127.0.0.1", server.port()).usePlaintext().build();
      try {
        CapabilitiesGrpc.newBlockingStub(ch).getCapabilities(GetCapabilitiesRequest.getDefaultInstance());
      } finally {
        ch.shutdownNow();
      }
    }
    assertThat(methods).containsExactly("build.bazel.remote.execution.v2.Capabilities/GetCapabilities");
  }
}
