package io.bazelcache.asset;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import build.bazel.remote.asset.v1.FetchBlobRequest;
import build.bazel.remote.asset.v1.FetchBlobResponse;
import build.bazel.remote.asset.v1.FetchDirectoryRequest;
import build.bazel.remote.asset.v1.FetchGrpc;
import build.bazel.remote.asset.v1.PushBlobRequest;
import build.bazel.remote.asset.v1.PushGrpc;
import build.bazel.remote.asset.v1.Qualifier;
import com.google.protobuf.util.Durations;
import com.google.protobuf.util.Timestamps;
import com.google.rpc.BadRequest;
import io.bazelcache.ac.DigestProtos;
import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.grpc.GrpcCacheServer;
import io.bazelcache.grpc.GrpcOptions;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.disk.DiskStore;
import io.bazelcache.storage.disk.StorageMode;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.protobuf.StatusProto;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Base64;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** FetchBlob and PushBlob over real gRPC, a real disk store and a loopback HTTP origin. */
class RemoteAssetTest {
  static final long MAX_BLOB = 64 * 1024;

  @TempDir Path tmp;
  Origin origin;
  DiskStore store;
  RemoteAsset assets;
  GrpcCacheServer server;
  ManagedChannel channel;
  FetchGrpc.FetchBlockingStub fetch;
  PushGrpc.PushBlockingStub push;

  @BeforeEach
  void setUp() throws Exception {
    origin = new Origin();
    start();
  }

  void start() throws Exception {
    store = DiskStore.open(tmp.resolve("cache"), 100L << 20, 0, StorageMode.ZSTD, MAX_BLOB);
    assets = new RemoteAsset(store, AssetOptions.of(tmp.resolve("scratch"), MAX_BLOB));
    server = new GrpcCacheServer(new InetSocketAddress("127.0.0.1", 0), store, store, GrpcOptions.defaults(),
        b -> b.addService(assets.fetchService()).addService(assets.pushService())).start();
    channel = NettyChannelBuilder.forAddress("127.0.0.1", server.port()).usePlaintext().build();
    fetch = FetchGrpc.newBlockingStub(channel);
    push = PushGrpc.newBlockingStub(channel);
  }

  void stop() throws Exception {
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    server.close();
    assets.close();
    store.close();
  }

  @AfterEach
  void tearDown() throws Exception {
    stop();
    origin.close();
  }

