package io.bazelcache.metrics;

import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.model.registry.PrometheusRegistry;

/** go-grpc-prometheus' server metric families, with its label names and values. */
final class GrpcMetrics {
  final Counter started;
  final Counter handled;
  final Counter received;
  final Counter sent;
  final Histogram handlingSeconds;

  GrpcMetrics(PrometheusRegistry registry, double[] durationBuckets) {
    started = Counter.builder().name("grpc_server_started")
        .help("Total number of RPCs started on the server.")
        .labelNames("grpc_type", "grpc_service", "grpc_method").withoutExemplars().register(registry);
    handled = Counter.builder().name("grpc_server_handled")
        .help("Total number of RPCs completed on the server, regardless of success or failure.")
        .labelNames("grpc_type", "grpc_service", "grpc_method", "grpc_code").withoutExemplars().register(registry);
    received = Counter.builder().name("grpc_server_msg_received")
        .help("Total number of RPC stream messages received on the server.")
        .labelNames("grpc_type", "grpc_service", "grpc_method").withoutExemplars().register(registry);
    sent = Counter.builder().name("grpc_server_msg_sent")
        .help("Total number of gRPC stream messages sent by the server.")
        .labelNames("grpc_type", "grpc_service", "grpc_method").withoutExemplars().register(registry);
    handlingSeconds = Histogram.builder().name("grpc_server_handling_seconds")
        .help("Histogram of response latency (seconds) of gRPC that had been application-level handled by the "
            + "server.")
        .labelNames("grpc_type", "grpc_service", "grpc_method").classicOnly()
        .classicUpperBounds(durationBuckets).withoutExemplars().register(registry);
  }

  /** go-grpc-prometheus' {@code grpc_type} values. */
  static String type(MethodDescriptor.MethodType t) {
    return switch (t) {
      case UNARY -> "unary";
      case CLIENT_STREAMING -> "client_stream";
      case SERVER_STREAMING -> "server_stream";
      case BIDI_STREAMING -> "bidi_stream";
      case UNKNOWN -> "unknown";
    };
  }

  /** grpc-go's spelling of status codes ({@code codes.Code.String()}), as in {@code grpc_code} of bazel-remote. */
  static String code(Status.Code c) {
    return switch (c) {
      case OK -> "OK";
      case CANCELLED -> "Canceled";
      case UNKNOWN -> "Unknown";
      case INVALID_ARGUMENT -> "InvalidArgument";
      case DEADLINE_EXCEEDED -> "DeadlineExceeded";
      case NOT_FOUND -> "NotFound";
      case ALREADY_EXISTS -> "AlreadyExists";
      case PERMISSION_DENIED -> "PermissionDenied";
      case RESOURCE_EXHAUSTED -> "ResourceExhausted";
      case FAILED_PRECONDITION -> "FailedPrecondition";
      case ABORTED -> "Aborted";
      case OUT_OF_RANGE -> "OutOfRange";
      case UNIMPLEMENTED -> "Unimplemented";
      case INTERNAL -> "Internal";
      case UNAVAILABLE -> "Unavailable";
      case DATA_LOSS -> "DataLoss";
      case UNAUTHENTICATED -> "Unauthenticated";
    };
  }
}
