package io.bazelcache.server;

import io.bazelcache.ac.CompletenessCheckingStore;
import io.bazelcache.config.Config;
import io.bazelcache.config.ListenAddress;
import io.bazelcache.grpc.GrpcCacheServer;
import io.bazelcache.grpc.GrpcOptions;
import io.bazelcache.http.HttpCacheOptions;
import io.bazelcache.http.HttpCacheServer;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.disk.DiskStore;
import io.bazelcache.storage.disk.StorageMode;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One running bazel-cache: the storage stack built from the configuration, and the transports on top.
 *
 * <pre>
 *   DiskStore (local, LRU, verified)
 *     └─ CompletenessCheckingStore (AC hits only when every referenced CAS blob exists)
 *   HTTP: CAS/RAW → disk, AC → completeness-checked (or RAW when disable_http_ac_validation)
 *   gRPC: CAS → disk, AC → completeness-checked (or plain when disable_grpc_ac_deps_check)
 * </pre>
 *
 * The listeners start only after the disk index is loaded, so {@code /status} and gRPC health answering at
 * all means ready.
 */
public final class CacheServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(CacheServer.class);

  private final DiskStore disk;
  private final HttpCacheServer http;
  private final GrpcCacheServer grpc;

  private CacheServer(DiskStore disk, HttpCacheServer http, GrpcCacheServer grpc) {
    this.disk = disk;
    this.http = http;
    this.grpc = grpc;
  }

  public static CacheServer start(Config config) throws IOException {
    BuildInfo build = BuildInfo.load();
    Path dir = config.dir();
    Files.createDirectories(dir);
    dir = dir.toRealPath();
    DiskStore disk = DiskStore.open(
        dir,
        config.maxSizeBytes(),
        config.maxSizeHardLimitBytes().orElse(0L),
        storageMode(config.storageMode()),
        config.maxBlobSize());
    HttpCacheServer http = null;
    GrpcCacheServer grpc = null;
    try {
      BlobStore cas = disk;
      BlobStore checkedAc = new CompletenessCheckingStore(cas);

      HttpCacheOptions httpOptions = HttpCacheOptions.builder()
          .maxBlobSize(config.maxBlobSize())
          .disableHttpAcValidation(config.disableHttpAcValidation())
          .enableAcKeyInstanceMangling(config.enableAcKeyInstanceMangling())
          .gitCommit(build.gitCommit())
          .gitTags(build.gitTags())
          .build();
      http = new HttpCacheServer(socketAddress(config.httpAddress()), cas, checkedAc, httpOptions, disk::stats)
          .start();

      if (config.grpcAddress().isPresent()) {
        GrpcOptions grpcOptions = GrpcOptions.defaults()
            .withMaxBlobSize(config.maxBlobSize())
            .withAcKeyInstanceMangling(config.enableAcKeyInstanceMangling());
        BlobStore grpcAc = config.disableGrpcAcDepsCheck() ? cas : checkedAc;
        grpc = new GrpcCacheServer(inetAddress(config.grpcAddress().get(), "grpc_address"), cas, grpcAc,
            grpcOptions).start();
        log.info("gRPC cache listening on port {}", grpc.port());
      }
      log.info("bazel-cache {} ({}) serving {}", build.version(), build.gitCommit(), dir);
      return new CacheServer(disk, http, grpc);
    } catch (IOException | RuntimeException e) {
      closeQuietly(grpc, http, disk);
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

  /** Stops accepting work, lets requests in flight finish (bounded), then closes the store. */
  @Override
  public void close() {
    closeQuietly(grpc, http, disk);
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
