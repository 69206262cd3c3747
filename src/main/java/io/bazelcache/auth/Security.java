package io.bazelcache.auth;

import io.bazelcache.config.Config;
import io.bazelcache.http.HttpCacheOptions;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;

/**
 * Authentication, TLS and connection limits from the configuration, applied to both listeners the same way:
 * {@link #applyTo(HttpCacheOptions.Builder)} for HTTP and {@link #grpcCustomizer()} for gRPC.
 */
public final class Security {
  /** gRPC: close connections without calls for this long (clients reconnect transparently). */
  public static final Duration GRPC_MAX_CONNECTION_IDLE = Duration.ofMinutes(30);
  /** gRPC: ping clients after this much silence, and drop them if the ping is not answered in time. */
  public static final Duration GRPC_KEEPALIVE_TIME = Duration.ofMinutes(5);
  public static final Duration GRPC_KEEPALIVE_TIMEOUT = Duration.ofSeconds(20);
  /** gRPC: clients may ping this often (Bazel's --grpc_keepalive_time), even without calls in flight. */
  public static final Duration GRPC_PERMIT_KEEPALIVE_TIME = Duration.ofSeconds(10);

  private final AccessControl access;
  private final ServerTls tls;
  private final Duration httpReadTimeout;
  private final Duration httpWriteTimeout;

  public Security(AccessControl access, ServerTls tls, Duration httpReadTimeout, Duration httpWriteTimeout) {
    this.access = access;
    this.tls = tls;
    this.httpReadTimeout = httpReadTimeout;
    this.httpWriteTimeout = httpWriteTimeout;
  }

  /**
   * Loads the htpasswd file and the TLS files named by the configuration.
   *
   * @throws IOException with a one-line message naming the key and file, for unreadable or unsupported input
   */
  public static Security fromConfig(Config config) throws IOException {
    boolean anonymousReads = config.allowUnauthenticatedReads();
    ServerTls tls = null;
    if (config.tlsEnabled()) {
      tls = ServerTls.load(Path.of(config.tlsCertFile()), Path.of(config.tlsKeyFile()),
          config.tlsCaFile().isEmpty() ? null : Path.of(config.tlsCaFile()), config.minTlsVersion().jsseName(),
          anonymousReads);
    }
    AccessControl access;
    if (!config.htpasswdFile().isEmpty()) {
      access = AccessControl.htpasswd(new BasicAuthenticator(Htpasswd.load(Path.of(config.htpasswdFile()))),
          anonymousReads);
    } else if (tls != null && tls.mutual()) {
      access = AccessControl.mutualTls(anonymousReads);
    } else {
      access = AccessControl.open();
    }
    return new Security(access, tls, config.httpReadTimeout(), config.httpWriteTimeout());
  }

  public AccessControl access() {
    return access;
  }

  /** TLS, or null for plain text. */
  public ServerTls tls() {
    return tls;
  }

  /** Sets the authorizer, TLS context and read/write timeouts. */
  public HttpCacheOptions.Builder applyTo(HttpCacheOptions.Builder b) throws IOException {
    b.authorizer(access.httpAuthorizer())
        .readTimeout(httpReadTimeout)
        .writeTimeout(httpWriteTimeout);
    if (tls != null) {
      b.sslContext(tls.httpContext());
    }
    return b;
  }

  /** TLS, the access interceptor and keepalive/idle limits for the gRPC server builder. */
  public UnaryOperator<NettyServerBuilder> grpcCustomizer() throws IOException {
    var sslContext = tls == null ? null : tls.grpcContext();
    return b -> {
      if (sslContext != null) {
        io.bazelcache.grpc.GrpcCacheServer.useTls(b, sslContext);
      }
      if (!access.isOpen()) {
        b.intercept(access.grpcInterceptor());
      }
      return b.maxConnectionIdle(GRPC_MAX_CONNECTION_IDLE.toMillis(), TimeUnit.MILLISECONDS)
          .keepAliveTime(GRPC_KEEPALIVE_TIME.toMillis(), TimeUnit.MILLISECONDS)
          .keepAliveTimeout(GRPC_KEEPALIVE_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)
          .permitKeepAliveTime(GRPC_PERMIT_KEEPALIVE_TIME.toMillis(), TimeUnit.MILLISECONDS)
          .permitKeepAliveWithoutCalls(true);
    };
  }
}
