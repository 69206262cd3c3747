package io.bazelcache.asset;

import build.bazel.remote.asset.v1.FetchBlobRequest;
import build.bazel.remote.asset.v1.FetchBlobResponse;
import build.bazel.remote.asset.v1.FetchDirectoryRequest;
import build.bazel.remote.asset.v1.FetchDirectoryResponse;
import build.bazel.remote.asset.v1.FetchGrpc;
import build.bazel.remote.asset.v1.PushBlobRequest;
import build.bazel.remote.asset.v1.PushBlobResponse;
import build.bazel.remote.asset.v1.PushDirectoryRequest;
import build.bazel.remote.asset.v1.PushDirectoryResponse;
import build.bazel.remote.asset.v1.PushGrpc;
import build.bazel.remote.asset.v1.Qualifier;
import com.google.protobuf.Any;
import com.google.protobuf.util.Durations;
import com.google.protobuf.util.Timestamps;
import com.google.rpc.BadRequest;
import io.bazelcache.ac.DigestProtos;
import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.InsufficientStorageException;
import io.bazelcache.storage.StorageException;
import io.grpc.BindableService;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Remote Asset API v1 ({@code build.bazel.remote.asset.v1}): {@code Fetch.FetchBlob} downloads
 * http(s) URIs into the CAS (or answers from it), {@code Push.PushBlob} registers a CAS blob under URIs and
 * qualifiers. Directories are not supported (UNIMPLEMENTED).
 *
 * <p>Register {@link #fetchService()} and {@link #pushService()} on the gRPC server (see
 * {@code GrpcCacheServer}'s builder customizer). Qualifiers understood by FetchBlob: {@code checksum.sri},
 * {@code http_header:NAME}, {@code http_header_url:INDEX:NAME}, {@code bazel.canonical_id}. Any other
 * qualifier can only be satisfied by a pushed record carrying exactly it; otherwise the call fails with
 * INVALID_ARGUMENT and a {@code BadRequest} naming the field {@code qualifiers.name}.
 */
public final class RemoteAsset implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(RemoteAsset.class);

  static final String SRI = "checksum.sri";
  static final String CANONICAL_ID = "bazel.canonical_id";
  static final String HEADER = "http_header:";
  static final String HEADER_URL = "http_header_url:";

  private final AssetIndex index;
  private final BlobStore cas;
  private final AssetOptions options;
  private final Downloader downloader;

  public RemoteAsset(BlobStore cas, AssetOptions options) {
    this.cas = cas;
    this.index = new AssetIndex(cas);
    this.options = options;
    this.downloader = new Downloader(options.scratchDir(), options.connectTimeout());
  }

  public BindableService fetchService() {
    return new FetchGrpc.FetchImplBase() {
      @Override
      public void fetchBlob(FetchBlobRequest request, StreamObserver<FetchBlobResponse> out) {
        respond(out, () -> RemoteAsset.this.fetchBlob(request));
      }

      @Override
      public void fetchDirectory(FetchDirectoryRequest request, StreamObserver<FetchDirectoryResponse> out) {
        out.onError(Status.UNIMPLEMENTED.withDescription("FetchDirectory is not supported").asRuntimeException());
      }
    };
  }

  public BindableService pushService() {
    return new PushGrpc.PushImplBase() {
      @Override
      public void pushBlob(PushBlobRequest request, StreamObserver<PushBlobResponse> out) {
        respond(out, () -> RemoteAsset.this.pushBlob(request));
      }

      @Override
      public void pushDirectory(PushDirectoryRequest request, StreamObserver<PushDirectoryResponse> out) {
        out.onError(Status.UNIMPLEMENTED.withDescription("PushDirectory is not supported").asRuntimeException());
      }
    };
  }

  private interface Call<T> {
    T run() throws Exception;
  }

  private static <T> void respond(StreamObserver<T> out, Call<T> call) {
    T result;
    try {
      result = call.run();
    } catch (StatusRuntimeException e) {
      out.onError(e);
      return;
    } catch (InsufficientStorageException e) {
      out.onError(Status.RESOURCE_EXHAUSTED.withDescription(e.getMessage()).asRuntimeException());
      return;
    } catch (IllegalArgumentException e) {
      out.onError(Status.INVALID_ARGUMENT.withDescription(e.getMessage()).asRuntimeException());
      return;
    } catch (Exception e) {
      log.warn("remote asset call failed", e);
      out.onError(Status.INTERNAL.withDescription(String.valueOf(e.getMessage())).asRuntimeException());
      return;
    }
    out.onNext(result);
    out.onCompleted();
  }

  // ---- request parsing ----------------------------------------------------------------------------

  /** The qualifiers of a request, checked: names unique, header indexes in range, SRI well formed. */
  private record Parsed(Map<String, String> qualifiers, List<Sri> sris, List<String> unknown) {}

  private static Parsed parse(List<String> uris, List<Qualifier> qualifiers) {
    if (uris.isEmpty()) {
      throw new IllegalArgumentException("uris: at least one URI is required");
    }
    Map<String, String> q = new LinkedHashMap<>();
    List<String> unknown = new ArrayList<>();
    List<Sri> sris = List.of();
    for (Qualifier x : qualifiers) {
      String name = x.getName();
      if (q.put(name, x.getValue()) != null) {
        throw new IllegalArgumentException("qualifiers: \"" + name + "\" is given twice");
      }
      if (name.equals(SRI)) {
        sris = Sri.parseStrongest(x.getValue());
      } else if (name.startsWith(HEADER_URL)) {
        String rest = name.substring(HEADER_URL.length());
        int colon = rest.indexOf(':');
        int idx;
        try {
          idx = Integer.parseInt(colon < 0 ? "x" : rest.substring(0, colon));
        } catch (NumberFormatException e) {
          throw new IllegalArgumentException("qualifiers: \"" + name + "\" is not http_header_url:INDEX:NAME");
        }
        if (idx < 0 || idx >= uris.size() || colon == rest.length() - 1) {
          throw new IllegalArgumentException("qualifiers: \"" + name + "\" names URI " + idx + " of "
              + uris.size() + " or no header");
        }
      } else if (name.startsWith(HEADER)) {
        if (name.length() == HEADER.length()) {
          throw new IllegalArgumentException("qualifiers: \"" + name + "\" names no header");
        }
      } else if (!name.equals(CANONICAL_ID)) {
        unknown.add(name);
      }
    }
    return new Parsed(q, sris, unknown);
  }

  private static StatusRuntimeException unsupportedQualifiers(List<String> names) {
    BadRequest.Builder br = BadRequest.newBuilder();
    for (String n : names) {
      br.addFieldViolations(BadRequest.FieldViolation.newBuilder()
          .setField("qualifiers.name")
          .setDescription("\"" + n + "\" is not a supported qualifier"));
    }
    return StatusProto.toStatusRuntimeException(com.google.rpc.Status.newBuilder()
        .setCode(Status.Code.INVALID_ARGUMENT.value())
        .setMessage("unsupported qualifiers: " + String.join(", ", names))
        .addDetails(Any.pack(br.build()))
        .build());
  }

  /** The headers to send to {@code uris[i]}: the global ones, then the ones for this URI (which win). */
  static Map<String, String> headersFor(Map<String, String> qualifiers, int i) {
    Map<String, String> h = new LinkedHashMap<>();
    qualifiers.forEach((k, v) -> {
      if (k.startsWith(HEADER) && !k.startsWith(HEADER_URL)) {
        h.put(k.substring(HEADER.length()), v);
      }
    });
    String prefix = HEADER_URL + i + ":";
    qualifiers.forEach((k, v) -> {
      if (k.startsWith(prefix)) {
        h.put(k.substring(prefix.length()), v);
      }
    });
    return h;
  }

  // ---- FetchBlob ----------------------------------------------------------------------------------

  FetchBlobResponse fetchBlob(FetchBlobRequest request) throws IOException {
    DigestFunction fn = DigestProtos.functionOf(request.getDigestFunction());
    List<String> uris = request.getUrisList();
    Parsed p = parse(uris, request.getQualifiersList());
    String instance = request.getInstanceName();
    Instant oldest = request.hasOldestContentAccepted()
        ? Instant.ofEpochMilli(Timestamps.toMillis(request.getOldestContentAccepted())) : null;

    // 1. Content named by its checksum is the same whenever and wherever it was fetched (unless other,
    //    unknown qualifiers must match too: only a pushed record carrying them can satisfy those).
    if (oldest == null && p.unknown().isEmpty()) {
      for (Sri s : p.sris()) {
        Digest d = index.bySri(fn, s);
        if (d != null && (d.function() == fn && present(d))) {
          return ok(uris.get(0), d, p);
        }
      }
    }
    // 2. A URI (with the same qualifiers) fetched or pushed before, recently enough.
    for (String uri : uris) {
      AssetIndex.Record r = index.record(instance, fn, uri, p.qualifiers());
      if (r != null && (oldest == null || !Instant.ofEpochMilli(r.fetchedAtMillis()).isBefore(oldest))) {
        Digest d = r.digest();
        if (d.function() == fn && present(d)) {
          return ok(uri, d, p);
        }
      }
    }
    if (!p.unknown().isEmpty()) {
      throw unsupportedQualifiers(p.unknown());
    }

    // 3. Download, URI by URI, until one gives content that matches the checksum.
    Duration budget = options.defaultTimeout();
    if (request.hasTimeout()) {
      Duration t = Duration.ofMillis(Durations.toMillis(request.getTimeout()));
      if (t.isPositive() && t.compareTo(budget) < 0) {
        budget = t;
      }
    }
    io.grpc.Deadline rpcDeadline = io.grpc.Context.current().getDeadline();
    if (rpcDeadline != null) {
      // no point downloading after the client stopped waiting (Bazel's --remote_timeout)
      Duration left = Duration.ofMillis(Math.max(1, rpcDeadline.timeRemaining(java.util.concurrent.TimeUnit.MILLISECONDS)));
      if (left.compareTo(budget) < 0) {
        budget = left;
      }
    }
    Instant deadline = Instant.now().plus(budget);
    Sri.Algorithm alg = p.sris().isEmpty() ? null : p.sris().get(0).algorithm();
    List<String> errors = new ArrayList<>();
    Status.Code lastCode = Status.Code.NOT_FOUND;
    for (int i = 0; i < uris.size(); i++) {
      String uri = uris.get(i);
      Downloader.Result dl;
      try {
        dl = downloader.download(uri, headersFor(p.qualifiers(), i), deadline, options.maxBlobSize(), fn, alg);
      } catch (Downloader.OriginException e) {
        errors.add(e.getMessage());
        lastCode = e.code;
        continue;
      }
      try {
        Sri matched = null;
        for (Sri s : p.sris()) {
          if (MessageDigest.isEqual(s.hash(), dl.sriHash())) {
            matched = s;
          }
        }
        if (alg != null && matched == null) {
          errors.add(uri + ": checksum mismatch: content is " + Sri.of(alg, dl.sriHash()) + ", wanted "
              + request.getQualifiersList().stream().filter(q -> q.getName().equals(SRI)).findFirst()
                  .map(Qualifier::getValue).orElse(""));
          lastCode = Status.Code.ABORTED;
          continue;
        }
        Digest d = dl.digest();
        try (InputStream in = Files.newInputStream(dl.file())) {
          cas.put(BlobKey.cas(d), d.sizeBytes(), in);
        } catch (InsufficientStorageException e) {
          return failed(Status.Code.RESOURCE_EXHAUSTED, uri + ": " + e.getMessage());
        } catch (StorageException e) {
          return failed(Status.Code.RESOURCE_EXHAUSTED, uri + ": cannot store: " + e.getMessage());
        }
        if (matched != null) {
          index.putSri(d, matched);
        }
        index.putRecord(instance, d, uri, p.qualifiers(), System.currentTimeMillis());
        index.add(d, fileName(uri), AssetIndex.canonicalIdHash(p.qualifiers().get(CANONICAL_ID)));
        log.info("fetched {} ({} bytes) as {}", uri, d.sizeBytes(), d);
        return ok(uri, d, p);
      } finally {
        Files.deleteIfExists(dl.file());
      }
    }
    return failed(lastCode, String.join("; ", errors));
  }

  private boolean present(Digest d) throws IOException {
    BlobKey k = BlobKey.cas(d);
    if (k.isEmptyCasBlob()) {
      return true;
    }
    try (Blob b = cas.get(k)) {
      return b != null && b.size() == d.sizeBytes();
    }
  }

  private static FetchBlobResponse ok(String uri, Digest d, Parsed p) {
    FetchBlobResponse.Builder b = FetchBlobResponse.newBuilder()
        .setStatus(com.google.rpc.Status.newBuilder().setCode(0))
        .setUri(uri)
        .setBlobDigest(DigestProtos.toProto(d))
        .setDigestFunction(DigestProtos.toProto(d.function()));
    AssetIndex.identityQualifiers(p.qualifiers()).forEach((k, v) ->
        b.addQualifiers(Qualifier.newBuilder().setName(k).setValue(v)));
    return b.build();
  }

  private static FetchBlobResponse failed(Status.Code code, String message) {
    return FetchBlobResponse.newBuilder()
        .setStatus(com.google.rpc.Status.newBuilder().setCode(code.value()).setMessage(message))
        .build();
  }

  /** The last path segment of {@code uri} (the name Bazel's distdir would look for), or "". */
  static String fileName(String uri) {
    try {
      String path = java.net.URI.create(uri).getPath();
      if (path == null) {
        return "";
      }
      int slash = path.lastIndexOf('/');
      return path.substring(slash + 1);
    } catch (IllegalArgumentException e) {
      return "";
    }
  }

  // ---- PushBlob -----------------------------------------------------------------------------------

  PushBlobResponse pushBlob(PushBlobRequest request) throws IOException {
    DigestFunction fn = DigestProtos.functionOf(request.getDigestFunction());
    List<String> uris = request.getUrisList();
    Map<String, String> q = new LinkedHashMap<>();
    if (uris.isEmpty()) {
      throw new IllegalArgumentException("uris: at least one URI is required");
    }
    List<Sri> sris = List.of();
    for (Qualifier x : request.getQualifiersList()) {
      if (q.put(x.getName(), x.getValue()) != null) {
        throw new IllegalArgumentException("qualifiers: \"" + x.getName() + "\" is given twice");
      }
      if (x.getName().equals(SRI)) {
        sris = Sri.parseStrongest(x.getValue());
      }
    }
    if (!request.hasBlobDigest()) {
      throw new IllegalArgumentException("blob_digest is required");
    }
    Digest d = DigestProtos.fromProto(request.getBlobDigest(), fn, "blob_digest");
    BlobKey key = BlobKey.cas(d);
    Sri matched = null;
    if (key.isEmptyCasBlob()) {
      matched = matchSri(sris, new byte[0]);
    } else {
      try (Blob b = cas.get(key)) {
        if (b == null || b.size() != d.sizeBytes()) {
          throw Status.FAILED_PRECONDITION.withDescription("blob_digest " + d + " is not in the CAS; upload it first")
              .asRuntimeException();
        }
        if (!sris.isEmpty()) {
          MessageDigest md = sris.get(0).algorithm().newDigest();
          try (InputStream in = b.openStream(0)) {
            byte[] buf = new byte[64 * 1024];
            int n;
            while ((n = in.read(buf)) > 0) {
              md.update(buf, 0, n);
            }
          }
          matched = matchHash(sris, md.digest());
        }
      }
    }
    if (!sris.isEmpty() && matched == null) {
      throw new IllegalArgumentException("qualifiers: checksum.sri does not match the content of " + d);
    }
    if (matched != null) {
      index.putSri(d, matched);
    }
    long now = System.currentTimeMillis();
    for (String uri : uris) {
      index.putRecord(request.getInstanceName(), d, uri, q, now);
    }
    index.add(d, fileName(uris.get(0)), AssetIndex.canonicalIdHash(q.get(CANONICAL_ID)));
    return PushBlobResponse.getDefaultInstance();
  }

  private static Sri matchSri(List<Sri> sris, byte[] content) {
    if (sris.isEmpty()) {
      return null;
    }
    return matchHash(sris, sris.get(0).algorithm().newDigest().digest(content));
  }

  private static Sri matchHash(List<Sri> sris, byte[] hash) {
    for (Sri s : sris) {
      if (MessageDigest.isEqual(s.hash(), hash)) {
        return s;
      }
    }
    return null;
  }

  /** The index the services keep (for tests and the CLI). */
  public AssetIndex index() {
    return index;
  }

  static SortedMap<String, String> identity(Map<String, String> q) {
    return AssetIndex.identityQualifiers(q);
  }

  @Override
  public void close() {
    downloader.close();
  }
}
