package io.bazelcache.grpc;

import io.bazelcache.storage.BlobStore;
import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;

/**
 * The gRPC cache server: REAPI Capabilities, ActionCache and ContentAddressableStorage, ByteStream,
 * {@code grpc.health.v1.Health} (SERVING for "" and for "/grpc.health.v1.Health/Check", as bazel-remote)
 * and server reflection. Calls run on virtual threads.
 *
 * <pre>
 * GrpcCacheServer s = new GrpcCacheServer(new InetSocketAddress("0.0.0.0", 9092), cas, ac, options);
 * s.start();
 * ...
 * s.close();
 * </pre>
 *
 * <p>{@code ac} is used as given; pass a {@code CompletenessCheckingStore} to serve only action results
 * whose outputs are all in the CAS (bazel-remote's default, unless {@code disable_grpc_ac_deps_check}).
 */
public final class GrpcCacheServer implements AutoCloseable {
  /** The extra health service name bazel-remote reports (used by its Kubernetes example probes). */
  public static final String HEALTH_CHECK_METHOD_NAME = "/grpc.health.v1.Health/Check";

  private final InetSocketAddress bindAddress;
  private final GrpcOptions options;
  private final ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
  private final UploadRegistry uploads;
  private final HealthStatusManager health = new HealthStatusManager();
  private final Server server;
  private boolean started;
  private final java.util.concurrent.atomic.AtomicBoolean closed =
      new java.util.concurrent.atomic.AtomicBoolean();

  public GrpcCacheServer(
      InetSocketAddress bindAddress, BlobStore cas, BlobStore ac, GrpcOptions options) {
    this(bindAddress, cas, ac, options, b -> b);
  }

  /**
   * Like {@link #GrpcCacheServer(InetSocketAddress, BlobStore, BlobStore, GrpcOptions)}, with a hook
   * that may adjust the Netty server builder before the server is built: TLS/mTLS ({@link #useTls}), global interceptors (authentication; let {@code grpc.health.v1.Health} through),
   * keepalive settings.
   */
  public GrpcCacheServer(InetSocketAddress bindAddress, BlobStore cas, BlobStore ac,
      GrpcOptions options, UnaryOperator<NettyServerBuilder> customizer) {
    this.bindAddress = bindAddress;
    this.options = options;
    this.uploads = new UploadRegistry(options.uploadResumeWindow(), options.maxParkedUploads());
    NettyServerBuilder builder =
        NettyServerBuilder.forAddress(bindAddress)
            .executor(executor)
            .maxInboundMessageSize(options.maxInboundMessageSize())
            .protocolNegotiator(withoutCumulationCopies(
                io.grpc.netty.shaded.io.grpc.netty.InternalProtocolNegotiators.serverPlaintext()))
            .addService(strict(new CapabilitiesService(options).bindService()))
            .addService(strict(ServerInterceptors.intercept(
                new ActionCacheService(cas, ac, options), ActionCacheService.PEER_INTERCEPTOR)))
            .addService(strict(CasService.bind(cas, options)))
            .addService(strict(ByteStreamService.bind(cas, options, uploads)))
            .addService(health.getHealthService())
            .addService(ProtoReflectionServiceV1.newInstance());
    this.server = customizer.apply(builder).build();
  }

  /**
   * {@code service} with malformed requests answered INVALID_ARGUMENT (gRPC's own answer would be
   * UNKNOWN) before its methods see them. For services added through the customizer too.
   */
  public static io.grpc.ServerServiceDefinition strict(io.grpc.ServerServiceDefinition service) {
    return Methods.rejectingMalformed(service);
  }

  public static io.grpc.ServerServiceDefinition strict(io.grpc.BindableService service) {
    return strict(service.bindService());
  }

  /**
   * Serves TLS on {@code builder} with {@code context} (instead of {@code builder.sslContext}, which
   * would drop {@link #withoutCumulationCopies}).
   */
  public static NettyServerBuilder useTls(NettyServerBuilder builder,
      io.grpc.netty.shaded.io.netty.handler.ssl.SslContext context) {
    return builder.protocolNegotiator(withoutCumulationCopies(
        io.grpc.netty.shaded.io.grpc.netty.InternalProtocolNegotiators.serverTls(context)));
  }

  /**
   * {@code negotiator} with the HTTP/2 handler set to collect partial frames as a list of the received
   * buffers instead of copying every read into one: a read almost always ends inside a frame (frames
   * are 16 KiB), and Netty's default then copies the whole next read after the leftover. For a large
   * upload that was one more copy of every byte received, on the event loop.
   */
  static io.grpc.netty.shaded.io.grpc.netty.InternalProtocolNegotiator.ProtocolNegotiator withoutCumulationCopies(
      io.grpc.netty.shaded.io.grpc.netty.InternalProtocolNegotiator.ProtocolNegotiator negotiator) {
    return new io.grpc.netty.shaded.io.grpc.netty.InternalProtocolNegotiator.ProtocolNegotiator() {
      @Override
      public io.grpc.netty.shaded.io.netty.util.AsciiString scheme() {
        return negotiator.scheme();
      }

      @Override
      public io.grpc.netty.shaded.io.netty.channel.ChannelHandler newHandler(
          io.grpc.netty.shaded.io.grpc.netty.GrpcHttp2ConnectionHandler grpcHandler) {
        grpcHandler.setCumulator(
            io.grpc.netty.shaded.io.netty.handler.codec.ByteToMessageDecoder.COMPOSITE_CUMULATOR);
        return negotiator.newHandler(grpcHandler);
      }

      @Override
      public void close() {
        negotiator.close();
      }
    };
  }

  public synchronized GrpcCacheServer start() throws IOException {
    if (started) {
      throw new IllegalStateException("already started");
    }
    started = true;
    server.start();
    health.setStatus("", ServingStatus.SERVING);
    health.setStatus(HEALTH_CHECK_METHOD_NAME, ServingStatus.SERVING);
    return this;
  }

  /** The port listened on (the real one when the bind address had port 0). */
  public int port() {
    return server.getPort();
  }

  public InetSocketAddress bindAddress() {
    return bindAddress;
  }

  public GrpcOptions options() {
    return options;
  }

  /**
   * Reports NOT_SERVING (for "" and {@link #HEALTH_CHECK_METHOD_NAME}) while still serving every call: the step
   * before {@link #close()} that lets health-checking load balancers move away first.
   */
  public void startDraining() {
    if (!closed.get()) {
      health.setStatus("", ServingStatus.NOT_SERVING);
      health.setStatus(HEALTH_CHECK_METHOD_NAME, ServingStatus.NOT_SERVING);
    }
  }

  /**
   * Stops accepting calls, reports NOT_SERVING, waits up to {@link GrpcOptions#shutdownGrace()} for
   * calls in flight, then cancels the rest and discards uploads kept for resumption. Idempotent.
   */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    health.enterTerminalState();
    server.shutdown();
    try {
      if (!server.awaitTermination(options.shutdownGrace().toMillis(), TimeUnit.MILLISECONDS)) {
        server.shutdownNow();
        server.awaitTermination(5, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      server.shutdownNow();
      Thread.currentThread().interrupt();
    }
    uploads.close();
    executor.shutdownNow();
  }
}
