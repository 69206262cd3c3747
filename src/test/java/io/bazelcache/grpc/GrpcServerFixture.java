package io.bazelcache.grpc;

import io.bazelcache.ac.CompletenessCheckingStore;
import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.testing.MemoryBlobStore;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;

/** A real server on 127.0.0.1 (port 0) over a {@link MemoryBlobStore}, and a plaintext channel to it. */
final class GrpcServerFixture implements AutoCloseable {
  final MemoryBlobStore store = new MemoryBlobStore();
  final GrpcCacheServer server;
  final ManagedChannel channel;

  GrpcServerFixture() throws Exception {
    this(GrpcOptions.defaults(), true);
  }

  GrpcServerFixture(GrpcOptions options, boolean depsCheck) throws Exception {
    this(options, depsCheck, null);
  }

  /** {@code casWrapper}, if given, wraps {@link #store} as the server's CAS (e.g. to inject failures). */
  GrpcServerFixture(GrpcOptions options, boolean depsCheck,
      java.util.function.UnaryOperator<BlobStore> casWrapper) throws Exception {
    BlobStore cas = casWrapper == null ? store : casWrapper.apply(store);
    server = new GrpcCacheServer(new InetSocketAddress("127.0.0.1", 0), cas,
        depsCheck ? new CompletenessCheckingStore(cas) : cas, options).start();
    channel = NettyChannelBuilder.forAddress("127.0.0.1", server.port())
        .usePlaintext()
        .maxInboundMessageSize(64 * 1024 * 1024)
        .build();
  }

  static build.bazel.remote.execution.v2.Digest proto(Digest d) {
    return build.bazel.remote.execution.v2.Digest.newBuilder()
        .setHash(d.hash()).setSizeBytes(d.sizeBytes()).build();
  }

  static build.bazel.remote.execution.v2.Digest proto(byte[] data) {
    return proto(Digest.of(DigestFunction.SHA256, data));
  }

  static byte[] random(int n, long seed) {
    byte[] b = new byte[n];
    new java.util.Random(seed).nextBytes(b);
    return b;
  }

  @Override
  public void close() {
    channel.shutdownNow();
    try {
      channel.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    server.close();
  }
}
