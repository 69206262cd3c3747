package io.bazelcache.grpc;

import build.bazel.remote.execution.v2.BatchReadBlobsRequest;
import build.bazel.remote.execution.v2.BatchReadBlobsResponse;
import build.bazel.remote.execution.v2.BatchUpdateBlobsRequest;
import build.bazel.remote.execution.v2.BatchUpdateBlobsResponse;
import build.bazel.remote.execution.v2.Compressor;
import build.bazel.remote.execution.v2.ContentAddressableStorageGrpc;
import build.bazel.remote.execution.v2.Directory;
import build.bazel.remote.execution.v2.DirectoryNode;
import build.bazel.remote.execution.v2.FindMissingBlobsRequest;
import build.bazel.remote.execution.v2.FindMissingBlobsResponse;
import build.bazel.remote.execution.v2.GetTreeRequest;
import build.bazel.remote.execution.v2.GetTreeResponse;
import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import io.bazelcache.ac.DigestProtos;
import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.DigestBatch;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.FileSlice;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * ContentAddressableStorage: FindMissingBlobs, BatchUpdateBlobs, BatchReadBlobs and GetTree. SplitBlob
 * and SpliceBlob are not implemented (UNIMPLEMENTED, and not advertised). Instance names are ignored:
 * the CAS is shared by all instances, as in bazel-remote.
 */
final class CasService extends ContentAddressableStorageGrpc.ContentAddressableStorageImplBase {

  /**
   * Largest response message this server sends on its own initiative (GetTree pages): clients'
   * inbound limit is usually gRPC's default 4 MiB; keep a margin for framing.
   */
  static final int MAX_RESPONSE_BYTES = 4 * 1024 * 1024 - 64 * 1024;

  private final BlobStore cas;
  private final GrpcOptions options;

  CasService(BlobStore cas, GrpcOptions options) {
    this.cas = cas;
    this.options = options;
  }

  /**
   * The service with FindMissingBlobs on the wire format directly ({@link FindMissingWire}) and
   * BatchUpdateBlobs requests parsed from the transport's stream without first copying each whole
   * message ({@link Methods#streamingParser}).
   */
  static io.grpc.ServerServiceDefinition bind(BlobStore cas, GrpcOptions options) {
    CasService service = new CasService(cas, options);
    io.grpc.ServerServiceDefinition def = service.bindService();
    io.grpc.MethodDescriptor<FindMissingBlobsRequest, FindMissingBlobsResponse> generated =
        ContentAddressableStorageGrpc.getFindMissingBlobsMethod();
    def = Methods.replace(def, io.grpc.ServerMethodDefinition.create(
        generated.toBuilder(FindMissingWire.REQUESTS, FindMissingWire.RESPONSES).build(),
        io.grpc.stub.ServerCalls.asyncUnaryCall(service::findMissing)));
    return Methods.parseStreaming(def, "BatchUpdateBlobs", BatchUpdateBlobsRequest.getDefaultInstance());
  }

  static DigestFunction function(build.bazel.remote.execution.v2.DigestFunction.Value v) {
    return DigestProtos.functionOf(v);
  }

  // ---------------------------------------------------------------------------------------------
  // FindMissingBlobs

  private void findMissing(FindMissingWire.Request request, StreamObserver<byte[]> out) {
    try {
      out.onNext(findMissing(request));
      out.onCompleted();
    } catch (Exception e) {
      out.onError(Statuses.exception(e));
    }
  }

  /** The serialized FindMissingBlobsResponse. */
  private byte[] findMissing(FindMissingWire.Request request) throws IOException {
    DigestFunction fn = DigestProtos.functionOf(request.digestFunction());
    // One store call for the whole request, with the hashes as numbers; answer in request order, each
    // digest once.
    DigestBatch batch = DigestBatch.ofHex(fn, request.hashBytes(), request.hashOffsets(),
        request.hashLengths(), request.sizes(), request.count(), "blob_digests");
    int[] answer = withoutRepeats(batch, cas.findMissing(batch));
    return FindMissingWire.response(request, answer, answer.length);
  }

