package io.bazelcache.http;

import io.bazelcache.storage.InvalidEntryException;
import java.io.IOException;

/** Temporary: stores AC bodies as sent, until the ActionResult helpers are available. */
final class PassThroughAcCodec implements AcCodec {
  @Override
  public byte[] normalize(byte[] body, boolean json, String clientAddress) throws InvalidEntryException {
    if (json) {
      throw new InvalidEntryException("JSON action results are not supported yet");
    }
    return body;
  }

  @Override
  public byte[] toJson(byte[] stored) throws IOException {
    throw new IOException("JSON rendering of action results is not supported yet");
  }
}
