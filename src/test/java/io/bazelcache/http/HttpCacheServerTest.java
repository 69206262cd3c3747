package io.bazelcache.http;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.github.luben.zstd.Zstd;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.BlobWriter;
import io.bazelcache.storage.InsufficientStorageException;
import io.bazelcache.storage.Kind;
import io.bazelcache.storage.StoreStats;
import io.bazelcache.testing.MemoryBlobStore;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpRequest.BodyPublishers;
import java.net.http.HttpResponse;
import java.net.http.HttpResponse.BodyHandlers;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HttpCacheServerTest {
  static final String EMPTY = DigestFunction.SHA256.emptyHash();

  final MemoryBlobStore cas = new MemoryBlobStore();
  final MemoryBlobStore ac = new MemoryBlobStore();
  final HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
      .connectTimeout(Duration.ofSeconds(10)).build();
  HttpCacheServer server;

  @TempDir Path tmp;

  @AfterEach
  void stop() {
    if (server != null) {
      server.close();
    }
  }

  HttpCacheServer start(HttpCacheOptions options) throws IOException {
    return start(cas, ac, options);
  }

  HttpCacheServer start(BlobStore casStore, BlobStore acStore, HttpCacheOptions options) throws IOException {
    server = new HttpCacheServer(new InetSocketAddress("127.0.0.1", 0), casStore, acStore,
        options.toBuilder().ioThreads(2).accessLog(false).build(), () -> new StoreStats(8192, 5000, 100, 1L << 30, 3)).start();
    return server;
  }

  URI uri(String path) {
    return URI.create("http://127.0.0.1:" + server.port() + path);
  }

  static String sha(byte[] data) {
    return DigestFunction.SHA256.hexOf(data);
  }

  static byte[] random(int n, long seed) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    return b;
  }

  HttpResponse<byte[]> put(String path, byte[] body) throws Exception {
    return client.send(HttpRequest.newBuilder(uri(path)).PUT(BodyPublishers.ofByteArray(body)).build(),
        BodyHandlers.ofByteArray());
  }

  HttpResponse<byte[]> get(String path, String... headers) throws Exception {
    HttpRequest.Builder b = HttpRequest.newBuilder(uri(path)).GET();
    if (headers.length > 0) {
      b.headers(headers);
    }
    return client.send(b.build(), BodyHandlers.ofByteArray());
  }

  HttpResponse<Void> head(String path) throws Exception {
    return client.send(HttpRequest.newBuilder(uri(path)).method("HEAD", BodyPublishers.noBody()).build(),
        BodyHandlers.discarding());
  }

  // ------------------------------------------------------------------------------------------------ CAS

  @Test
  void casPutGetHeadRoundTrip() throws Exception {
    start(HttpCacheOptions.defaults());
    byte[] data = random(300_000, 1);
    String h = sha(data);

    assertThat(get("/cas/" + h).statusCode()).isEqualTo(404);
    assertThat(head("/cas/" + h).statusCode()).isEqualTo(404);

    HttpResponse<byte[]> put = put("/cas/" + h, data);
    assertThat(put.statusCode()).isEqualTo(200);
    assertThat(put.body()).isEmpty();
    assertThat(cas.entries().get(new BlobKey(Kind.CAS, DigestFunction.SHA256, h))).isEqualTo(data);

    HttpResponse<byte[]> got = get("/cas/" + h);
    assertThat(got.statusCode()).isEqualTo(200);
    assertThat(got.body()).isEqualTo(data);
    assertThat(got.headers().firstValue("content-type")).hasValue("application/octet-stream");
    assertThat(got.headers().firstValueAsLong("content-length")).hasValue(data.length);

    HttpResponse<Void> hd = head("/cas/" + h);
    assertThat(hd.statusCode()).isEqualTo(200);
    assertThat(hd.headers().firstValueAsLong("content-length")).hasValue(data.length);

    // Any prefix is an instance name; CAS ignores it.
    assertThat(get("/some/instance/cas/" + h).body()).isEqualTo(data);
  }

  @Test
  void emptyBlobAlwaysExists() throws Exception {
    start(HttpCacheOptions.defaults());
    HttpResponse<byte[]> got = get("/cas/" + EMPTY);
    assertThat(got.statusCode()).isEqualTo(200);
    assertThat(got.body()).isEmpty();
    assertThat(got.headers().firstValueAsLong("content-length")).hasValue(0);
    assertThat(head("/cas/" + EMPTY).statusCode()).isEqualTo(200);
    assertThat(put("/cas/" + EMPTY, new byte[0]).statusCode()).isEqualTo(200);
    // zstd of the empty blob decodes to nothing
    HttpResponse<byte[]> z = get("/cas/" + EMPTY, "Accept-Encoding", "zstd");
    assertThat(z.statusCode()).isEqualTo(200);
    assertThat(z.headers().firstValue("content-encoding")).hasValue("zstd");
    assertThat(decompress(z.body())).isEmpty();
    // A zero-length upload under another hash is refused.
    assertThat(put("/cas/" + sha(new byte[] {1}), new byte[0]).statusCode()).isEqualTo(400);
    assertThat(cas.entries()).isEmpty();
  }

  static byte[] decompress(byte[] z) throws IOException {
    try (InputStream in = new com.github.luben.zstd.ZstdInputStream(new ByteArrayInputStream(z))) {
      return in.readAllBytes();
    }
  }

  @Test
  void zstdUploadAndDownload() throws Exception {
    start(HttpCacheOptions.defaults());
    byte[] data = new byte[1_000_000];
    for (int i = 0; i < data.length; i++) {
      data[i] = (byte) ("abcdefgh".charAt(i % 8) + (i / 4096) % 3);
    }
    String h = sha(data);
    byte[] compressed = Zstd.compress(data, 3);

    HttpResponse<byte[]> put = client.send(HttpRequest.newBuilder(uri("/cas/" + h))
        .header("Content-Encoding", "zstd")
        .header("X-Digest-SizeBytes", Integer.toString(data.length))
        .PUT(BodyPublishers.ofByteArray(compressed)).build(), BodyHandlers.ofByteArray());
    assertThat(put.statusCode()).as(new String(put.body())).isEqualTo(200);
    assertThat(cas.entries().get(new BlobKey(Kind.CAS, DigestFunction.SHA256, h))).isEqualTo(data);

    HttpResponse<byte[]> got = get("/cas/" + h, "Accept-Encoding", "gzip, zstd");
    assertThat(got.statusCode()).isEqualTo(200);
    assertThat(got.headers().firstValue("content-encoding")).hasValue("zstd");
    assertThat(got.body().length).isLessThan(data.length / 10);
    assertThat(decompress(got.body())).isEqualTo(data);

    // q=0 refuses zstd
    HttpResponse<byte[]> plain = get("/cas/" + h, "Accept-Encoding", "zstd;q=0");
    assertThat(plain.headers().firstValue("content-encoding")).isEmpty();
    assertThat(plain.body()).isEqualTo(data);
  }

  @Test
  void zstdUploadNeedsSizeHeaderAndValidData() throws Exception {
    start(HttpCacheOptions.defaults());
    byte[] data = random(10_000, 2);
    String h = sha(data);
    byte[] compressed = Zstd.compress(data, 3);
    HttpResponse<byte[]> noSize = client.send(HttpRequest.newBuilder(uri("/cas/" + h))
        .header("Content-Encoding", "zstd").PUT(BodyPublishers.ofByteArray(compressed)).build(),
        BodyHandlers.ofByteArray());
    assertThat(noSize.statusCode()).isEqualTo(400);

    HttpResponse<byte[]> garbage = client.send(HttpRequest.newBuilder(uri("/cas/" + h))
        .header("Content-Encoding", "zstd").header("X-Digest-SizeBytes", "10000")
        .PUT(BodyPublishers.ofByteArray(random(5000, 3))).build(), BodyHandlers.ofByteArray());
    assertThat(garbage.statusCode()).isEqualTo(400);
    assertThat(new String(garbage.body(), StandardCharsets.UTF_8)).contains("zstd");

    HttpResponse<byte[]> wrongSize = client.send(HttpRequest.newBuilder(uri("/cas/" + h))
        .header("Content-Encoding", "zstd").header("X-Digest-SizeBytes", "9999")
        .PUT(BodyPublishers.ofByteArray(compressed)).build(), BodyHandlers.ofByteArray());
    assertThat(wrongSize.statusCode()).isEqualTo(400);

    HttpResponse<byte[]> gzip = client.send(HttpRequest.newBuilder(uri("/cas/" + h))
        .header("Content-Encoding", "gzip").PUT(BodyPublishers.ofByteArray(data)).build(),
        BodyHandlers.ofByteArray());
    assertThat(gzip.statusCode()).isEqualTo(400);
    assertThat(cas.entries()).isEmpty();
  }

  @Test
  void wrongHashIsRejectedAndNothingStored() throws Exception {
    start(HttpCacheOptions.defaults());
    byte[] data = random(5000, 4);
    String other = sha(random(5000, 5));
    HttpResponse<byte[]> r = put("/cas/" + other, data);
    assertThat(r.statusCode()).isEqualTo(400);
    assertThat(cas.entries()).isEmpty();
    assertThat(cas.commits.get()).isZero();
    assertThat(get("/cas/" + other).statusCode()).isEqualTo(404);
  }

  @Test
  void truncatedBodyStoresNothing() throws Exception {
    start(HttpCacheOptions.defaults());
    byte[] data = random(1000, 6);
    String h = sha(data);
    try (RawHttp c = new RawHttp(server.port())) {
      c.send("PUT /cas/" + h + " HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n");
      c.send(java.util.Arrays.copyOf(data, 10));
    }
    // The server notices the close; the next request on a new connection sees no entry.
    Thread.sleep(200);
    assertThat(get("/cas/" + h).statusCode()).isEqualTo(404);
    assertThat(cas.entries()).isEmpty();
    assertThat(cas.commits.get()).isZero();
  }

  @Test
  void oversizedUploadGets413AndIsNotRead() throws Exception {
    start(HttpCacheOptions.defaults().withMaxBlobSize(1000));
    byte[] data = random(2000, 7);
    String h = sha(data);
    assertThat(put("/cas/" + h, data).statusCode()).isEqualTo(413);
    // With Expect: 100-continue the client never has to send the body.
    HttpResponse<byte[]> r = client.send(HttpRequest.newBuilder(uri("/cas/" + h)).expectContinue(true)
        .PUT(BodyPublishers.ofByteArray(data)).build(), BodyHandlers.ofByteArray());
    assertThat(r.statusCode()).isEqualTo(413);
    try (RawHttp c = new RawHttp(server.port())) {
      c.send("PUT /cas/" + h + " HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\nExpect: 100-continue\r\n\r\n");
      RawHttp.Response resp = c.read();
      assertThat(resp.status()).isEqualTo(413);
      assertThat(c.closedByServer()).isTrue();
    }
    // Without Expect, the client pushes the whole body before reading: the 413 must still reach it, not a reset.
    for (int i = 0; i < 5; i++) {
      try (RawHttp c = new RawHttp(server.port())) {
        byte[] big = random(16 << 20, 40 + i);
        c.send("PUT /cas/" + sha(big) + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + big.length + "\r\n\r\n");
        c.send(big);
        RawHttp.Response resp = c.read();
        assertThat(resp.status()).isEqualTo(413);
        assertThat(resp.header("connection")).isEqualTo("close");
        assertThat(c.closedByServer()).isTrue();
      }
    }
    assertThat(cas.entries()).isEmpty();
    byte[] small = random(1000, 8);
    assertThat(put("/cas/" + sha(small), small).statusCode()).isEqualTo(200);
  }

  @Test
  void expectContinueUploadSucceeds() throws Exception {
    start(HttpCacheOptions.defaults());
    byte[] data = random(70_000, 9);
    String h = sha(data);
    try (RawHttp c = new RawHttp(server.port())) {
      c.send("PUT /cas/" + h + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + data.length
          + "\r\nExpect: 100-continue\r\n\r\n");
      RawHttp.Response cont = c.read();
      assertThat(cont.status()).isEqualTo(100);
      c.send(data);
      assertThat(c.read().status()).isEqualTo(200);
      // still usable afterwards
      c.send("GET /cas/" + h + " HTTP/1.1\r\nHost: x\r\n\r\n");
      assertThat(c.read().body()).isEqualTo(data);
    }
    HttpResponse<byte[]> r = client.send(HttpRequest.newBuilder(uri("/cas/" + h)).expectContinue(true)
        .PUT(BodyPublishers.ofByteArray(data)).build(), BodyHandlers.ofByteArray());
    assertThat(r.statusCode()).isEqualTo(200);
  }

  @Test
  void malformedPathsAre400() throws Exception {
    start(HttpCacheOptions.defaults());
    String good = sha(new byte[] {1});
    String[] bad = {
      "/cas/../../etc/passwd",
      "/cas/" + good.toUpperCase(),
      "/cas/" + good.substring(1),
      "/cas/" + good + "0",
      "/cas/",
      "/cas",
      "/ac/",
      "/cas/%2e%2e",
      "/%2e%2e/cas/" + good,
      "/../cas/" + good,
      "/cas/%zz",
      "/a%00b/cas/" + good,
      "/cas/" + good + "/x",
    };
    for (String path : bad) {
      try (RawHttp c = new RawHttp(server.port())) {
        c.send("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n");
        assertThat(c.read().status()).as(path).isEqualTo(400);
      }
    }
    try (RawHttp c = new RawHttp(server.port())) {
      c.send("GET /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n");
      assertThat(c.read().status()).isEqualTo(400);
      c.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
      assertThat(c.read().status()).isEqualTo(404);
    }
    assertThat(cas.gets.get()).isZero();
  }

  @Test
  void otherMethodsAre405() throws Exception {
    start(HttpCacheOptions.defaults());
    String h = sha(new byte[] {1});
    for (String m : new String[] {"DELETE", "POST", "PATCH"}) {
      HttpResponse<byte[]> r = client.send(HttpRequest.newBuilder(uri("/cas/" + h))
          .method(m, BodyPublishers.noBody()).build(), BodyHandlers.ofByteArray());
      assertThat(r.statusCode()).as(m).isEqualTo(405);
    }
  }

  @Test
  void putWithoutLengthIs400() throws Exception {
    start(HttpCacheOptions.defaults());
    byte[] data = random(3000, 10);
    String h = sha(data);
    // ofInputStream has no length: HttpClient sends it chunked.
    HttpResponse<byte[]> r = client.send(HttpRequest.newBuilder(uri("/cas/" + h))
        .PUT(BodyPublishers.ofInputStream(() -> new ByteArrayInputStream(data))).build(),
        BodyHandlers.ofByteArray());
    assertThat(r.statusCode()).isEqualTo(400);
    assertThat(new String(r.body(), StandardCharsets.UTF_8)).contains("Content-Length");
    assertThat(cas.entries()).isEmpty();

    // Chunked with X-Digest-SizeBytes is fine.
    HttpResponse<byte[]> ok = client.send(HttpRequest.newBuilder(uri("/cas/" + h))
        .header("X-Digest-SizeBytes", "3000")
        .PUT(BodyPublishers.ofInputStream(() -> new ByteArrayInputStream(data))).build(),
        BodyHandlers.ofByteArray());
    assertThat(ok.statusCode()).isEqualTo(200);
    assertThat(get("/cas/" + h).body()).isEqualTo(data);

    HttpResponse<byte[]> badHeader = client.send(HttpRequest.newBuilder(uri("/cas/" + h))
        .header("X-Digest-SizeBytes", "-1").PUT(BodyPublishers.ofByteArray(data)).build(),
        BodyHandlers.ofByteArray());
    assertThat(badHeader.statusCode()).isEqualTo(400);
  }

  @Test
  void keepAliveServesManyRequestsOnOneConnection() throws Exception {
    start(HttpCacheOptions.defaults());
    try (RawHttp c = new RawHttp(server.port())) {
      for (int i = 0; i < 200; i++) {
        byte[] data = ("blob " + i).getBytes(StandardCharsets.UTF_8);
        String h = sha(data);
        c.send("PUT /cas/" + h + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + data.length + "\r\n\r\n");
        c.send(data);
        assertThat(c.read().status()).isEqualTo(200);
        c.send("HEAD /cas/" + h + " HTTP/1.1\r\nHost: x\r\n\r\n");
        RawHttp.Response hd = c.read(true);
        assertThat(hd.status()).isEqualTo(200);
        assertThat(hd.header("content-length")).isEqualTo(Integer.toString(data.length));
        c.send("GET /cas/" + h + " HTTP/1.1\r\nHost: x\r\n\r\n");
        assertThat(c.read().body()).isEqualTo(data);
        // errors keep the connection too, when there is no unread body
        c.send("GET /cas/" + sha(new byte[] {(byte) i, 9}) + " HTTP/1.1\r\nHost: x\r\n\r\n");
        assertThat(c.read().status()).isEqualTo(404);
      }
    }
    assertThat(cas.entries()).hasSize(200);
  }

  @Test
  void pipelinedRequestsAreAnsweredInOrder() throws Exception {
    start(HttpCacheOptions.defaults());
    byte[] a = random(100_000, 11);
    byte[] b = random(10, 12);
    try (RawHttp c = new RawHttp(server.port())) {
      StringBuilder sb = new StringBuilder();
      c.send(("PUT /cas/" + sha(a) + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + a.length + "\r\n\r\n")
          .getBytes(StandardCharsets.ISO_8859_1));
      c.send(a);
      sb.append("PUT /cas/").append(sha(b)).append(" HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n");
      c.send(sb.toString());
      c.send(b);
      c.send("GET /cas/" + sha(a) + " HTTP/1.1\r\nHost: x\r\n\r\nGET /cas/" + sha(b)
          + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      assertThat(c.read().status()).isEqualTo(200);
      assertThat(c.read().status()).isEqualTo(200);
      assertThat(c.read().body()).isEqualTo(a);
      RawHttp.Response last = c.read();
      assertThat(last.body()).isEqualTo(b);
      assertThat(last.header("connection")).isEqualTo("close");
      assertThat(c.closedByServer()).isTrue();
    }
  }

  @Test
  void oversizedHeadersAndRequestLinesAreRefused() throws Exception {
    start(HttpCacheOptions.defaults());
    try (RawHttp c = new RawHttp(server.port())) {
      c.send("GET /cas/" + "a".repeat(20_000) + " HTTP/1.1\r\nHost: x\r\n\r\n");
      assertThat(c.read().status()).isEqualTo(414);
    }
    try (RawHttp c = new RawHttp(server.port())) {
      c.send("GET /cas/" + EMPTY + " HTTP/1.1\r\nHost: x\r\nX-Big: " + "b".repeat(40_000) + "\r\n\r\n");
      assertThat(c.read().status()).isEqualTo(431);
    }
    try (RawHttp c = new RawHttp(server.port())) {
      c.send("this is not http\r\n\r\n");
      assertThat(c.read().status()).isEqualTo(400);
    }
  }

  @Test
  void statusReportsBazelRemoteFields() throws Exception {
    start(HttpCacheOptions.defaults().withGit("abc123", "v1.0"));
    HttpResponse<byte[]> r = get("/status");
    assertThat(r.statusCode()).isEqualTo(200);
    assertThat(r.headers().firstValue("content-type")).hasValue("application/json");
    String text = new String(r.body(), StandardCharsets.UTF_8);
    assertThat(text).startsWith("{\n \"CurrSize\": 8192,\n");
    JsonNode json = new ObjectMapper().readTree(text);
    assertThat(json.get("CurrSize").asLong()).isEqualTo(8192);
    assertThat(json.get("UncompressedSize").asLong()).isEqualTo(5000);
    assertThat(json.get("ReservedSize").asLong()).isEqualTo(100);
    assertThat(json.get("MaxSize").asLong()).isEqualTo(1L << 30);
    assertThat(json.get("NumFiles").asLong()).isEqualTo(3);
    assertThat(json.get("ServerTime").asLong()).isCloseTo(System.currentTimeMillis() / 1000,
        org.assertj.core.data.Offset.offset(5L));
    assertThat(json.get("GitCommit").asText()).isEqualTo("abc123");
    assertThat(json.get("GitTags").asText()).isEqualTo("v1.0");
    assertThat(json.get("NumGoroutines").asInt()).isPositive();
    assertThat(json.get("NumThreads").asInt()).isPositive();
  }

  // ------------------------------------------------------------------------------------------------ zero copy

  /** A CAS store whose only entry is a FileBlob over real files. */
  static final class FileStore extends ForwardingStore {
    final String hash;
    final Path raw;
    final Path zstd;
    final AtomicReference<FileBlob> last = new AtomicReference<>();

    FileStore(String hash, Path raw, Path zstd) {
      this.hash = hash;
      this.raw = raw;
      this.zstd = zstd;
    }

    @Override
    public Blob get(BlobKey key) {
      if (key.hash().equals(hash)) {
        FileBlob b = new FileBlob(raw, zstd);
        last.set(b);
        return b;
      }
      return mem.get(key);
    }
  }

  @Test
  void zeroCopyFromRealFiles() throws Exception {
    byte[] data = random(3_000_000, 13);
    String h = sha(data);
    Path raw = Files.write(tmp.resolve("raw"), data);
    Path z = Files.write(tmp.resolve("zst"), Zstd.compress(data, 1));
    FileStore store = new FileStore(h, raw, z);
    start(store, ac, HttpCacheOptions.defaults());

    HttpResponse<byte[]> got = get("/cas/" + h);
    assertThat(got.statusCode()).isEqualTo(200);
    assertThat(got.body()).isEqualTo(data);
    assertThat(store.last.get().streamOpened).isFalse(); // sent from the file, not through a stream
    awaitClosed(store.last.get());

    HttpResponse<byte[]> gz = get("/cas/" + h, "Accept-Encoding", "zstd");
    assertThat(gz.headers().firstValue("content-encoding")).hasValue("zstd");
    assertThat(gz.headers().firstValueAsLong("content-length")).hasValue(Files.size(z));
    assertThat(gz.body()).isEqualTo(Files.readAllBytes(z));
    assertThat(decompress(gz.body())).isEqualTo(data);
    awaitClosed(store.last.get());

    // A client that stops reading and disconnects mid-transfer: the blob is still closed.
    try (RawHttp c = new RawHttp(server.port())) {
      c.socket.setReceiveBufferSize(4096);
      c.send("GET /cas/" + h + " HTTP/1.1\r\nHost: x\r\n\r\n");
      c.in.readNBytes(1000);
    }
    awaitClosed(store.last.get());
  }

  @Test
  void withoutZeroCopyTheSameBytesAreStreamed() throws Exception {
    byte[] data = random(1_000_000, 14);
    String h = sha(data);
    Path raw = Files.write(tmp.resolve("raw"), data);
    Path z = Files.write(tmp.resolve("zst"), Zstd.compress(data, 1));
    FileStore store = new FileStore(h, raw, z);
    start(store, ac, HttpCacheOptions.defaults().withZeroCopy(false));
    assertThat(get("/cas/" + h).body()).isEqualTo(data);
    assertThat(decompress(get("/cas/" + h, "Accept-Encoding", "zstd").body())).isEqualTo(data);
    awaitClosed(store.last.get());
  }

  static void awaitClosed(FileBlob b) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (b.closes.get() == 0 && System.nanoTime() < deadline) {
      Thread.sleep(5);
    }
    assertThat(b.closes.get()).isEqualTo(1);
  }

  // ------------------------------------------------------------------------------------------------ streaming

  /** A store whose writers block at the first write until released: lets a test look at the server meanwhile. */
  static final class GatedStore extends ForwardingStore {
    final CountDownLatch entered = new CountDownLatch(1);
    final CountDownLatch release = new CountDownLatch(1);

    @Override
    public BlobWriter newWriter(BlobKey key, long size) {
      BlobWriter inner = mem.newWriter(key, size);
      return new InterceptingWriter(inner) {
        @Override
        public void write(ByteBuffer data) throws IOException {
          entered.countDown();
          try {
            release.await();
          } catch (InterruptedException e) {
            throw new IOException(e);
          }
          inner.write(data);
        }
      };
    }
  }

  @Test
  void largeUploadIsStreamedWithBoundedBuffering() throws Exception {
    GatedStore store = new GatedStore();
    start(store, ac, HttpCacheOptions.defaults());
    byte[] data = random(50 << 20, 15);
    String h = sha(data);
    CompletableFuture<HttpResponse<byte[]>> f = client.sendAsync(
        HttpRequest.newBuilder(uri("/cas/" + h)).PUT(BodyPublishers.ofByteArray(data)).build(),
        BodyHandlers.ofByteArray());
    assertThat(store.entered.await(20, TimeUnit.SECONDS)).isTrue();
    Thread.sleep(1500); // the client keeps pushing; the server must stop reading
    long queued = server.maxPendingBodyBytes();
    assertThat(queued).isLessThan(HttpConnection.HIGH_WATER + 512 * 1024);
    store.release.countDown();
    HttpResponse<byte[]> r = f.get(60, TimeUnit.SECONDS);
    assertThat(r.statusCode()).isEqualTo(200);
    assertThat(store.mem.entries().get(new BlobKey(Kind.CAS, DigestFunction.SHA256, h))).isEqualTo(data);
    assertThat(server.maxPendingBodyBytes()).isLessThan(HttpConnection.HIGH_WATER + 512 * 1024);
  }

  // ------------------------------------------------------------------------------------------------ errors

  @Test
  void storeErrorsMapToStatuses() throws Exception {
    BlobStore store = new ForwardingStore() {
      @Override
      public Blob get(BlobKey key) throws IOException {
        throw new IOException("disk on fire");
      }

      @Override
      public BlobWriter newWriter(BlobKey key, long size) throws IOException {
        throw new InsufficientStorageException("full");
      }
    };
    start(store, ac, HttpCacheOptions.defaults());
    byte[] data = random(100, 16);
    HttpResponse<byte[]> put = put("/cas/" + sha(data), data);
    assertThat(put.statusCode()).isEqualTo(507);
    HttpResponse<byte[]> get = get("/cas/" + sha(data));
    assertThat(get.statusCode()).isEqualTo(500);
    assertThat(new String(get.body(), StandardCharsets.UTF_8)).contains("disk on fire");
  }


  // ------------------------------------------------------------------------------------------------ timeouts, hooks

  @Test
  void idleTimeoutClosesIdleAndStalledConnectionsButNotSlowStores() throws Exception {
    GatedStore store = new GatedStore();
    start(store, ac, HttpCacheOptions.defaults().withTimeouts(Duration.ofMillis(300)));
    try (RawHttp c = new RawHttp(server.port())) {
      c.send("GET /cas/" + EMPTY + " HTTP/1.1\r\nHost: x\r\n\r\n");
      assertThat(c.read().status()).isEqualTo(200);
      Thread.sleep(1000);
      assertThat(c.closedByServer()).isTrue();
    }
    byte[] data = random(1000, 20);
    try (RawHttp c = new RawHttp(server.port())) {
      c.send("PUT /cas/" + sha(data) + " HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n");
      c.send(java.util.Arrays.copyOf(data, 10));
      // The writer is blocked in the (gated) store, not waiting for the client: the connection stays.
      assertThat(store.entered.await(10, TimeUnit.SECONDS)).isTrue();
      Thread.sleep(1000);
      store.release.countDown();
      // Now the server waits for the remaining 990 bytes that never come.
      assertThat(c.closedByServer()).isTrue();
    }
    assertThat(store.mem.entries()).isEmpty();
  }

  @Test
  void observerSeesEveryRequestAndMetricsPageIsServed() throws Exception {
    java.util.List<String> seen = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
    start(HttpCacheOptions.builder()
        .observer((handler, method, status, nanos) -> seen.add(handler + " " + method + " " + status))
        .metricsPage(() -> "# HELP x y\nx 1\n")
        .build());
    assertThat(get("/cas/" + EMPTY).statusCode()).isEqualTo(200);
    assertThat(get("/status").statusCode()).isEqualTo(200);
    HttpResponse<byte[]> m = get("/metrics");
    assertThat(m.statusCode()).isEqualTo(200);
    assertThat(new String(m.body(), StandardCharsets.UTF_8)).contains("x 1");
    assertThat(put("/cas/" + sha(new byte[] {1}), new byte[] {2}).statusCode()).isEqualTo(400);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (seen.size() < 4 && System.nanoTime() < deadline) {
      Thread.sleep(5);
    }
    assertThat(seen).containsExactly("GET GET 200", "status GET 200", "metrics GET 200", "PUT PUT 400");
  }


  @Test
  void authorizerGuardsRequests() throws Exception {
    String good = "Basic " + java.util.Base64.getEncoder().encodeToString("u:p".getBytes(StandardCharsets.UTF_8));
    start(HttpCacheOptions.builder()
        .authorizer((access, header) -> access == HttpCacheOptions.Access.READ || good.equals(header))
        .build());
    byte[] data = random(100, 21);
    HttpResponse<byte[]> denied = put("/cas/" + sha(data), data);
    assertThat(denied.statusCode()).isEqualTo(401);
    assertThat(denied.headers().firstValue("www-authenticate")).hasValueSatisfying(v -> assertThat(v).startsWith("Basic"));
    assertThat(cas.entries()).isEmpty();
    HttpResponse<byte[]> ok = client.send(HttpRequest.newBuilder(uri("/cas/" + sha(data))).header("Authorization", good)
        .PUT(BodyPublishers.ofByteArray(data)).build(), BodyHandlers.ofByteArray());
    assertThat(ok.statusCode()).isEqualTo(200);
    assertThat(get("/cas/" + sha(data)).body()).isEqualTo(data);
  }


  @Test
  void manyConcurrentClients() throws Exception {
    start(HttpCacheOptions.defaults());
    int n = 48;
    java.util.List<CompletableFuture<Void>> all = new java.util.ArrayList<>();
    for (int i = 0; i < n; i++) {
      byte[] data = random(50_000 + i * 7919, 100 + i);
      String h = sha(data);
      boolean zstd = i % 3 == 0;
      all.add(client.sendAsync(HttpRequest.newBuilder(uri("/cas/" + h)).PUT(BodyPublishers.ofByteArray(data)).build(),
              BodyHandlers.ofByteArray())
          .thenCompose(r -> {
            assertThat(r.statusCode()).isEqualTo(200);
            HttpRequest.Builder b = HttpRequest.newBuilder(uri("/cas/" + h)).GET();
            if (zstd) {
              b.header("Accept-Encoding", "zstd");
            }
            return client.sendAsync(b.build(), BodyHandlers.ofByteArray());
          })
          .thenAccept(r -> {
            assertThat(r.statusCode()).isEqualTo(200);
            try {
              assertThat(zstd ? decompress(r.body()) : r.body()).isEqualTo(data);
            } catch (IOException e) {
              throw new java.io.UncheckedIOException(e);
            }
          }));
    }
    CompletableFuture.allOf(all.toArray(CompletableFuture[]::new)).get(60, TimeUnit.SECONDS);
    assertThat(cas.entries()).hasSize(n);
  }

  @Test
  void servesOnAUnixDomainSocket() throws Exception {
    Path sock = tmp.resolve("http.sock");
    server = new HttpCacheServer(java.net.UnixDomainSocketAddress.of(sock), cas, ac, HttpCacheOptions.defaults(),
        () -> new StoreStats(0, 0, 0, 0, 0)).start();
    byte[] data = random(200_000, 30);
    try (java.nio.channels.SocketChannel ch = java.nio.channels.SocketChannel.open(
        java.net.UnixDomainSocketAddress.of(sock))) {
      java.io.OutputStream out = java.nio.channels.Channels.newOutputStream(ch);
      java.io.InputStream in = java.nio.channels.Channels.newInputStream(ch);
      out.write(("PUT /cas/" + sha(data) + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + data.length + "\r\n\r\n")
          .getBytes(StandardCharsets.ISO_8859_1));
      out.write(data);
      out.write(("GET /cas/" + sha(data) + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
          .getBytes(StandardCharsets.ISO_8859_1));
      out.flush();
      String all = new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
      assertThat(all).startsWith("HTTP/1.1 200 OK\r\n");
      assertThat(all.indexOf("HTTP/1.1 200 OK", 10)).isPositive();
      assertThat(all).endsWith(new String(data, StandardCharsets.ISO_8859_1));
    }
    assertThat(cas.entries()).hasSize(1);
  }

  @Test
  void http10AndUnsupportedExpectations() throws Exception {
    start(HttpCacheOptions.defaults());
    try (RawHttp c = new RawHttp(server.port())) {
      c.send("GET /cas/" + EMPTY + " HTTP/1.0\r\n\r\n");
      assertThat(c.read().status()).isEqualTo(200);
      assertThat(c.closedByServer()).isTrue();
    }
    try (RawHttp c = new RawHttp(server.port())) {
      c.send("GET /cas/" + EMPTY + " HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
      RawHttp.Response r = c.read();
      assertThat(r.status()).isEqualTo(200);
      assertThat(r.header("connection")).isEqualToIgnoringCase("keep-alive");
      c.send("HEAD /status HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
      assertThat(c.read(true).status()).isEqualTo(200);
    }
    try (RawHttp c = new RawHttp(server.port())) {
      c.send("PUT /cas/" + EMPTY + " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nExpect: teapot\r\n\r\n");
      assertThat(c.read().status()).isEqualTo(417);
    }
  }

  // ------------------------------------------------------------------------------------------------ lifecycle

  @Test
  void closeLetsInFlightUploadFinish() throws Exception {
    GatedStore store = new GatedStore();
    start(store, ac, HttpCacheOptions.defaults().withShutdownGrace(Duration.ofSeconds(20)));
    int port = server.port();
    byte[] data = random(200_000, 17);
    String h = sha(data);
    RawHttp idle = new RawHttp(port);
    CompletableFuture<HttpResponse<byte[]>> f = client.sendAsync(
        HttpRequest.newBuilder(uri("/cas/" + h)).PUT(BodyPublishers.ofByteArray(data)).build(),
        BodyHandlers.ofByteArray());
    assertThat(store.entered.await(20, TimeUnit.SECONDS)).isTrue();
    Thread closer = Thread.ofVirtual().start(server::close);
    Thread.sleep(300);
    assertThat(idle.closedByServer()).isTrue(); // idle connections go at once
    assertThat(closer.isAlive()).isTrue(); // waiting for the upload
    store.release.countDown();
    HttpResponse<byte[]> r = f.get(20, TimeUnit.SECONDS);
    assertThat(r.statusCode()).isEqualTo(200);
    closer.join(20_000);
    assertThat(closer.isAlive()).isFalse();
    assertThat(store.mem.entries()).containsKey(new BlobKey(Kind.CAS, DigestFunction.SHA256, h));
    try (java.net.Socket s = new java.net.Socket()) {
      org.assertj.core.api.Assertions.assertThatThrownBy(() -> s.connect(new InetSocketAddress("127.0.0.1", port)))
          .isInstanceOf(IOException.class);
    }
    server = null;
  }
}