  /**
   * {@code missing} without digests asked more than once (their later indexes). Sorting the first hash
   * words finds out that there are none, the usual case, without an object per digest.
   */
  static int[] withoutRepeats(DigestBatch batch, int[] missing) {
    if (missing.length < 2) {
      return missing;
    }
    long[] first = new long[missing.length];
    for (int i = 0; i < missing.length; i++) {
      first[i] = batch.word(missing[i], 0);
    }
    Arrays.sort(first);
    boolean maybe = false;
    for (int i = 1; i < first.length && !maybe; i++) {
      maybe = first[i] == first[i - 1];
    }
    if (!maybe) {
      return missing;
    }
    Set<BlobKey> seen = new HashSet<>();
    int[] out = new int[missing.length];
    int n = 0;
    for (int i : missing) {
      if (seen.add(batch.key(i))) {
        out[n++] = i;
      }
    }
    return Arrays.copyOf(out, n);
  }

  // ---------------------------------------------------------------------------------------------
  // BatchUpdateBlobs

  @Override
  public void batchUpdateBlobs(
      BatchUpdateBlobsRequest request, StreamObserver<BatchUpdateBlobsResponse> out) {
    try {
      DigestFunction fn = function(request.getDigestFunction());
      long total = 0;
      List<Digest> digests = new ArrayList<>(request.getRequestsCount());
      for (int i = 0; i < request.getRequestsCount(); i++) {
        BatchUpdateBlobsRequest.Request r = request.getRequests(i);
        digests.add(DigestProtos.fromProto(r.getDigest(), fn, "requests[" + i + "].digest"));
        total += r.getData().size();
      }
      if (total > options.maxBatchTotalSize()) {
        throw Statuses.invalid("batch of " + total + " bytes is over max_batch_total_size_bytes "
            + options.maxBatchTotalSize() + "; use ByteStream");
      }
      List<BatchUpdateBlobsResponse.Response> responses;
      if (digests.size() == 1) {
        responses = List.of(updateOne(request.getRequests(0), digests.get(0)));
      } else {
        responses = new ArrayList<>(digests.size());
        try (ExecutorService ex = Executors.newVirtualThreadPerTaskExecutor()) {
          List<Future<BatchUpdateBlobsResponse.Response>> futures = new ArrayList<>();
          for (int i = 0; i < digests.size(); i++) {
            BatchUpdateBlobsRequest.Request r = request.getRequests(i);
            Digest d = digests.get(i);
            futures.add(ex.submit(() -> updateOne(r, d)));
          }
          for (Future<BatchUpdateBlobsResponse.Response> f : futures) {
            responses.add(join(f));
          }
        }
      }
      out.onNext(BatchUpdateBlobsResponse.newBuilder().addAllResponses(responses).build());
      out.onCompleted();
    } catch (Exception e) {
      out.onError(Statuses.exception(e));
    }
  }

  private BatchUpdateBlobsResponse.Response updateOne(BatchUpdateBlobsRequest.Request r, Digest d) {
    BatchUpdateBlobsResponse.Response.Builder resp =
        BatchUpdateBlobsResponse.Response.newBuilder().setDigest(r.getDigest());
    try {
      if (options.tooLarge(d.sizeBytes())) {
        throw new IllegalArgumentException(
            "blob of " + d.sizeBytes() + " bytes is over max_cas_blob_size_bytes " + options.maxBlobSize());
      }
      byte[] data = switch (r.getCompressor()) {
        case IDENTITY -> r.getData().toByteArray();
        case ZSTD -> Zstd.decompress(r.getData().asReadOnlyByteBuffer(), d.sizeBytes());
        default -> throw new IllegalArgumentException(
            "unsupported compressor " + r.getCompressorValue() + " (IDENTITY and ZSTD only)");
      };
      if (data.length != d.sizeBytes()) {
        throw new IllegalArgumentException(
            "got " + data.length + " bytes for a digest of size " + d.sizeBytes());
      }
      BlobKey key = BlobKey.cas(d);
      if (!key.isEmptyCasBlob()) {
        cas.put(key, data);
      }
      resp.setStatus(Statuses.OK);
    } catch (Exception e) {
      resp.setStatus(Statuses.toRpc(Statuses.of(e)));
    }
    return resp.build();
  }

  private static <T> T join(Future<T> f) throws IOException {
    try {
      return f.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted", e);
    } catch (ExecutionException e) {
      throw new IOException(e.getCause());
    }
  }

