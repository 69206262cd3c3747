package io.bazelcache.auth;

import io.bazelcache.http.HttpCacheOptions;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import java.security.cert.Certificate;
import java.util.Objects;
import java.util.Set;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;

/**
 * Who may read and who may write, for HTTP and gRPC alike (bazel-remote's rules):
 *
 * <ul>
 *   <li>{@link #open()}: no authentication configured; everything is allowed.
 *   <li>{@link #htpasswd}: every request needs {@code Authorization: Basic …} (HTTP header or gRPC metadata) with a
 *       user and password from the htpasswd file.
 *   <li>{@link #mutualTls}: every request needs a client certificate that the TLS handshake verified against
 *       {@code tls_ca_file}.
 *   <li>With {@code allowUnauthenticatedReads}, reads need nothing: HTTP GET and HEAD; gRPC GetActionResult,
 *       FindMissingBlobs, BatchReadBlobs, GetTree, GetCapabilities and ByteStream.Read. Writes still need credentials.
 *   <li>Always open: gRPC {@code grpc.health.v1.Health} and HTTP {@code /status} (probes); the HTTP server applies
 *       the latter (see {@link HttpCacheOptions#authorizer()}).
 * </ul>
 */
public final class AccessControl {
  /** gRPC methods that only read, open to anonymous clients under {@code allow_unauthenticated_reads}. */
  public static final Set<String> GRPC_READ_METHODS = Set.of(
      "build.bazel.remote.execution.v2.ActionCache/GetActionResult",
      "build.bazel.remote.execution.v2.ContentAddressableStorage/FindMissingBlobs",
      "build.bazel.remote.execution.v2.ContentAddressableStorage/BatchReadBlobs",
      "build.bazel.remote.execution.v2.ContentAddressableStorage/GetTree",
      "build.bazel.remote.execution.v2.Capabilities/GetCapabilities",
      "google.bytestream.ByteStream/Read");

  /** gRPC services open to everyone (Kubernetes probes). */
  public static final String HEALTH_SERVICE = "grpc.health.v1.Health";

  private enum Mode {
    OPEN,
    HTPASSWD,
    MTLS
  }

  private final Mode mode;
  private final BasicAuthenticator basic;
  private final boolean allowUnauthenticatedReads;

  private AccessControl(Mode mode, BasicAuthenticator basic, boolean allowUnauthenticatedReads) {
    this.mode = mode;
    this.basic = basic;
    this.allowUnauthenticatedReads = allowUnauthenticatedReads;
  }

  public static AccessControl open() {
    return new AccessControl(Mode.OPEN, null, false);
  }

  public static AccessControl htpasswd(BasicAuthenticator basic, boolean allowUnauthenticatedReads) {
    return new AccessControl(Mode.HTPASSWD, Objects.requireNonNull(basic), allowUnauthenticatedReads);
  }

  /** The TLS layer verifies presented certificates; this checks that one was presented and verified. */
  public static AccessControl mutualTls(boolean allowUnauthenticatedReads) {
    return new AccessControl(Mode.MTLS, null, allowUnauthenticatedReads);
  }

  public boolean isOpen() {
    return mode == Mode.OPEN;
  }

  public boolean allowUnauthenticatedReads() {
    return allowUnauthenticatedReads;
  }

  /**
   * @param read whether the request only reads
   * @param authorization the {@code Authorization} value, or null
   * @param tls the connection's TLS session, or null over plain text
   */
  public boolean permits(boolean read, String authorization, SSLSession tls) {
    if (mode == Mode.OPEN || (read && allowUnauthenticatedReads)) {
      return true;
    }
    return switch (mode) {
      case HTPASSWD -> basic.authenticate(authorization);
      case MTLS -> hasVerifiedClientCertificate(tls);
      case OPEN -> true;
    };
  }

  static boolean hasVerifiedClientCertificate(SSLSession tls) {
    if (tls == null) {
      return false;
    }
    try {
      Certificate[] chain = tls.getPeerCertificates();
      return chain != null && chain.length > 0;
    } catch (SSLPeerUnverifiedException e) {
      return false;
    }
  }

  /** The hook for {@link HttpCacheOptions.Builder#authorizer}, or null when open. */
  public HttpCacheOptions.Authorizer httpAuthorizer() {
    if (mode == Mode.OPEN) {
      return null;
    }
    return new HttpCacheOptions.Authorizer() {
      @Override
      public boolean permits(HttpCacheOptions.Access access, String authorization) {
        return permits(access, authorization, null);
      }

      @Override
      public boolean permits(HttpCacheOptions.Access access, String authorization, SSLSession tls) {
        return AccessControl.this.permits(access == HttpCacheOptions.Access.READ, authorization, tls);
      }
    };
  }

  /** A global gRPC interceptor enforcing these rules; calls that fail get UNAUTHENTICATED. */
  public ServerInterceptor grpcInterceptor() {
    return new GrpcInterceptor();
  }

  private static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private final class GrpcInterceptor implements ServerInterceptor {
    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
        ServerCallHandler<Q, R> next) {
      String method = call.getMethodDescriptor().getFullMethodName();
      String service = call.getMethodDescriptor().getServiceName();
      if (mode == Mode.OPEN || HEALTH_SERVICE.equals(service)) {
        return next.startCall(call, headers);
      }
      SSLSession tls = call.getAttributes().get(Grpc.TRANSPORT_ATTR_SSL_SESSION);
      if (permits(GRPC_READ_METHODS.contains(method), headers.get(AUTHORIZATION), tls)) {
        return next.startCall(call, headers);
      }
      String why = switch (mode) {
        case HTPASSWD -> "valid basic authentication credentials required";
        case MTLS -> "a verified client certificate is required";
        case OPEN -> "";
      };
      call.close(Status.UNAUTHENTICATED.withDescription(why), new Metadata());
      return new ServerCall.Listener<>() {};
    }
  }
}
