package io.bazelcache.server;

import io.bazelcache.ac.CompletenessCheckingStore;
import io.bazelcache.asset.AssetOptions;
import io.bazelcache.asset.RemoteAsset;
import io.bazelcache.auth.Security;
import io.bazelcache.config.Config;
import io.bazelcache.config.ListenAddress;
import io.bazelcache.grpc.GrpcCacheServer;
import io.bazelcache.grpc.GrpcOptions;
import io.bazelcache.http.HttpCacheOptions;
import io.bazelcache.http.HttpCacheServer;
import io.bazelcache.metrics.CacheMetrics;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.disk.DiskStore;
import io.bazelcache.storage.disk.StorageMode;
import io.bazelcache.storage.layers.S3Layers;
import io.bazelcache.storage.s3.S3Config;
import io.bazelcache.storage.s3.S3Stats;
import io.bazelcache.storage.s3.S3Store;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One running bazel-cache: the storage stack built from the configuration, and the transports on top.
 *
 * <pre>
 *   DiskStore (local, LRU, verified)
 *     └─ with s3_proxy: read-through (S3 GET on local miss, verified, stored locally)
 *        └─ existence (S3 HEAD for local misses, positive answers remembered)
 *           └─ write-behind (queued background uploads after the local commit)
 *     └─ CompletenessCheckingStore (AC hits only when every referenced CAS blob exists)
 *   HTTP: CAS/RAW → disk, AC → completeness-checked (or RAW when disable_http_ac_validation)
 *   gRPC: CAS → disk, AC → completeness-checked (or plain when disable_grpc_ac_deps_check)
 *         + Remote Asset Fetch/Push with experimental_remote_asset_api (records in RAW, blobs in CAS)
 * </pre>
 *
 * The listeners start only after the disk index is loaded, so {@code /status} and gRPC health answering at
 * all means ready.
 */