  // ---------------------------------------------------------------------------------------------
  // BatchReadBlobs

  @Override
  public void batchReadBlobs(
      BatchReadBlobsRequest request, StreamObserver<BatchReadBlobsResponse> out) {
    try {
      DigestFunction fn = function(request.getDigestFunction());
      boolean zstdOk = request.getAcceptableCompressorsList().contains(Compressor.Value.ZSTD);
      long total = 0;
      List<Digest> digests = new ArrayList<>(request.getDigestsCount());
      for (int i = 0; i < request.getDigestsCount(); i++) {
        Digest d = DigestProtos.fromProto(request.getDigests(i), fn, "digests[" + i + "]");
        digests.add(d);
        total += d.sizeBytes();
      }
      if (total > options.maxBatchTotalSize()) {
        throw Statuses.invalid("batch of " + total + " bytes is over max_batch_total_size_bytes "
            + options.maxBatchTotalSize() + "; use ByteStream");
      }
      List<BatchReadBlobsResponse.Response> responses = new ArrayList<>(digests.size());
      if (digests.size() == 1) {
        responses.add(readOne(request.getDigests(0), digests.get(0), zstdOk));
      } else {
        try (ExecutorService ex = Executors.newVirtualThreadPerTaskExecutor()) {
          List<Future<BatchReadBlobsResponse.Response>> futures = new ArrayList<>();
          for (int i = 0; i < digests.size(); i++) {
            build.bazel.remote.execution.v2.Digest proto = request.getDigests(i);
            Digest d = digests.get(i);
            futures.add(ex.submit(() -> readOne(proto, d, zstdOk)));
          }
          for (Future<BatchReadBlobsResponse.Response> f : futures) {
            responses.add(join(f));
          }
        }
      }
      out.onNext(BatchReadBlobsResponse.newBuilder().addAllResponses(responses).build());
      out.onCompleted();
    } catch (Exception e) {
      out.onError(Statuses.exception(e));
    }
  }

  private BatchReadBlobsResponse.Response readOne(
      build.bazel.remote.execution.v2.Digest proto, Digest d, boolean zstdOk) {
    BatchReadBlobsResponse.Response.Builder resp =
        BatchReadBlobsResponse.Response.newBuilder().setDigest(proto);
    try (Blob blob = cas.get(BlobKey.cas(d))) {
      if (blob == null || blob.size() != d.sizeBytes()) {
        resp.setStatus(Statuses.toRpc(Status.NOT_FOUND.withDescription("blob " + d + " not found")));
        return resp.build();
      }
      byte[] raw = null;
      byte[] compressed = null;
      if (zstdOk && d.sizeBytes() > 0) {
        Optional<FileSlice> z = blob.zstdFile();
        if (z.isPresent() && z.get().count() < d.sizeBytes()) {
          compressed = readSlice(z.get());
        } else {
          raw = blob.readAllBytes();
          byte[] c = Zstd.compress(raw);
          if (c.length < raw.length) {
            compressed = c;
          }
        }
      }
      if (compressed != null) {
        resp.setCompressor(Compressor.Value.ZSTD).setData(ByteString.copyFrom(compressed));
      } else {
        if (raw == null) {
          raw = blob.readAllBytes();
        }
        resp.setData(ByteString.copyFrom(raw));
      }
      resp.setStatus(Statuses.OK);
    } catch (Exception e) {
      resp.clearData().setCompressor(Compressor.Value.IDENTITY);
      resp.setStatus(Statuses.toRpc(Statuses.of(e)));
    }
    return resp.build();
  }

  static byte[] readSlice(FileSlice s) throws IOException {
    if (s.count() > Integer.MAX_VALUE - 16) {
      throw new IOException("slice too large");
    }
    ByteBuffer buf = ByteBuffer.allocate((int) s.count());
    long pos = s.position();
    while (buf.hasRemaining()) {
      int n = s.channel().read(buf, pos);
      if (n < 0) {
        throw new IOException("unexpected end of stored file");
      }
      pos += n;
    }
    return buf.array();
  }

  // ---------------------------------------------------------------------------------------------
  // GetTree

