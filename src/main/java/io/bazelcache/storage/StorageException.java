package io.bazelcache.storage;

import java.io.IOException;

/** A storage error with a defined meaning for clients; transports map each subclass to a status. */
public abstract class StorageException extends IOException {
  protected StorageException(String message) {
    super(message);
  }
}
