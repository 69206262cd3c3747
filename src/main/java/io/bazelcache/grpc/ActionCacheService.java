package io.bazelcache.grpc;

import build.bazel.remote.execution.v2.ActionCacheGrpc;
import build.bazel.remote.execution.v2.ActionResult;
import build.bazel.remote.execution.v2.GetActionResultRequest;
import build.bazel.remote.execution.v2.OutputFile;
import build.bazel.remote.execution.v2.UpdateActionResultRequest;
import com.google.protobuf.ByteString;
import io.bazelcache.ac.ActionResults;
import io.bazelcache.ac.CompletenessCheckingStore;
import io.bazelcache.ac.DigestProtos;
import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.InvalidEntryException;
import io.bazelcache.storage.Kind;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.net.SocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * ActionCache: GetActionResult and UpdateActionResult.
 *
 * <p>Get: a miss (absent, malformed, or, through {@link CompletenessCheckingStore}, incomplete) is
 * NOT_FOUND. When asked, stdout, stderr and the requested output files are inlined from the CAS, in that
 * order, while the total stays within {@link GrpcOptions#maxInlineSize()}; what does not fit is left to
 * the client to fetch by digest.
 *
 * <p>Update: the result is validated ({@link ActionResults#validate}); inlined contents (output file
 * {@code contents}, {@code stdout_raw}, {@code stderr_raw}) are checked against their digests and stored
 * in the CAS, then removed from the stored result, which keeps digests only (a missing stdout/stderr
 * digest is filled in from the raw bytes). An empty {@code execution_metadata.worker} is set to the
 * client's address, as bazel-remote does. The stored result is returned.
 */
final class ActionCacheService extends ActionCacheGrpc.ActionCacheImplBase {
  private static final Logger log = LoggerFactory.getLogger(ActionCacheService.class);

  private final BlobStore cas;
  private final BlobStore ac;
  private final GrpcOptions options;

  ActionCacheService(BlobStore cas, BlobStore ac, GrpcOptions options) {
    this.cas = cas;
    this.ac = ac;
    this.options = options;
  }

  /** The AC key of an action digest, mangled with the instance name when so configured. */
  BlobKey acKey(Digest action, String instanceName) {
    if (!options.acKeyInstanceMangling() || instanceName.isEmpty()) {
      return BlobKey.ac(action);
    }
    return new BlobKey(Kind.AC, action.function(), mangle(action.function(), action.hash(), instanceName));
  }

  /** hex(H(utf8(hash) ‖ utf8(instance))) with H the action's digest function. */
  static String mangle(DigestFunction fn, String hash, String instanceName) {
    byte[] a = hash.getBytes(StandardCharsets.UTF_8);
    byte[] b = instanceName.getBytes(StandardCharsets.UTF_8);
    var h = fn.newHasher();
    h.update(a, 0, a.length);
    h.update(b, 0, b.length);
    return HexFormat.of().formatHex(h.finish());
  }

  @Override
  public void getActionResult(GetActionResultRequest request, StreamObserver<ActionResult> out) {
    try {
      DigestFunction fn = DigestProtos.functionOf(request.getDigestFunction());
      Digest action = DigestProtos.fromProto(request.getActionDigest(), fn, "action_digest");
      BlobKey key = acKey(action, request.getInstanceName());
      ActionResult result = load(key, fn);
      if (result == null) {
        throw Status.NOT_FOUND.withDescription("no action result for " + action).asRuntimeException();
      }
      if (request.getInlineStdout() || request.getInlineStderr()
          || request.getInlineOutputFilesCount() > 0) {
        result = inline(result, request, fn);
      }
      out.onNext(result);
      out.onCompleted();
    } catch (Exception e) {
      out.onError(Statuses.exception(e));
    }
  }

  private ActionResult load(BlobKey key, DigestFunction fn) throws IOException {
    if (ac instanceof CompletenessCheckingStore checking) {
      return checking.getActionResult(key);
    }
    try (Blob blob = ac.get(key)) {
      if (blob == null) {
        return null;
      }
      ActionResult r = ActionResults.parseBinary(blob.readAllBytes());
      ActionResults.validate(r, fn);
      return r;
    } catch (InvalidEntryException e) {
      log.debug("stored action result {} is invalid: {}", key, e.getMessage());
      return null;
    }
  }

  private ActionResult inline(ActionResult result, GetActionResultRequest request, DigestFunction fn) {
    long budget = options.maxInlineSize();
    ActionResult.Builder b = result.toBuilder();
    if (request.getInlineStdout() && result.hasStdoutDigest() && result.getStdoutRaw().isEmpty()) {
      byte[] data = fetchWithin(result.getStdoutDigest(), fn, budget);
      if (data != null) {
        b.setStdoutRaw(ByteString.copyFrom(data));
        budget -= data.length;
      }
    }
    if (request.getInlineStderr() && result.hasStderrDigest() && result.getStderrRaw().isEmpty()) {
      byte[] data = fetchWithin(result.getStderrDigest(), fn, budget);
      if (data != null) {
        b.setStderrRaw(ByteString.copyFrom(data));
        budget -= data.length;
      }
    }
    if (request.getInlineOutputFilesCount() > 0) {
      Set<String> wanted = new HashSet<>(request.getInlineOutputFilesList());
      for (int i = 0; i < b.getOutputFilesCount(); i++) {
        OutputFile f = b.getOutputFiles(i);
        if (!wanted.contains(f.getPath()) || !f.getContents().isEmpty()) {
          continue;
        }
        byte[] data = fetchWithin(f.getDigest(), fn, budget);
        if (data != null) {
          b.setOutputFiles(i, f.toBuilder().setContents(ByteString.copyFrom(data)));
          budget -= data.length;
        }
      }
    }
    return b.build();
  }

  /** The blob's bytes if its size fits in {@code budget} and it can be read, else null. */
  private byte[] fetchWithin(build.bazel.remote.execution.v2.Digest proto, DigestFunction fn, long budget) {
    if (proto.getSizeBytes() > budget) {
      return null;
    }
    try {
      Digest d = DigestProtos.fromProto(proto, fn);
      try (Blob blob = cas.get(BlobKey.cas(d))) {
        if (blob == null || blob.size() != d.sizeBytes()) {
          return null;
        }
        return blob.readAllBytes();
      }
    } catch (IOException | IllegalArgumentException e) {
      log.debug("cannot inline {}", proto.getHash(), e);
      return null;
    }
  }

  @Override
  public void updateActionResult(UpdateActionResultRequest request, StreamObserver<ActionResult> out) {
    try {
      DigestFunction fn = DigestProtos.functionOf(request.getDigestFunction());
      Digest action = DigestProtos.fromProto(request.getActionDigest(), fn, "action_digest");
      if (!request.hasActionResult()) {
        throw Statuses.invalid("missing action_result");
      }
      ActionResult result = request.getActionResult();
      if (result.equals(ActionResult.getDefaultInstance())) {
        throw Statuses.invalid("rejecting empty ActionResult");
      }
      ActionResults.validate(result, fn);

      // Every inlined blob is checked against its digest before any is stored, so a bad request
      // stores nothing. The stored result keeps digests only.
      List<ActionResults.InlinedBlob> blobs = ActionResults.inlinedBlobs(result, fn);
      ActionResult.Builder stored = result.toBuilder();
      for (int i = 0; i < stored.getOutputFilesCount(); i++) {
        if (!stored.getOutputFiles(i).getContents().isEmpty()) {
          stored.setOutputFiles(i, stored.getOutputFiles(i).toBuilder().clearContents());
        }
      }
      for (ActionResults.InlinedBlob blob : blobs) {
        if (blob.field().equals("stdout_raw")) {
          stored.clearStdoutRaw().setStdoutDigest(DigestProtos.toProto(blob.digest()));
        } else if (blob.field().equals("stderr_raw")) {
          stored.clearStderrRaw().setStderrDigest(DigestProtos.toProto(blob.digest()));
        }
      }
      for (ActionResults.InlinedBlob blob : blobs) {
        BlobKey key = BlobKey.cas(blob.digest());
        if (!key.isEmptyCasBlob() && !cas.contains(key)) {
          cas.put(key, blob.data().toByteArray());
        }
      }
      SocketAddress peer = PEER.get();
      ActionResult built = stored.build();
      ActionResult toStore =
          peer == null ? built : ActionResults.withWorkerIfUnset(built, peer.toString());
      ac.put(acKey(action, request.getInstanceName()), ActionResults.toBinary(toStore));
      out.onNext(toStore);
      out.onCompleted();
    } catch (Exception e) {
      out.onError(Statuses.exception(e));
    }
  }

  /** The calling peer's address, for execution_metadata.worker. */
  static final Context.Key<SocketAddress> PEER = Context.key("bazelcache-peer");

  /** Puts the peer address into the call context. */
  static final ServerInterceptor PEER_INTERCEPTOR = new ServerInterceptor() {
    @Override
    public <ReqT, RespT> ServerCall.Listener<ReqT> interceptCall(
        ServerCall<ReqT, RespT> call, Metadata headers, ServerCallHandler<ReqT, RespT> next) {
      SocketAddress peer = call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR);
      return Contexts.interceptCall(Context.current().withValue(PEER, peer), call, headers, next);
    }
  };
}
