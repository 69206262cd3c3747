package io.bazelcache.storage;

/** More or fewer bytes than announced. HTTP 400, gRPC INVALID_ARGUMENT. */
public final class BlobSizeMismatchException extends StorageException {
  public BlobSizeMismatchException(String message) {
    super(message);
  }
}
