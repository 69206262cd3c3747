package io.bazelcache.metrics;

import com.google.protobuf.MessageLite;
import io.grpc.ForwardingServerCall.SimpleForwardingServerCall;
import io.grpc.ForwardingServerCallListener.SimpleForwardingServerCallListener;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Records go-grpc-prometheus' server metrics for every call, and optionally writes one access log line per
 * finished call to {@code io.bazelcache.grpc.access} at INFO, in the HTTP access log's shape:
 * {@code GRPC <code> <client> /<service>/<method> <milliseconds>ms <response bytes>}, where the code is the
 * gRPC status name (OK, NOT_FOUND, ...) and the bytes are the serialized size of the messages sent.
 */
final class GrpcInterceptor implements ServerInterceptor {
  private static final Logger accessLog = LoggerFactory.getLogger("io.bazelcache.grpc.access");

  private final GrpcMetrics m;
  private final boolean logAccess;

  GrpcInterceptor(GrpcMetrics metrics, boolean logAccess) {
    this.m = metrics;
    this.logAccess = logAccess;
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
      ServerCallHandler<Q, R> next) {
    MethodDescriptor<Q, R> md = call.getMethodDescriptor();
    String type = GrpcMetrics.type(md.getType());
    String service = md.getServiceName() == null ? "" : md.getServiceName();
    String method = md.getBareMethodName() == null ? md.getFullMethodName() : md.getBareMethodName();
    long start = System.nanoTime();
    m.started.labelValues(type, service, method).inc();
    AtomicBoolean finished = new AtomicBoolean();
    AtomicLong bytesSent = new AtomicLong();

    final class Call extends SimpleForwardingServerCall<Q, R> {
      Call() {
        super(call);
      }

      @Override
      public void sendMessage(R message) {
        m.sent.labelValues(type, service, method).inc();
        if (message instanceof MessageLite ml) {
          bytesSent.addAndGet(ml.getSerializedSize());
        } else if (message instanceof byte[] serialized) {
          bytesSent.addAndGet(serialized.length); // a response the service serialized itself
        }
        super.sendMessage(message);
      }

      @Override
      public void close(Status status, Metadata trailers) {
        finish(status.getCode());
        super.close(status, trailers);
      }

      void finish(Status.Code code) {
        if (!finished.compareAndSet(false, true)) {
          return;
        }
        long nanos = System.nanoTime() - start;
        m.handled.labelValues(type, service, method, GrpcMetrics.code(code)).inc();
        m.handlingSeconds.labelValues(type, service, method).observe(nanos / 1e9);
        if (logAccess && accessLog.isInfoEnabled()) {
          accessLog.info("GRPC {} {} /{} {}ms {}", code, peer(call), md.getFullMethodName(),
              String.format(Locale.ROOT, "%.3f", nanos / 1e6), bytesSent.get());
        }
      }
    }
    Call wrapped = new Call();
    ServerCall.Listener<Q> listener = next.startCall(wrapped, headers);
    return new SimpleForwardingServerCallListener<Q>(listener) {
      @Override
      public void onMessage(Q message) {
        m.received.labelValues(type, service, method).inc();
        super.onMessage(message);
      }

      @Override
      public void onCancel() {
        // The client went away, or the deadline passed, before the server closed the call.
        io.grpc.Deadline deadline = io.grpc.Context.current().getDeadline();
        wrapped.finish(deadline != null && deadline.isExpired() ? Status.Code.DEADLINE_EXCEEDED
            : Status.Code.CANCELLED);
        super.onCancel();
      }
    };
  }

  private static String peer(ServerCall<?, ?> call) {
    SocketAddress a = call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR);
    if (a instanceof InetSocketAddress i && i.getAddress() != null) {
      return i.getAddress().getHostAddress();
    }
    return String.valueOf(a);
  }
}
