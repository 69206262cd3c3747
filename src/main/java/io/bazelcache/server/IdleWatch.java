package io.bazelcache.server;

import io.bazelcache.http.HttpCacheOptions;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * bazel-remote's {@code idle_timeout}: when no request has arrived (HTTP or gRPC) for this long, the server exits.
 * Activity is noted when an HTTP request finishes and when a gRPC call starts, as bazel-remote notes it per request;
 * a single request running longer than the timeout with nothing else happening does not keep the server up.
 */
final class IdleWatch implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(IdleWatch.class);

  private final long timeoutNanos;
  private final AtomicLong last = new AtomicLong(System.nanoTime());
  private final Thread thread;

  IdleWatch(Duration timeout, Runnable onIdle) {
    this.timeoutNanos = timeout.toNanos();
    long tick = Math.max(10, Math.min(1000, timeout.toMillis() / 10));
    this.thread = Thread.ofVirtual().name("idle-timeout").start(() -> {
      try {
        while (true) {
          Thread.sleep(tick);
          if (System.nanoTime() - last.get() >= timeoutNanos) {
            log.info("no requests for {}: idle_timeout reached, exiting", timeout);
            onIdle.run();
            return;
          }
        }
      } catch (InterruptedException e) {
        // closed
      }
    });
  }

  void touch() {
    last.set(System.nanoTime());
  }

  HttpCacheOptions.RequestObserver observe(HttpCacheOptions.RequestObserver next) {
    return (handler, method, status, nanos) -> {
      touch();
      next.onRequest(handler, method, status, nanos);
    };
  }

  ServerInterceptor grpcInterceptor() {
    return new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
          ServerCallHandler<Q, R> next) {
        touch();
        return next.startCall(call, headers);
      }
    };
  }

  @Override
  public void close() {
    thread.interrupt();
  }
}
