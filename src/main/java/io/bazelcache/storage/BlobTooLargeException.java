package io.bazelcache.storage;

/** An entry that can never be stored (over max_blob_size, or larger than the cache). HTTP 413, gRPC INVALID_ARGUMENT. */
public final class BlobTooLargeException extends StorageException {
  public BlobTooLargeException(String message) {
    super(message);
  }
}
