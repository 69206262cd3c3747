package io.bazelcache.http;

import io.bazelcache.storage.InvalidEntryException;
import java.io.IOException;

/** How the HTTP endpoint validates uploaded action results and renders stored ones as JSON. */
interface AcCodec {

  /**
   * Parses an uploaded AC value (binary ActionResult, or protobuf JSON when {@code json}), validates it, and returns
   * the bytes to store.
   *
   * @throws InvalidEntryException if it is not a valid ActionResult
   */
  byte[] normalize(byte[] body, boolean json, String clientAddress) throws InvalidEntryException;

  /** The stored ActionResult as protobuf JSON. */
  byte[] toJson(byte[] stored) throws IOException;
}