  static byte[] random(int n, long seed) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    return b;
  }

  static String sri(String alg, byte[] content) throws Exception {
    String jca = switch (alg) {
      case "sha256" -> "SHA-256";
      case "sha384" -> "SHA-384";
      default -> "SHA-512";
    };
    return alg + "-" + Base64.getEncoder().encodeToString(MessageDigest.getInstance(jca).digest(content));
  }

  static Qualifier q(String name, String value) {
    return Qualifier.newBuilder().setName(name).setValue(value).build();
  }

  static FetchBlobRequest.Builder req(String... uris) {
    FetchBlobRequest.Builder b = FetchBlobRequest.newBuilder();
    for (String u : uris) {
      b.addUris(u);
    }
    return b;
  }

  byte[] cas(FetchBlobResponse r) throws Exception {
    DigestFunction fn = DigestProtos.functionOf(r.getDigestFunction());
    try (var blob = store.get(BlobKey.cas(DigestProtos.fromProto(r.getBlobDigest(), fn)))) {
      assertThat(blob).as("blob of %s in the CAS", r.getBlobDigest()).isNotNull();
      return blob.readAllBytes();
    }
  }

  static int closedPort() throws Exception {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  // ---- checksums ----------------------------------------------------------------------------------

  @Test
  void fetchesVerifiesAndStores() throws Exception {
    byte[] a = random(5000, 1);
    origin.files.put("/a.tar.gz", a);
    FetchBlobResponse r = fetch.fetchBlob(req(origin.url("/a.tar.gz"))
        .addQualifiers(q("checksum.sri", sri("sha256", a))).build());
    assertThat(r.getStatus().getCode()).isZero();
    assertThat(r.getUri()).isEqualTo(origin.url("/a.tar.gz"));
    assertThat(r.getBlobDigest()).isEqualTo(DigestProtos.toProto(Digest.of(DigestFunction.SHA256, a)));
    assertThat(cas(r)).isEqualTo(a);
    assertThat(assets.index().list()).extracting(AssetIndex.Entry::name).containsExactly("a.tar.gz");
  }

  @Test
  void checksumMismatchIsReportedInTheResponseAndNothingIsStored() throws Exception {
    byte[] a = random(5000, 2);
    origin.files.put("/a", a);
    FetchBlobResponse r = fetch.fetchBlob(req(origin.url("/a"))
        .addQualifiers(q("checksum.sri", sri("sha256", random(10, 3)))).build());
    assertThat(r.getStatus().getCode()).isEqualTo(Status.Code.ABORTED.value());
    assertThat(r.getStatus().getMessage()).contains("checksum mismatch", sri("sha256", a));
    assertThat(store.contains(BlobKey.cas(Digest.of(DigestFunction.SHA256, a)))).isFalse();
    assertThat(assets.index().list()).isEmpty();
    // and a later fetch without the checksum is not answered from a record of the bad one
    fetch.fetchBlob(req(origin.url("/a")).build());
    assertThat(origin.hits("/a")).isEqualTo(2);
  }

  @Test
  void strongestAlgorithmDecidesAndAnyOfItsValuesMatches() throws Exception {
    byte[] a = random(3000, 4);
    origin.files.put("/a", a);
    // wrong sha256 but right sha512: sha512 is the strongest given, so it decides
    String value = sri("sha256", random(5, 5)) + " " + sri("sha512", random(5, 6)) + " " + sri("sha512", a);
    FetchBlobResponse r = fetch.fetchBlob(req(origin.url("/a")).addQualifiers(q("checksum.sri", value)).build());
    assertThat(r.getStatus().getCode()).isZero();
    assertThat(cas(r)).isEqualTo(a);
    // right sha256 but wrong sha384: rejected
    FetchBlobResponse bad = fetch.fetchBlob(req(origin.url("/a"))
        .addQualifiers(q("checksum.sri", sri("sha256", a) + " " + sri("sha384", random(5, 7)))).build());
    assertThat(bad.getStatus().getCode()).isEqualTo(Status.Code.ABORTED.value());
    // later, the sha512 alone answers from the index without the origin
    origin.close();
    FetchBlobResponse again = fetch.fetchBlob(req(origin.url("/other"))
        .addQualifiers(q("checksum.sri", sri("sha512", a))).build());
    assertThat(again.getStatus().getCode()).isZero();
    assertThat(again.getBlobDigest()).isEqualTo(r.getBlobDigest());
  }

  @Test
  void checksumsThatCannotBeVerifiedAreRejected() {
    for (String v : new String[] {"md5-1B2M2Y8AsgTpgAmY7PhCfg==", "sha256-notbase64!", "sha256-AAAA", "garbage"}) {
      assertThatThrownBy(() -> fetch.fetchBlob(req(origin.url("/a")).addQualifiers(q("checksum.sri", v)).build()))
          .as(v)
          .isInstanceOfSatisfying(StatusRuntimeException.class,
              e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT));
    }
    assertThat(origin.requests).isEmpty();
  }

  // ---- qualifiers ---------------------------------------------------------------------------------

  @Test
  void unknownQualifierIsInvalidArgumentWithBadRequest() {
    StatusRuntimeException e = (StatusRuntimeException) org.assertj.core.api.Assertions.catchThrowable(() ->
        fetch.fetchBlob(req(origin.url("/a")).addQualifiers(q("resource_type", "application/x-tar")).build()));
    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    com.google.rpc.Status st = StatusProto.fromThrowable(e);
    assertThat(st).isNotNull();
    BadRequest br = st.getDetailsList().stream().filter(a -> a.is(BadRequest.class)).map(a -> {
      try {
        return a.unpack(BadRequest.class);
      } catch (Exception x) {
        throw new AssertionError(x);
      }
    }).findFirst().orElseThrow();
    assertThat(br.getFieldViolationsList()).extracting(BadRequest.FieldViolation::getField)
        .containsExactly("qualifiers.name");
    assertThat(br.getFieldViolations(0).getDescription()).contains("resource_type");
    assertThat(origin.requests).isEmpty();
  }

  @Test
  void headerQualifiersReachTheOrigin() throws Exception {
    byte[] a = random(100, 8);
    origin.files.put("/b", a);
    FetchBlobResponse r = fetch.fetchBlob(req(origin.url("/missing"), origin.url("/b"))
        .addQualifiers(q("http_header:Authorization", "Bearer global"))
        .addQualifiers(q("http_header:Accept", "application/gzip,application/x-tar"))
        .addQualifiers(q("http_header_url:1:X-Token", "only-for-b"))
        .addQualifiers(q("http_header_url:1:Authorization", "Bearer b"))
        .addQualifiers(q("bazel.canonical_id", "b-v1"))
        .build());
    assertThat(r.getStatus().getCode()).isZero();
    assertThat(r.getUri()).isEqualTo(origin.url("/b"));
    Origin.Request first = origin.requests.get(0);
    Origin.Request second = origin.requests.get(1);
    assertThat(first.path()).isEqualTo("/missing");
    assertThat(first.headers().getFirst("Authorization")).isEqualTo("Bearer global");
    assertThat(first.headers().getFirst("Accept")).isEqualTo("application/gzip,application/x-tar");
    assertThat(first.headers().containsKey("X-Token")).isFalse();
    assertThat(second.headers().getFirst("X-Token")).isEqualTo("only-for-b");
    assertThat(second.headers().get("Authorization")).containsExactly("Bearer b");
    // headers are not part of the request's identity; the canonical id is
    origin.close();
    FetchBlobResponse cached = fetch.fetchBlob(req(origin.url("/b"))
        .addQualifiers(q("http_header:Authorization", "Bearer other"))
        .addQualifiers(q("bazel.canonical_id", "b-v1")).build());
    assertThat(cached.getStatus().getCode()).isZero();
    assertThat(cached.getQualifiersList()).containsExactly(q("bazel.canonical_id", "b-v1"));
    assertThat(assets.index().list()).extracting(AssetIndex.Entry::idHash)
        .containsExactly(AssetIndex.canonicalIdHash("b-v1"));
    FetchBlobResponse otherId = fetch.fetchBlob(req(origin.url("/b"))
        .addQualifiers(q("bazel.canonical_id", "b-v2")).build());
    assertThat(otherId.getStatus().getCode()).isNotZero();
  }

  @Test
  void badHeaderQualifiersAreInvalidArgument() {
    for (Qualifier bad : new Qualifier[] {q("http_header_url:1:X", "v"), q("http_header_url:x:X", "v"),
        q("http_header:", "v")}) {
      assertThatThrownBy(() -> fetch.fetchBlob(req(origin.url("/a")).addQualifiers(bad).build()))
          .isInstanceOfSatisfying(StatusRuntimeException.class,
              e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT));
    }
    assertThatThrownBy(() -> fetch.fetchBlob(FetchBlobRequest.getDefaultInstance()))
        .hasMessageContaining("uris");
  }

  // ---- origin failures ----------------------------------------------------------------------------

  @Test
  void firstUriDownSecondWorks() throws Exception {
    byte[] a = random(100, 9);
    origin.files.put("/a", a);
    String down = "http://127.0.0.1:" + closedPort() + "/a";
    FetchBlobResponse r = fetch.fetchBlob(req(down, origin.url("/a")).build());
    assertThat(r.getStatus().getCode()).isZero();
    assertThat(r.getUri()).isEqualTo(origin.url("/a"));
    assertThat(cas(r)).isEqualTo(a);
  }

  @Test
  void allUrisFailingIsAStatusInTheResponse() throws Exception {
    String down = "http://127.0.0.1:" + closedPort() + "/a";
    FetchBlobResponse r = fetch.fetchBlob(req(down, origin.url("/nope"), "ftp://example.invalid/x").build());
    assertThat(r.getStatus().getCode()).isNotZero();
    assertThat(r.getStatus().getMessage()).contains(down, "cannot connect", origin.url("/nope"), "HTTP 404",
        "only http and https");
    assertThat(r.hasBlobDigest()).isFalse();
    FetchBlobResponse notFound = fetch.fetchBlob(req(origin.url("/nope")).build());
    assertThat(notFound.getStatus().getCode()).isEqualTo(Status.Code.NOT_FOUND.value());
  }

  @Test
  void oversizedBodiesAreRefusedWithOrWithoutContentLength() throws Exception {
    byte[] big = random((int) MAX_BLOB + 1, 10);
    origin.files.put("/big", big);
    for (String path : new String[] {"/big", "/chunked/big"}) {
      FetchBlobResponse r = fetch.fetchBlob(req(origin.url(path)).build());
      assertThat(r.getStatus().getCode()).as(path).isEqualTo(Status.Code.RESOURCE_EXHAUSTED.value());
      assertThat(r.getStatus().getMessage()).contains("max blob size");
    }
    assertThat(store.contains(BlobKey.cas(Digest.of(DigestFunction.SHA256, big)))).isFalse();
    byte[] fits = random((int) MAX_BLOB, 11);
    origin.files.put("/fits", fits);
    assertThat(cas(fetch.fetchBlob(req(origin.url("/chunked/fits")).build()))).isEqualTo(fits);
  }

  @Test
  void followsRedirects() throws Exception {
    byte[] a = random(100, 12);
    origin.files.put("/real.zip", a);
    FetchBlobResponse r = fetch.fetchBlob(req(origin.url("/redirect/real.zip"))
        .addQualifiers(q("checksum.sri", sri("sha256", a))).build());
    assertThat(r.getStatus().getCode()).isZero();
    assertThat(r.getUri()).isEqualTo(origin.url("/redirect/real.zip"));
    assertThat(cas(r)).isEqualTo(a);
    assertThat(origin.hits("/real.zip")).isEqualTo(1);
  }

  @Test
  void requestTimeoutIsHonoured() throws Exception {
    origin.files.put("/a", random(10, 13));
    long t0 = System.nanoTime();
    FetchBlobResponse r = fetch.fetchBlob(req(origin.url("/slow/a"))
        .setTimeout(Durations.fromMillis(300)).build());
    long ms = (System.nanoTime() - t0) / 1_000_000;
    assertThat(r.getStatus().getCode()).isEqualTo(Status.Code.DEADLINE_EXCEEDED.value());
    assertThat(ms).isLessThan(5_000);
  }

  @Test
  void downloadStopsWhenTheClientStopsWaiting() throws Exception {
    origin.files.put("/a", random(10, 20));
    // the origin answers after 10 s; the client's gRPC deadline is 300 ms. The server's download budget is
    // that same deadline, so either side may speak first: the client's own timer (an exception) or the
    // server's answer carrying DEADLINE_EXCEEDED. Both are right; what matters is that nothing waits 10 s.
    long t0 = System.nanoTime();
    Status.Code code;
    try {
      code = Status.fromCodeValue(fetch.withDeadlineAfter(300, TimeUnit.MILLISECONDS)
          .fetchBlob(req(origin.url("/slow/a")).build()).getStatus().getCode()).getCode();
    } catch (StatusRuntimeException e) {
      code = e.getStatus().getCode();
    }
    assertThat(code).isEqualTo(Status.Code.DEADLINE_EXCEEDED);
    assertThat((System.nanoTime() - t0) / 1_000_000).isLessThan(5_000);
    // the server gave up too: its temporary download file is gone long before the origin would answer
    Path scratch = tmp.resolve("scratch");
    long deadline = System.nanoTime() + 3_000_000_000L;
    while (System.nanoTime() < deadline && !isEmpty(scratch)) {
      Thread.sleep(50);
    }
    assertThat(isEmpty(scratch)).isTrue();
  }

  static boolean isEmpty(Path dir) throws java.io.IOException {
    if (!java.nio.file.Files.isDirectory(dir)) {
      return true;
    }
    try (var s = java.nio.file.Files.list(dir)) {
      return s.findAny().isEmpty();
    }
  }

  // ---- answers from the cache ---------------------------------------------------------------------

  @Test
  void cachedAnswersNeedNoOriginAndSurviveARestart() throws Exception {
    byte[] a = random(2000, 14);
    byte[] b = random(2000, 15);
    origin.files.put("/a", a);
    origin.files.put("/b", b);
    FetchBlobRequest byChecksum = req(origin.url("/a")).addQualifiers(q("checksum.sri", sri("sha256", a))).build();
    FetchBlobRequest byUri = req(origin.url("/b")).build();
    assertThat(fetch.fetchBlob(byChecksum).getStatus().getCode()).isZero();
    assertThat(fetch.fetchBlob(byUri).getStatus().getCode()).isZero();
    origin.close();
    stop();
    start();
    FetchBlobResponse ra = fetch.fetchBlob(byChecksum);
    FetchBlobResponse rb = fetch.fetchBlob(byUri);
    assertThat(ra.getStatus().getCode()).isZero();
    assertThat(rb.getStatus().getCode()).isZero();
    assertThat(cas(ra)).isEqualTo(a);
    assertThat(cas(rb)).isEqualTo(b);
    // the checksum alone is enough, whatever the URI
    assertThat(fetch.fetchBlob(req("http://127.0.0.1:1/elsewhere")
        .addQualifiers(q("checksum.sri", sri("sha256", a))).build()).getStatus().getCode()).isZero();
    assertThat(origin.hits("/a")).isEqualTo(1);
    assertThat(origin.hits("/b")).isEqualTo(1);
  }

  @Test
  void oldestContentAcceptedForcesARefetch() throws Exception {
    byte[] v1 = "version 1".getBytes(StandardCharsets.UTF_8);
    byte[] v2 = "version 2".getBytes(StandardCharsets.UTF_8);
    origin.files.put("/latest", v1);
    assertThat(cas(fetch.fetchBlob(req(origin.url("/latest")).build()))).isEqualTo(v1);
    origin.files.put("/latest", v2);
    // cached content fetched before an hour ago is fine: no refetch
    FetchBlobResponse old = fetch.fetchBlob(req(origin.url("/latest"))
        .setOldestContentAccepted(Timestamps.fromMillis(System.currentTimeMillis() - 3_600_000)).build());
    assertThat(cas(old)).isEqualTo(v1);
    assertThat(origin.hits("/latest")).isEqualTo(1);
    // what Bazel sends without a checksum: now + 1h, i.e. never accept cached content
    FetchBlobResponse fresh = fetch.fetchBlob(req(origin.url("/latest"))
        .setOldestContentAccepted(Timestamps.fromMillis(System.currentTimeMillis() + 3_600_000)).build());
    assertThat(cas(fresh)).isEqualTo(v2);
    assertThat(origin.hits("/latest")).isEqualTo(2);
    // and the record now names the new content
    assertThat(cas(fetch.fetchBlob(req(origin.url("/latest")).build()))).isEqualTo(v2);
    assertThat(origin.hits("/latest")).isEqualTo(2);
    // a checksum hit is not taken either when the client demands fresh content
    byte[] c = random(50, 16);
    origin.files.put("/c", c);
    FetchBlobRequest.Builder withSri = req(origin.url("/c")).addQualifiers(q("checksum.sri", sri("sha256", c)));
    fetch.fetchBlob(withSri.build());
    fetch.fetchBlob(withSri.setOldestContentAccepted(Timestamps.fromMillis(System.currentTimeMillis() + 60_000))
        .build());
    assertThat(origin.hits("/c")).isEqualTo(2);
  }

  // ---- push ---------------------------------------------------------------------------------------

  @Test
  void pushedBlobIsFetchedWithoutTheOrigin() throws Exception {
    byte[] a = random(4000, 17);
    Digest d = Digest.of(DigestFunction.SHA256, a);
    store.put(BlobKey.cas(d), a);
    String url = "https://mirror.invalid/deps/a-1.0.tar.gz";
    push.pushBlob(PushBlobRequest.newBuilder().addUris(url).addUris("https://other.invalid/a.tgz")
        .addQualifiers(q("checksum.sri", sri("sha384", a)))
        .addQualifiers(q("resource_type", "application/gzip"))
        .setBlobDigest(DigestProtos.toProto(d)).build());
    FetchBlobResponse r = fetch.fetchBlob(req(url)
        .addQualifiers(q("checksum.sri", sri("sha384", a)))
        .addQualifiers(q("resource_type", "application/gzip")).build());
    assertThat(r.getStatus().getCode()).isZero();
    assertThat(cas(r)).isEqualTo(a);
    // by checksum alone, via the sha384 index
    assertThat(fetch.fetchBlob(req("https://x.invalid/y").addQualifiers(q("checksum.sri", sri("sha384", a)))
        .build()).getBlobDigest()).isEqualTo(DigestProtos.toProto(d));
    // by the second URI and the same qualifiers
    assertThat(fetch.fetchBlob(req("https://other.invalid/a.tgz")
        .addQualifiers(q("checksum.sri", sri("sha384", a)))
        .addQualifiers(q("resource_type", "application/gzip")).build()).getStatus().getCode()).isZero();
    assertThat(assets.index().list()).extracting(AssetIndex.Entry::name).containsExactly("a-1.0.tar.gz");
    // an unknown qualifier is not satisfied by the checksum alone, only by a record carrying it
    assertThatThrownBy(() -> fetch.fetchBlob(req("https://x.invalid/y")
        .addQualifiers(q("checksum.sri", sri("sha384", a)))
        .addQualifiers(q("resource_type", "application/gzip")).build()))
        .isInstanceOfSatisfying(StatusRuntimeException.class,
            e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT));
  }

  @Test
  void pushRefusesMissingBlobsAndWrongChecksums() throws Exception {
    byte[] a = random(100, 18);
    Digest d = Digest.of(DigestFunction.SHA256, a);
    PushBlobRequest.Builder b = PushBlobRequest.newBuilder().addUris("https://m.invalid/a")
        .setBlobDigest(DigestProtos.toProto(d));
    assertThatThrownBy(() -> push.pushBlob(b.build())).isInstanceOfSatisfying(StatusRuntimeException.class,
        e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.FAILED_PRECONDITION));
    store.put(BlobKey.cas(d), a);
    assertThatThrownBy(() -> push.pushBlob(b.addQualifiers(q("checksum.sri", sri("sha256", random(3, 1)))).build()))
        .isInstanceOfSatisfying(StatusRuntimeException.class,
            e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT));
    assertThat(assets.index().list()).isEmpty();
    assertThatThrownBy(() -> fetch.fetchDirectory(FetchDirectoryRequest.newBuilder().addUris("x").build()))
        .isInstanceOfSatisfying(StatusRuntimeException.class,
            e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNIMPLEMENTED));
  }

  // ---- BLAKE3 -------------------------------------------------------------------------------------

  @Test
  void blake3RequestStoresUnderBlake3AndUsesTheSha256Index() throws Exception {
    byte[] a = random(3000, 19);
    origin.files.put("/a", a);
    FetchBlobRequest request = req(origin.url("/a"))
        .setDigestFunction(build.bazel.remote.execution.v2.DigestFunction.Value.BLAKE3)
        .addQualifiers(q("checksum.sri", sri("sha256", a))).build();
    FetchBlobResponse r = fetch.fetchBlob(request);
    assertThat(r.getStatus().getCode()).isZero();
    assertThat(r.getDigestFunction()).isEqualTo(build.bazel.remote.execution.v2.DigestFunction.Value.BLAKE3);
    assertThat(r.getBlobDigest()).isEqualTo(DigestProtos.toProto(Digest.of(DigestFunction.BLAKE3, a)));
    assertThat(cas(r)).isEqualTo(a);
    assertThat(store.contains(BlobKey.cas(Digest.of(DigestFunction.SHA256, a)))).isFalse();
    origin.close();
    assertThat(fetch.fetchBlob(request).getBlobDigest()).isEqualTo(r.getBlobDigest());
    assertThat(origin.hits("/a")).isEqualTo(1);
  }
}
