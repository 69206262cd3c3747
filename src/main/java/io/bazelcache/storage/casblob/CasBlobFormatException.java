package io.bazelcache.storage.casblob;

import java.io.IOException;

/** A casblob file or stream that is malformed (bad header, truncated, undecodable chunk). */
public final class CasBlobFormatException extends IOException {
  public CasBlobFormatException(String message) {
    super(message);
  }

  public CasBlobFormatException(String message, Throwable cause) {
    super(message, cause);
  }
}
