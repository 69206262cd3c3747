package io.bazelcache.http;

import build.bazel.remote.execution.v2.ActionResult;
import io.bazelcache.ac.ActionResults;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.InvalidEntryException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/**
 * Action results as bazel-remote's HTTP endpoint treats them: parsed (binary or protobuf JSON), validated field by
 * field, {@code execution_metadata.worker} set to the client's address when empty, and stored re-serialized in binary.
 */
final class ProtoAcCodec implements AcCodec {
  @Override
  public byte[] normalize(byte[] body, boolean json, String clientAddress) throws InvalidEntryException {
    ActionResult r = ActionResults.parseAndValidate(body, json, DigestFunction.SHA256);
    return ActionResults.toBinary(ActionResults.withWorkerIfUnset(r, clientAddress));
  }

  @Override
  public byte[] toJson(byte[] stored) throws IOException {
    try {
      return ActionResults.toJson(ActionResults.parseBinary(stored)).getBytes(StandardCharsets.UTF_8);
    } catch (InvalidEntryException | IllegalArgumentException e) {
      // The store handed out something that is not an ActionResult: our fault, not the client's.
      throw new IOException("stored action result cannot be rendered as JSON: " + e.getMessage(), e);
    }
  }
}
