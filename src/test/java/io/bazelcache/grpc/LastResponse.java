package io.bazelcache.grpc;

import io.grpc.stub.StreamObserver;
import java.util.concurrent.CompletableFuture;

/** A call's response observer that completes {@link #result} with the last response (or the error). */
class LastResponse<T> implements StreamObserver<T> {
  final CompletableFuture<T> result;
  private T last;

  LastResponse() {
    this(new CompletableFuture<>());
  }

  /** Completes {@code result}, the caller's. */
  LastResponse(CompletableFuture<T> result) {
    this.result = result;
  }

  @Override
  public void onNext(T value) {
    last = value;
  }

  @Override
  public void onError(Throwable t) {
    result.completeExceptionally(t);
  }

  @Override
  public void onCompleted() {
    result.complete(last);
  }
}
