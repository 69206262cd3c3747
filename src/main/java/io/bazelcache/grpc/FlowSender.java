package io.bazelcache.grpc;

import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Sends a server stream's responses from a thread of its own, waiting while the transport is not
 * ready, so a slow client never makes the server buffer a whole blob.
 *
 * <p>gRPC delivers a call's callbacks (including "ready") one at a time on the server executor, so the
 * handler must not block waiting for readiness; {@link #start} therefore returns at once and runs the
 * producer on a new virtual thread.
 */
final class FlowSender<T> {
  private final ServerCallStreamObserver<T> observer;
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition changed = lock.newCondition();
  private volatile boolean cancelled;

  /** Bytes that may be queued in the transport before the sender waits. */
  static final int READY_THRESHOLD = 4 * 1024 * 1024;

  /** Thrown inside a producer when the client went away; {@link #start} swallows it. */
  static final class CancelledException extends RuntimeException {
    CancelledException() {
      super("call cancelled", null, false, false);
    }
  }

  /** A producer of responses that may throw anything; its exception becomes the call's status. */
  interface Producer<T> {
    void run(FlowSender<T> sender) throws Exception;
  }

  private FlowSender(StreamObserver<T> observer) {
    this.observer = (ServerCallStreamObserver<T>) observer;
    // gRPC's default makes a stream "not ready" after 32 KiB in flight, i.e. after every 1 MiB chunk,
    // which costs a thread hand-off per chunk. Allow a few chunks in flight instead.
    this.observer.setOnReadyThreshold(READY_THRESHOLD);
    this.observer.setOnReadyHandler(this::signal);
    this.observer.setOnCancelHandler(() -> {
      cancelled = true;
      signal();
    });
  }

  /**
   * Runs {@code producer} on a new virtual thread; completes the call when it returns, or fails it with
   * the mapped status of what it throws.
   */
  static <T> void start(StreamObserver<T> observer, String name, Producer<T> producer) {
    FlowSender<T> sender = new FlowSender<>(observer);
    Thread.ofVirtual().name(name).start(() -> {
      try {
        producer.run(sender);
        if (!sender.cancelled) {
          sender.observer.onCompleted();
        }
      } catch (CancelledException e) {
        // The client is gone; nothing to report.
      } catch (Throwable t) {
        if (!sender.cancelled) {
          try {
            sender.observer.onError(Statuses.exception(t));
          } catch (RuntimeException ignored) {
            // The call may have been cancelled meanwhile.
          }
        }
      }
    });
  }

  /** Sends one response, first waiting until the transport can take it. */
  void send(T message) {
    awaitReady();
    observer.onNext(message);
  }

  boolean isCancelled() {
    return cancelled;
  }

  private void awaitReady() {
    if (cancelled) {
      throw new CancelledException();
    }
    if (observer.isReady()) {
      return;
    }
    lock.lock();
    try {
      while (!observer.isReady() && !cancelled) {
        try {
          changed.await();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw Status.CANCELLED.withDescription("interrupted").asRuntimeException();
        }
      }
    } finally {
      lock.unlock();
    }
    if (cancelled) {
      throw new CancelledException();
    }
  }

  private void signal() {
    lock.lock();
    try {
      changed.signalAll();
    } finally {
      lock.unlock();
    }
  }
}
