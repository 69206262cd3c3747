package io.bazelcache.storage;

/** An entry whose content is malformed for its kind (e.g. an AC value that is not a valid ActionResult). HTTP 400, gRPC INVALID_ARGUMENT. */
public final class InvalidEntryException extends StorageException {
  public InvalidEntryException(String message) {
    super(message);
  }
}
