package io.bazelcache.storage;

/** CAS content that does not hash to its key. HTTP 400, gRPC INVALID_ARGUMENT. */
public final class DigestMismatchException extends StorageException {
  public DigestMismatchException(String message) {
    super(message);
  }
}