  @Override
  public void getTree(GetTreeRequest request, StreamObserver<GetTreeResponse> out) {
    DigestFunction fn;
    Digest root;
    long start;
    try {
      fn = function(request.getDigestFunction());
      root = DigestProtos.fromProto(request.getRootDigest(), fn, "root_digest");
      if (request.getPageSize() < 0) {
        throw Statuses.invalid("negative page_size");
      }
      start = request.getPageToken().isEmpty() ? 0 : decodeToken(request.getPageToken(), root);
    } catch (Exception e) {
      out.onError(Statuses.exception(e));
      return;
    }
    int pageSize = request.getPageSize();
    FlowSender.start(out, "GetTree", sender -> streamTree(sender, root, start, pageSize));
  }

  private void streamTree(FlowSender<GetTreeResponse> sender, Digest root, long start, int pageSize)
      throws IOException {
    Directory rootDir = readDirectory(root);
    if (rootDir == null) {
      throw Status.NOT_FOUND.withDescription("root directory " + root + " not found")
          .asRuntimeException();
    }
    DigestFunction fn = root.function();
    ArrayDeque<Digest> queue = new ArrayDeque<>();
    Set<String> seen = new HashSet<>();
    seen.add(root.hash());
    GetTreeResponse.Builder page = GetTreeResponse.newBuilder();
    long pageBytes = 0;
    long index = 0;
    boolean sentAny = false;
    Directory dir = rootDir;
    while (dir != null) {
      for (DirectoryNode child : dir.getDirectoriesList()) {
        Digest cd;
        try {
          cd = DigestProtos.fromProto(child.getDigest(), fn);
        } catch (IllegalArgumentException e) {
          continue; // A malformed child digest cannot be in the CAS: omitted like a missing one.
        }
        if (seen.add(cd.hash())) {
          queue.add(cd);
        }
      }
      if (index >= start) {
        int size = dir.getSerializedSize() + 8;
        boolean full = page.getDirectoriesCount() > 0
            && ((pageSize > 0 && page.getDirectoriesCount() >= pageSize)
                || pageBytes + size > MAX_RESPONSE_BYTES);
        if (full) {
          sender.send(page.setNextPageToken(encodeToken(root, index)).build());
          sentAny = true;
          page = GetTreeResponse.newBuilder();
          pageBytes = 0;
        }
        page.addDirectories(dir);
        pageBytes += size;
      }
      index++;
      dir = null;
      while (dir == null && !queue.isEmpty()) {
        if (sender.isCancelled()) {
          throw new FlowSender.CancelledException();
        }
        dir = readDirectory(queue.poll()); // missing or unparsable subtrees are omitted
      }
    }
    if (page.getDirectoriesCount() > 0 || !sentAny) {
      sender.send(page.build());
    }
  }

  private Directory readDirectory(Digest d) throws IOException {
    try (Blob blob = cas.get(BlobKey.cas(d))) {
      if (blob == null || blob.size() != d.sizeBytes()) {
        return null;
      }
      if (blob.size() > options.maxInboundMessageSize()) {
        return null; // could never be sent to a client
      }
      return Directory.parseFrom(blob.readAllBytes());
    } catch (InvalidProtocolBufferException e) {
      return null;
    }
  }

  private static final String TOKEN_PREFIX = "t1:";

  /** An opaque page token: the index of the page's first directory in the tree's BFS order. */
  static String encodeToken(Digest root, long index) {
    String plain = TOKEN_PREFIX + root.function().lowerName() + ":" + root.hash() + ":" + index;
    return Base64.getUrlEncoder().withoutPadding().encodeToString(plain.getBytes(StandardCharsets.UTF_8));
  }

  static long decodeToken(String token, Digest root) {
    try {
      String plain = new String(Base64.getUrlDecoder().decode(token), StandardCharsets.UTF_8);
      String[] parts = plain.split(":");
      if (parts.length == 4 && (parts[0] + ":").equals(TOKEN_PREFIX)
          && parts[1].equals(root.function().lowerName()) && parts[2].equals(root.hash())) {
        long index = Long.parseLong(parts[3]);
        if (index >= 0) {
          return index;
        }
      }
    } catch (IllegalArgumentException e) {
      // fall through
    }
    throw Statuses.invalid("page_token was not issued for this root_digest");
  }
}
