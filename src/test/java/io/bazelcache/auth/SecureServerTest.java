package io.bazelcache.auth;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import build.bazel.remote.execution.v2.ActionCacheGrpc;
import build.bazel.remote.execution.v2.ActionResult;
import build.bazel.remote.execution.v2.BatchReadBlobsRequest;
import build.bazel.remote.execution.v2.BatchUpdateBlobsRequest;
import build.bazel.remote.execution.v2.BatchUpdateBlobsResponse;
import build.bazel.remote.execution.v2.CapabilitiesGrpc;
import build.bazel.remote.execution.v2.ContentAddressableStorageGrpc;
import build.bazel.remote.execution.v2.FindMissingBlobsRequest;
import build.bazel.remote.execution.v2.GetActionResultRequest;
import build.bazel.remote.execution.v2.GetCapabilitiesRequest;
import build.bazel.remote.execution.v2.UpdateActionResultRequest;
import com.google.bytestream.ByteStreamGrpc;
import com.google.bytestream.ByteStreamProto.ReadRequest;
import com.google.bytestream.ByteStreamProto.WriteRequest;
import com.google.bytestream.ByteStreamProto.WriteResponse;
import com.google.protobuf.ByteString;
import io.bazelcache.auth.HtpasswdEntries.Format;
import io.bazelcache.config.ConfigLoader;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.server.CacheServer;
import io.bazelcache.testing.TestPki;
import io.grpc.CallCredentials;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole server (CacheServer from a real configuration, DiskStore, both listeners on 127.0.0.1) under each
 * authentication mode, talked to with java.net.http.HttpClient and grpc-java clients.
 */
class SecureServerTest {
  @TempDir static Path shared;
  static TestPki pki;
  @TempDir Path tmp;

  private final List<AutoCloseable> open = new ArrayList<>();
  private CacheServer server;

  @BeforeAll
  static void makePki() throws Exception {
    pki = TestPki.create(shared.resolve("pki"));
  }

  @AfterEach
  void closeAll() throws Exception {
    for (AutoCloseable c : open.reversed()) {
      c.close();
    }
  }

  private CacheServer start(String... extra) throws Exception {
    List<String> args = new ArrayList<>(List.of("--dir", tmp.resolve("cache").toString(), "--max_size", "1",
        "--http_address", "127.0.0.1:0", "--grpc_address", "127.0.0.1:0"));
    args.addAll(List.of(extra));
    server = CacheServer.start(ConfigLoader.load(args.toArray(String[]::new), Map.of()));
    open.add(server);
    return server;
  }

  private Path htpasswd() throws Exception {
    return Files.writeString(tmp.resolve("htpasswd"), String.join("\n",
        HtpasswdEntries.line("alice", "bcrypt-pw", Format.BCRYPT),
        HtpasswdEntries.line("bob", "apr1-pw", Format.APR1),
        HtpasswdEntries.line("carol", "sha1-pw", Format.SHA1)) + "\n");
  }

  // ------------------------------------------------------------------------------------------- HTTP helpers

  static String basic(String user, String password) {
    return "Basic " + Base64.getEncoder().encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
  }

