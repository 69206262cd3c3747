package io.bazelcache.grpc;

import com.google.protobuf.InvalidProtocolBufferException;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.BlobSizeMismatchException;
import io.bazelcache.storage.BlobTooLargeException;
import io.bazelcache.storage.DigestMismatchException;
import io.bazelcache.storage.InsufficientStorageException;
import io.bazelcache.storage.InvalidEntryException;
import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.StatusRuntimeException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Maps exceptions to gRPC statuses, the same way for every service. */
final class Statuses {
  private static final Logger log = LoggerFactory.getLogger(Statuses.class);

  private Statuses() {}

  static Status of(Throwable t) {
    if (t instanceof StatusRuntimeException sre) {
      return sre.getStatus();
    }
    if (t instanceof StatusException se) {
      return se.getStatus();
    }
    if (t instanceof InsufficientStorageException) {
      return Status.RESOURCE_EXHAUSTED.withDescription(t.getMessage());
    }
    if (t instanceof BlobTooLargeException
        || t instanceof BlobSizeMismatchException
        || t instanceof DigestMismatchException
        || t instanceof InvalidEntryException
        || t instanceof InvalidProtocolBufferException
        || t instanceof DigestFunction.UnsupportedDigestFunctionException
        || t instanceof IllegalArgumentException) {
      // IllegalArgumentException covers Digest.InvalidDigestException and bad resource names.
      return Status.INVALID_ARGUMENT.withDescription(t.getMessage());
    }
    if (t instanceof java.io.IOException
        && t.getMessage() != null
        && t.getMessage().contains("No space left on device")) {
      return Status.RESOURCE_EXHAUSTED.withDescription(t.getMessage());
    }
    if (t instanceof InterruptedException) {
      return Status.CANCELLED.withDescription("interrupted");
    }
    log.warn("internal error", t);
    return Status.INTERNAL.withDescription(String.valueOf(t.getMessage())).withCause(t);
  }

  static StatusRuntimeException exception(Throwable t) {
    return of(t).asRuntimeException();
  }

  static StatusRuntimeException invalid(String message) {
    return Status.INVALID_ARGUMENT.withDescription(message).asRuntimeException();
  }

  static com.google.rpc.Status toRpc(Status s) {
    com.google.rpc.Status.Builder b = com.google.rpc.Status.newBuilder().setCode(s.getCode().value());
    if (s.getDescription() != null) {
      b.setMessage(s.getDescription());
    }
    return b.build();
  }

  static final com.google.rpc.Status OK = com.google.rpc.Status.newBuilder().setCode(0).build();
}
