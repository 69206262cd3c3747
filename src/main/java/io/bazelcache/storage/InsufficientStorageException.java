package io.bazelcache.storage;

/** No room now (reservations, or max_size_hard_limit). HTTP 507, gRPC RESOURCE_EXHAUSTED. */
public final class InsufficientStorageException extends StorageException {
  public InsufficientStorageException(String message) {
    super(message);
  }
}