  private HttpClient httpClient(SSLContext tls) {
    HttpClient.Builder b = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(5));
    if (tls != null) {
      b.sslContext(tls);
    }
    HttpClient c = b.build();
    open.add(c::shutdownNow);
    return c;
  }

  private URI http(String path) {
    return URI.create("http://127.0.0.1:" + server.httpPort() + path);
  }

  private URI https(String path) {
    return URI.create("https://127.0.0.1:" + server.httpPort() + path);
  }

  private static HttpResponse<byte[]> send(HttpClient c, String method, URI uri, String auth, byte[] body)
      throws Exception {
    HttpRequest.Builder b = HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(20))
        .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofByteArray(body));
    if (auth != null) {
      b.header("Authorization", auth);
    }
    return c.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
  }

  private static byte[] random(int n, long seed) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    return b;
  }

  private static String cas(byte[] data) {
    return "/cas/" + DigestFunction.SHA256.hexOf(data);
  }

  private static void assertUnauthorized(HttpResponse<byte[]> r) {
    assertThat(r.statusCode()).isEqualTo(401);
    assertThat(r.headers().firstValue("WWW-Authenticate")).contains("Basic realm=\"bazel-cache\"");
  }

  // ------------------------------------------------------------------------------------------- gRPC helpers

  private ManagedChannel channel(ChannelCredentials creds) {
    ManagedChannel ch = Grpc.newChannelBuilderForAddress("127.0.0.1", server.grpcPort(), creds).build();
    open.add(() -> {
      ch.shutdownNow();
      ch.awaitTermination(5, TimeUnit.SECONDS);
    });
    return ch;
  }

  private ManagedChannel plaintext() {
    return channel(InsecureChannelCredentials.create());
  }

  private ManagedChannel tls(TestPki.Identity client) throws IOException {
    TlsChannelCredentials.Builder b = TlsChannelCredentials.newBuilder().trustManager(pki.caPem().toFile());
    if (client != null) {
      b.keyManager(client.certPem().toFile(), client.keyPem().toFile());
    }
    return channel(b.build());
  }

  private static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  /** What Bazel sends for grpc://user:pass@host: {@code authorization: Basic ...} on every call. */
  static CallCredentials basicCredentials(String user, String password) {
    return new CallCredentials() {
      @Override
      public void applyRequestMetadata(RequestInfo info, Executor executor, MetadataApplier applier) {
        Metadata m = new Metadata();
        m.put(AUTHORIZATION, basic(user, password));
        applier.apply(m);
      }
    };
  }

  private static build.bazel.remote.execution.v2.Digest digest(byte[] data) {
    return build.bazel.remote.execution.v2.Digest.newBuilder().setHash(DigestFunction.SHA256.hexOf(data))
        .setSizeBytes(data.length).build();
  }

  /** Calls {@code call}; returns OK, or the status code it failed with. */
  private static Status.Code code(Runnable call) {
    try {
      call.run();
      return Status.Code.OK;
    } catch (StatusRuntimeException e) {
      return e.getStatus().getCode();
    }
  }

  private static Status.Code batchUpload(ManagedChannel ch, CallCredentials creds, byte[] data) {
    var stub = ContentAddressableStorageGrpc.newBlockingStub(ch).withDeadlineAfter(20, TimeUnit.SECONDS);
    var s = creds == null ? stub : stub.withCallCredentials(creds);
    return code(() -> {
      BatchUpdateBlobsResponse r = s.batchUpdateBlobs(BatchUpdateBlobsRequest.newBuilder()
          .addRequests(BatchUpdateBlobsRequest.Request.newBuilder().setDigest(digest(data))
              .setData(ByteString.copyFrom(data)))
          .build());
      assertThat(r.getResponses(0).getStatus().getCode()).isZero();
    });
  }

  private static List<build.bazel.remote.execution.v2.Digest> missing(ManagedChannel ch, CallCredentials creds,
      byte[]... blobs) {
    var stub = ContentAddressableStorageGrpc.newBlockingStub(ch).withDeadlineAfter(20, TimeUnit.SECONDS);
    var s = creds == null ? stub : stub.withCallCredentials(creds);
    FindMissingBlobsRequest.Builder req = FindMissingBlobsRequest.newBuilder();
    for (byte[] b : blobs) {
      req.addBlobDigests(digest(b));
    }
    return s.findMissingBlobs(req.build()).getMissingBlobDigestsList();
  }

  private static Status.Code byteStreamWrite(ManagedChannel ch, CallCredentials creds, byte[] data) throws Exception {
    var stub = ByteStreamGrpc.newStub(ch).withDeadlineAfter(20, TimeUnit.SECONDS);
    var s = creds == null ? stub : stub.withCallCredentials(creds);
    CompletableFuture<Status.Code> done = new CompletableFuture<>();
    StreamObserver<WriteRequest> out = s.write(new StreamObserver<>() {
      @Override
      public void onNext(WriteResponse value) {
        assertThat(value.getCommittedSize()).isEqualTo(data.length);
      }

      @Override
      public void onError(Throwable t) {
        done.complete(Status.fromThrowable(t).getCode());
      }

      @Override
      public void onCompleted() {
        done.complete(Status.Code.OK);
      }
    });
    String resource = "uploads/" + java.util.UUID.randomUUID() + "/blobs/" + DigestFunction.SHA256.hexOf(data) + "/"
        + data.length;
    out.onNext(WriteRequest.newBuilder().setResourceName(resource).setData(ByteString.copyFrom(data))
        .setFinishWrite(true).build());
    out.onCompleted();
    return done.get(20, TimeUnit.SECONDS);
  }

  private static byte[] byteStreamRead(ManagedChannel ch, CallCredentials creds, byte[] data) {
    var stub = ByteStreamGrpc.newBlockingStub(ch).withDeadlineAfter(20, TimeUnit.SECONDS);
    var s = creds == null ? stub : stub.withCallCredentials(creds);
    Iterator<com.google.bytestream.ByteStreamProto.ReadResponse> it = s.read(ReadRequest.newBuilder()
        .setResourceName("blobs/" + DigestFunction.SHA256.hexOf(data) + "/" + data.length).build());
    ByteString all = ByteString.EMPTY;
    while (it.hasNext()) {
      all = all.concat(it.next().getData());
    }
    return all.toByteArray();
  }

  private static HealthCheckResponse.ServingStatus health(ManagedChannel ch, String service) {
    return HealthGrpc.newBlockingStub(ch).withDeadlineAfter(10, TimeUnit.SECONDS)
        .check(HealthCheckRequest.newBuilder().setService(service).build()).getStatus();
  }

  // ------------------------------------------------------------------------------------------------ tests

  @Test
  void htpasswdGuardsEveryHttpRequestExceptStatus() throws Exception {
    start("--htpasswd_file", htpasswd().toString());
    HttpClient c = httpClient(null);
    String[][] users = {{"alice", "bcrypt-pw"}, {"bob", "apr1-pw"}, {"carol", "sha1-pw"}};
    for (int i = 0; i < users.length; i++) {
      byte[] data = random(1000 + i, i);
      String auth = basic(users[i][0], users[i][1]);
      assertThat(send(c, "PUT", http(cas(data)), auth, data).statusCode()).as(users[i][0]).isEqualTo(200);
      HttpResponse<byte[]> got = send(c, "GET", http(cas(data)), auth, null);
      assertThat(got.statusCode()).isEqualTo(200);
      assertThat(got.body()).isEqualTo(data);
      assertThat(send(c, "HEAD", http(cas(data)), auth, null).statusCode()).isEqualTo(200);
      assertUnauthorized(send(c, "GET", http(cas(data)), null, null));
      assertUnauthorized(send(c, "HEAD", http(cas(data)), basic(users[i][0], "wrong"), null));
    }

    // Wrong password, unknown user, missing or non-Basic header: 401 and nothing stored.
    byte[] data = random(5000, 99);
    String alice = basic("alice", "bcrypt-pw");
    assertUnauthorized(send(c, "PUT", http(cas(data)), basic("alice", "apr1-pw"), data));
    assertUnauthorized(send(c, "PUT", http(cas(data)), basic("mallory", "bcrypt-pw"), data));
    assertUnauthorized(send(c, "PUT", http(cas(data)), null, data));
    assertUnauthorized(send(c, "PUT", http(cas(data)), "Bearer bcrypt-pw", data));
    assertThat(send(c, "GET", http(cas(data)), alice, null).statusCode()).isEqualTo(404);

    // A large upload announced with Expect: 100-continue is refused before its body is sent, and not stored.
    byte[] big = random(3 << 20, 7);
    HttpResponse<byte[]> refused = c.send(HttpRequest.newBuilder(http(cas(big))).expectContinue(true)
        .header("Authorization", basic("bob", "nope"))
        .PUT(HttpRequest.BodyPublishers.ofByteArray(big)).build(), HttpResponse.BodyHandlers.ofByteArray());
    assertUnauthorized(refused);
    assertThat(send(c, "GET", http(cas(big)), alice, null).statusCode()).isEqualTo(404);

    // Probes: /status is open; /metrics follows the read rule (closed here); bad paths are not revealed either.
    HttpResponse<byte[]> status = send(c, "GET", http("/status"), null, null);
    assertThat(status.statusCode()).isEqualTo(200);
    assertThat(new String(status.body(), StandardCharsets.UTF_8)).contains("CurrSize");
    assertUnauthorized(send(c, "GET", http("/metrics"), null, null));
    assertUnauthorized(send(c, "GET", http("/cas/not-a-hash"), null, null));
    assertUnauthorized(send(c, "PUT", http("/status"), null, new byte[0]));
  }

  @Test
  void htpasswdGuardsEveryGrpcCallExceptHealth() throws Exception {
    start("--htpasswd_file", htpasswd().toString());
    ManagedChannel ch = plaintext();
    byte[] a = random(300, 1);
    byte[] b = random(70_000, 2);

    // No credentials: every REAPI and ByteStream call is refused, health answers.
    assertThat(code(() -> CapabilitiesGrpc.newBlockingStub(ch).getCapabilities(
        GetCapabilitiesRequest.getDefaultInstance()))).isEqualTo(Status.Code.UNAUTHENTICATED);
    assertThat(code(() -> missing(ch, null, a))).isEqualTo(Status.Code.UNAUTHENTICATED);
    assertThat(batchUpload(ch, null, a)).isEqualTo(Status.Code.UNAUTHENTICATED);
    assertThat(byteStreamWrite(ch, null, b)).isEqualTo(Status.Code.UNAUTHENTICATED);
    assertThat(health(ch, "")).isEqualTo(HealthCheckResponse.ServingStatus.SERVING);
    assertThat(health(ch, "/grpc.health.v1.Health/Check")).isEqualTo(HealthCheckResponse.ServingStatus.SERVING);

    // Wrong password: refused, and nothing was stored.
    CallCredentials wrong = basicCredentials("alice", "sha1-pw");
    assertThat(batchUpload(ch, wrong, a)).isEqualTo(Status.Code.UNAUTHENTICATED);
    assertThat(byteStreamWrite(ch, wrong, b)).isEqualTo(Status.Code.UNAUTHENTICATED);
    CallCredentials alice = basicCredentials("alice", "bcrypt-pw");
    assertThat(missing(ch, alice, a, b)).containsExactlyInAnyOrder(digest(a), digest(b));

    // Each user and hash format works for writes and reads.
    assertThat(batchUpload(ch, alice, a)).isEqualTo(Status.Code.OK);
    assertThat(byteStreamWrite(ch, basicCredentials("bob", "apr1-pw"), b)).isEqualTo(Status.Code.OK);
    CallCredentials carol = basicCredentials("carol", "sha1-pw");
    assertThat(missing(ch, carol, a, b)).isEmpty();
    assertThat(byteStreamRead(ch, carol, b)).isEqualTo(b);
    assertThat(code(() -> byteStreamRead(ch, null, b))).isEqualTo(Status.Code.UNAUTHENTICATED);
  }

  @Test
  void unauthenticatedReadsOpenReadsButNotWrites() throws Exception {
    start("--htpasswd_file", htpasswd().toString(), "--allow_unauthenticated_reads");
    HttpClient c = httpClient(null);
    byte[] data = random(2000, 5);
    assertUnauthorized(send(c, "PUT", http(cas(data)), null, data));
    assertUnauthorized(send(c, "PUT", http(cas(data)), basic("bob", "bcrypt-pw"), data));
    assertThat(send(c, "GET", http(cas(data)), null, null).statusCode()).isEqualTo(404);
    assertThat(send(c, "PUT", http(cas(data)), basic("bob", "apr1-pw"), data).statusCode()).isEqualTo(200);
    HttpResponse<byte[]> anonymous = send(c, "GET", http(cas(data)), null, null);
    assertThat(anonymous.statusCode()).isEqualTo(200);
    assertThat(anonymous.body()).isEqualTo(data);
    assertThat(send(c, "HEAD", http(cas(data)), null, null).statusCode()).isEqualTo(200);
    assertThat(send(c, "GET", http("/metrics"), null, null).statusCode()).isNotEqualTo(401);

    ManagedChannel ch = plaintext();
    byte[] blob = random(500, 6);
    byte[] ac = random(64, 7);
    // Anonymous reads: GetCapabilities, FindMissingBlobs, BatchReadBlobs, ByteStream.Read, GetActionResult.
    assertThat(CapabilitiesGrpc.newBlockingStub(ch).getCapabilities(GetCapabilitiesRequest.getDefaultInstance())
        .hasCacheCapabilities()).isTrue();
    assertThat(missing(ch, null, blob)).containsExactly(digest(blob));
    assertThat(code(() -> ActionCacheGrpc.newBlockingStub(ch).getActionResult(GetActionResultRequest.newBuilder()
        .setActionDigest(digest(ac)).build()))).isEqualTo(Status.Code.NOT_FOUND);
    // Anonymous writes: BatchUpdateBlobs, ByteStream.Write, UpdateActionResult are refused.
    assertThat(batchUpload(ch, null, blob)).isEqualTo(Status.Code.UNAUTHENTICATED);
    assertThat(byteStreamWrite(ch, null, blob)).isEqualTo(Status.Code.UNAUTHENTICATED);
    assertThat(code(() -> ActionCacheGrpc.newBlockingStub(ch).updateActionResult(UpdateActionResultRequest
        .newBuilder().setActionDigest(digest(ac)).setActionResult(ActionResult.newBuilder().setExitCode(0))
        .build()))).isEqualTo(Status.Code.UNAUTHENTICATED);
    assertThat(missing(ch, null, blob)).containsExactly(digest(blob));
    // With credentials the write goes through, and anonymous clients can read it.
    assertThat(batchUpload(ch, basicCredentials("carol", "sha1-pw"), blob)).isEqualTo(Status.Code.OK);
    assertThat(ContentAddressableStorageGrpc.newBlockingStub(ch).batchReadBlobs(BatchReadBlobsRequest.newBuilder()
        .addDigests(digest(blob)).build()).getResponses(0).getData().toByteArray()).isEqualTo(blob);
    assertThat(byteStreamRead(ch, null, blob)).isEqualTo(blob);
  }

  @Test
  void tlsOnBothListenersWithMinimumVersion() throws Exception {
    start("--tls_cert_file", pki.server().certPem().toString(), "--tls_key_file", pki.server().keyPem().toString(),
        "--min_tls_version", "1.3");
    HttpClient c = httpClient(pki.clientContext(null));
    byte[] data = random(200_000, 8);
    assertThat(send(c, "PUT", https(cas(data)), null, data).statusCode()).isEqualTo(200);
    assertThat(send(c, "GET", https(cas(data)), null, null).body()).isEqualTo(data);
    assertThat(send(c, "GET", https("/status"), null, null).statusCode()).isEqualTo(200);

    // A TLS 1.2-only client, and a plain-text client, get nothing.
    HttpClient old = httpClient(pki.clientContext(null, "TLSv1.2"));
    assertThatThrownBy(() -> send(old, "GET", https(cas(data)), null, null)).isInstanceOf(IOException.class);
    assertThatThrownBy(() -> send(httpClient(null), "GET", http(cas(data)), null, null))
        .isInstanceOf(IOException.class);

    ManagedChannel ch = tls(null);
    assertThat(batchUpload(ch, null, random(100, 9))).isEqualTo(Status.Code.OK);
    assertThat(byteStreamRead(ch, null, data)).isEqualTo(data);
    assertThat(health(ch, "")).isEqualTo(HealthCheckResponse.ServingStatus.SERVING);
    assertThat(code(() -> missing(plaintext(), null, data))).isEqualTo(Status.Code.UNAVAILABLE);
  }

  @Test
  void mutualTlsRefusesClientsWithoutAVerifiedCertificate() throws Exception {
    start("--tls_cert_file", pki.server().certPem().toString(), "--tls_key_file", pki.server().keyPem().toString(),
        "--tls_ca_file", pki.caPem().toString());
    byte[] data = random(10_000, 10);
    HttpClient good = httpClient(pki.clientContext(pki.client()));
    assertThat(send(good, "PUT", https(cas(data)), null, data).statusCode()).isEqualTo(200);
    assertThat(send(good, "GET", https(cas(data)), null, null).body()).isEqualTo(data);
    for (TestPki.Identity bad : new TestPki.Identity[] {null, pki.rogueClient()}) {
      HttpClient c = httpClient(pki.clientContext(bad));
      assertThatThrownBy(() -> send(c, "GET", https(cas(data)), null, null)).isInstanceOf(IOException.class);
      byte[] other = random(100, 11);
      assertThatThrownBy(() -> send(c, "PUT", https(cas(other)), null, other)).isInstanceOf(IOException.class);
      assertThat(send(good, "GET", https(cas(other)), null, null).statusCode()).isEqualTo(404);
    }

    ManagedChannel ok = tls(pki.client());
    assertThat(byteStreamWrite(ok, null, random(3000, 12))).isEqualTo(Status.Code.OK);
    assertThat(byteStreamRead(ok, null, data)).isEqualTo(data);
    for (TestPki.Identity bad : new TestPki.Identity[] {null, pki.rogueClient()}) {
      ManagedChannel ch = tls(bad);
      assertThat(code(() -> missing(ch, null, data))).isEqualTo(Status.Code.UNAVAILABLE);
      assertThat(batchUpload(ch, null, random(100, 13))).isEqualTo(Status.Code.UNAVAILABLE);
    }
  }

  @Test
  void mutualTlsWithUnauthenticatedReads() throws Exception {
    start("--tls_cert_file", pki.server().certPem().toString(), "--tls_key_file", pki.server().keyPem().toString(),
        "--tls_ca_file", pki.caPem().toString(), "--allow_unauthenticated_reads");
    byte[] data = random(10_000, 14);
    HttpClient anonymous = httpClient(pki.clientContext(null));
    HttpClient good = httpClient(pki.clientContext(pki.client()));
    assertUnauthorized(send(anonymous, "PUT", https(cas(data)), null, data));
    assertThat(send(anonymous, "GET", https(cas(data)), null, null).statusCode()).isEqualTo(404);
    assertThat(send(good, "PUT", https(cas(data)), null, data).statusCode()).isEqualTo(200);
    assertThat(send(anonymous, "GET", https(cas(data)), null, null).body()).isEqualTo(data);
    // A certificate that does not chain to the CA is still refused outright.
    HttpClient rogue = httpClient(pki.clientContext(pki.rogueClient()));
    assertThatThrownBy(() -> send(rogue, "GET", https(cas(data)), null, null)).isInstanceOf(IOException.class);

    ManagedChannel anon = tls(null);
    byte[] blob = random(400, 15);
    assertThat(batchUpload(anon, null, blob)).isEqualTo(Status.Code.UNAUTHENTICATED);
    assertThat(missing(anon, null, blob)).containsExactly(digest(blob));
    assertThat(health(anon, "")).isEqualTo(HealthCheckResponse.ServingStatus.SERVING);
    assertThat(batchUpload(tls(pki.client()), null, blob)).isEqualTo(Status.Code.OK);
    assertThat(byteStreamRead(anon, null, blob)).isEqualTo(blob);
  }

  @Test
  void httpReadTimeoutClosesSilentConnections() throws Exception {
    start("--http_read_timeout", "1s", "--http_write_timeout", "1s");
    try (Socket s = new Socket()) {
      s.connect(new InetSocketAddress("127.0.0.1", server.httpPort()));
      s.setSoTimeout(15_000);
      s.getOutputStream().write("GET /status HTTP/1.1\r\nHost: x\r\n".getBytes(StandardCharsets.US_ASCII));
      long t0 = System.nanoTime();
      InputStream in = s.getInputStream();
      // The request never ends; the server drops the connection once nothing arrived for a second.
      while (in.read() >= 0) {
        // drain anything the server says before closing
      }
      assertThat(Duration.ofNanos(System.nanoTime() - t0)).isBetween(Duration.ofMillis(500), Duration.ofSeconds(10));
    }
  }

  @Test
  void unusableFilesStopTheStartWithOneLine() throws Exception {
    Path weak = Files.writeString(tmp.resolve("weak"), HtpasswdEntries.line("a", "pw", Format.APR1) + "\n"
        + HtpasswdEntries.line("b", "pw", Format.PLAIN) + "\n");
    assertThatThrownBy(() -> start("--htpasswd_file", weak.toString()))
        .isInstanceOf(IOException.class)
        .hasMessageStartingWith("htpasswd_file " + weak + " line 2: unsupported password format for user \"b\"");
    assertThat(Files.exists(tmp.resolve("cache"))).as("nothing touched on disk").isFalse();

    Path ecKey = Files.writeString(tmp.resolve("ec.key"), "-----BEGIN EC PRIVATE KEY-----\nAAAA\n"
        + "-----END EC PRIVATE KEY-----\n");
    assertThatThrownBy(() -> start("--tls_cert_file", pki.server().certPem().toString(), "--tls_key_file",
        ecKey.toString()))
        .hasMessageContaining("tls_key_file " + ecKey + ": EC PRIVATE KEY is malformed or names no curve; convert it with: openssl"
            + " pkcs8 -topk8 -nocrypt");
    assertThatThrownBy(() -> start("--tls_cert_file", pki.server().keyPem().toString(), "--tls_key_file",
        pki.server().keyPem().toString()))
        .hasMessageStartingWith("tls_cert_file " + pki.server().keyPem());
  }
}