public final class CacheServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(CacheServer.class);

  /** The top of the storage stack; closing it drains S3 uploads (bounded) and closes the disk store. */
  private final BlobStore store;
  private final S3Stats s3Stats;
  private final HttpCacheServer http;
  private final GrpcCacheServer grpc;
  private final RemoteAsset assets;
  private final IdleWatch idle;
  private boolean closed;

  private CacheServer(BlobStore store, S3Stats s3Stats, HttpCacheServer http, GrpcCacheServer grpc,
      RemoteAsset assets, IdleWatch idle) {
    this.store = store;
    this.s3Stats = s3Stats;
    this.http = http;
    this.grpc = grpc;
    this.assets = assets;
    this.idle = idle;
  }

  /** Starts serving; with {@code idle_timeout}, the process exits (status 0) after that long without requests. */
  public static CacheServer start(Config config) throws IOException {
    BuildInfo build = BuildInfo.load();
    Security security = Security.fromConfig(config); // htpasswd and TLS files: fail before touching the disk
    S3Stats s3Stats = new S3Stats();
    DiskStore[] disk = new DiskStore[1];
    BlobStore cas = openStore(config, s3Stats, d -> disk[0] = d);
    Path dir = config.dir().toRealPath();
    HttpCacheServer http = null;
    GrpcCacheServer grpc = null;
    RemoteAsset assets = null;
    IdleWatch idle = null;
    try {
      BlobStore checkedAc = new CompletenessCheckingStore(cas);

      // Metrics: registered always; served at /metrics only with enable_endpoint_metrics (404 otherwise).
      CacheMetrics metrics = new CacheMetrics(config.endpointMetricsDurationBuckets(), config.httpMetricsPrefix());
      metrics.bindDisk(disk[0], config.maxSizeHardLimitBytes().orElse(0L));
      metrics.bindS3(s3Stats);
      boolean accessLog = config.accessLogLevel() == Config.AccessLogLevel.ALL;
      BlobStore meteredCas = metrics.meter(cas);
      BlobStore meteredAc = metrics.meter(checkedAc);

      if (!config.idleTimeout().isZero()) {
        idle = new IdleWatch(config.idleTimeout(), () -> System.exit(0));
      }
      HttpCacheOptions.Builder httpBuilder = HttpCacheOptions.builder()
          .maxBlobSize(config.maxBlobSize())
          .disableHttpAcValidation(config.disableHttpAcValidation())
          .enableAcKeyInstanceMangling(config.enableAcKeyInstanceMangling())
          .gitCommit(build.gitCommit())
          .gitTags(build.gitTags())
          .accessLog(accessLog)
          .observer(metrics.httpObserver())
          .metricsPage(config.enableEndpointMetrics() ? metrics.page() : null);
      security.applyTo(httpBuilder);
      if (idle != null) {
        httpBuilder.observer(idle.observe(httpBuilder.build().observer()));
      }
      HttpCacheOptions httpOptions = httpBuilder.build();
      http = new HttpCacheServer(socketAddress(config.httpAddress()), meteredCas, meteredAc, httpOptions, cas::stats)
          .start();

      if (config.grpcAddress().isPresent()) {
        GrpcOptions grpcOptions = GrpcOptions.defaults()
            .withMaxBlobSize(config.maxBlobSize())
            .withAcKeyInstanceMangling(config.enableAcKeyInstanceMangling());
        BlobStore grpcAc = config.disableGrpcAcDepsCheck() ? meteredCas : meteredAc;
        var secure = security.grpcCustomizer();
        java.util.function.UnaryOperator<io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder> extra =
            b -> secure.apply(b).intercept(metrics.grpcInterceptor(accessLog));
        if (config.experimentalRemoteAssetApi()) {
          assets = new RemoteAsset(cas, AssetOptions.of(dir.resolve(DiskStore.SCRATCH_DIR_NAME).resolve("asset"),
              config.maxBlobSize()));
          RemoteAsset ra = assets;
          var secured = extra;
          extra = b -> secured.apply(b).addService(GrpcCacheServer.strict(ra.fetchService()))
              .addService(GrpcCacheServer.strict(ra.pushService()));
          log.info("Remote Asset API (Fetch, Push) enabled");
        }
        if (idle != null) {
          var beforeIdle = extra;
          IdleWatch watch = idle;
          extra = b -> beforeIdle.apply(b).intercept(watch.grpcInterceptor());
        }
        grpc = new GrpcCacheServer(inetAddress(config.grpcAddress().get(), "grpc_address"), meteredCas, grpcAc,
            grpcOptions, extra).start();
        log.info("gRPC cache listening on port {}", grpc.port());
      }
      log.info("bazel-cache {} ({}) serving {}", build.version(), build.gitCommit(), dir);
      return new CacheServer(cas, s3Stats, http, grpc, assets, idle);
    } catch (IOException | RuntimeException e) {
      closeQuietly(idle, grpc, assets, http, cas);
      throw e;
    }
  }

  /**
   * The storage stack the configuration describes: the disk store in {@code dir}, plus the S3 layers
   * (read-through, existence, write-behind) with {@code s3_proxy}. Closing it drains S3 uploads (bounded)
   * and closes the disk store. Used by the server and by offline commands ({@code bazel-cache assets}).
   */
  public static BlobStore openStore(Config config, S3Stats s3Stats) throws IOException {
    return openStore(config, s3Stats, d -> {});
  }

  /** Like {@link #openStore(Config, S3Stats)}, also handing the disk store at the bottom to {@code onDisk}. */
  static BlobStore openStore(Config config, S3Stats s3Stats, java.util.function.Consumer<DiskStore> onDisk)
      throws IOException {
    Path dir = config.dir();
    Files.createDirectories(dir);
    dir = dir.toRealPath();
    DiskStore disk = DiskStore.open(
        dir,
        config.maxSizeBytes(),
        config.maxSizeHardLimitBytes().orElse(0L),
        storageMode(config.storageMode()),
        config.maxBlobSize());
    onDisk.accept(disk);
    if (config.s3Proxy().isEmpty()) {
      return disk;
    }
    try {
      Config.S3Proxy s3 = config.s3Proxy().get();
      S3Store remote = new S3Store(S3Config.options(s3, config.storageMode() == Config.StorageMode.ZSTD,
          dir.resolve(DiskStore.SCRATCH_DIR_NAME).resolve("s3")), s3Stats);
      BlobStore store = S3Layers.compose(disk, remote, S3Config.layerOptions(config), s3Stats).store();
      log.info("S3 backend: bucket {} at {} (prefix \"{}\")", s3.bucket(), s3.endpoint(), s3.prefix());
      return store;
    } catch (IOException | RuntimeException e) {
      disk.close();
      throw e;
    }
  }

  public int httpPort() {
    return http.port();
  }

  /** The gRPC port, or -1 when gRPC is disabled. */
  public int grpcPort() {
    return grpc == null ? -1 : grpc.port();
  }

  /** Counters of the S3 tier (all zero without {@code s3_proxy}). */
  public S3Stats s3Stats() {
    return s3Stats;
  }

  /**
   * The orderly stop on SIGTERM. First readiness goes false ({@code /status} answers 503, gRPC health
   * NOT_SERVING) while everything is still served for {@code delay}, so a load balancer stops routing new
   * requests here; then {@link #close()}.
   */
  public void shutdown(Duration delay) {
    synchronized (this) {
      if (closed) {
        return;
      }
    }
    http.startDraining();
    if (grpc != null) {
      grpc.startDraining();
    }
    if (delay.isPositive()) {
      log.info("not ready any more; closing the listeners in {} ms", delay.toMillis());
      try {
        Thread.sleep(delay);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    close();
  }

  /**
   * Stops accepting work, lets requests in flight finish (bounded), then drains uploads (bounded) and closes the
   * store. Idempotent; a second caller waits until the first one is done.
   */
  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    closeQuietly(idle, grpc, assets, http, store);
    log.info("stopped");
  }

  private static void closeQuietly(AutoCloseable... all) {
    for (AutoCloseable c : all) {
      if (c == null) {
        continue;
      }
      try {
        c.close();
      } catch (Exception e) {
        log.warn("error while closing {}: {}", c.getClass().getSimpleName(), e.toString());
      }
    }
  }

  static StorageMode storageMode(Config.StorageMode mode) {
    return switch (mode) {
      case ZSTD -> StorageMode.ZSTD;
      case UNCOMPRESSED -> StorageMode.UNCOMPRESSED;
    };
  }

  private static SocketAddress socketAddress(ListenAddress address) {
    return switch (address) {
      case ListenAddress.Tcp tcp -> tcp.host().isEmpty()
          ? new InetSocketAddress(tcp.port())
          : new InetSocketAddress(tcp.host(), tcp.port());
      case ListenAddress.Unix unix -> UnixDomainSocketAddress.of(unix.path());
    };
  }

  private static InetSocketAddress inetAddress(ListenAddress address, String key) {
    if (address instanceof ListenAddress.Unix) {
      throw new IllegalArgumentException(key + ": unix sockets are not supported for gRPC yet");
    }
    return (InetSocketAddress) socketAddress(address);
  }
}
