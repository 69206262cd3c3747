package io.bazelcache.http;

import static org.assertj.core.api.Assertions.assertThat;

import build.bazel.remote.execution.v2.ActionResult;
import build.bazel.remote.execution.v2.OutputFile;
import com.github.luben.zstd.Zstd;
import com.google.protobuf.util.JsonFormat;
import io.bazelcache.ac.CompletenessCheckingStore;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.Kind;
import io.bazelcache.storage.StoreStats;
import io.bazelcache.testing.MemoryBlobStore;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpRequest.BodyPublishers;
import java.net.http.HttpResponse;
import java.net.http.HttpResponse.BodyHandlers;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The /ac/ half of the HTTP endpoint, against the real ActionResult helpers and completeness check. */
class HttpActionCacheTest {
  /** One store holding CAS and AC, as the disk store will; the AC view checks completeness. */
  final MemoryBlobStore mem = new MemoryBlobStore();
  final HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
  HttpCacheServer server;

  @AfterEach
  void stop() {
    if (server != null) {
      server.close();
    }
  }

  void start(HttpCacheOptions options) throws IOException {
    server = new HttpCacheServer(new InetSocketAddress("127.0.0.1", 0), mem, new CompletenessCheckingStore(mem),
        options.toBuilder().ioThreads(1).accessLog(false).build(), () -> new StoreStats(0, 0, 0, 0, 0)).start();
  }

  URI uri(String path) {
    return URI.create("http://127.0.0.1:" + server.port() + path);
  }

  static String sha(byte[] b) {
    return DigestFunction.SHA256.hexOf(b);
  }

  static build.bazel.remote.execution.v2.Digest digestOf(byte[] b) {
    return build.bazel.remote.execution.v2.Digest.newBuilder().setHash(sha(b)).setSizeBytes(b.length).build();
  }

  HttpResponse<byte[]> send(HttpRequest.Builder b) throws Exception {
    return client.send(b.build(), BodyHandlers.ofByteArray());
  }

  HttpResponse<byte[]> putCas(byte[] data) throws Exception {
    return send(HttpRequest.newBuilder(uri("/cas/" + sha(data))).PUT(BodyPublishers.ofByteArray(data)));
  }

  final byte[] output = "compiled output".getBytes(StandardCharsets.UTF_8);
  final String actionHash = sha("the action".getBytes(StandardCharsets.UTF_8));

  ActionResult result() {
    return ActionResult.newBuilder()
        .addOutputFiles(OutputFile.newBuilder().setPath("out/a.o").setDigest(digestOf(output)))
        .setExitCode(0)
        .build();
  }

  @Test
  void binaryActionResultRoundTripWithCompletenessCheck() throws Exception {
    start(HttpCacheOptions.defaults());
    HttpResponse<byte[]> put = send(HttpRequest.newBuilder(uri("/ac/" + actionHash))
        .PUT(BodyPublishers.ofByteArray(result().toByteArray())));
    assertThat(put.statusCode()).as(new String(put.body())).isEqualTo(200);

    byte[] stored = mem.entries().get(new BlobKey(Kind.AC, DigestFunction.SHA256, actionHash));
    ActionResult storedResult = ActionResult.parseFrom(stored);
    assertThat(storedResult.getOutputFiles(0)).isEqualTo(result().getOutputFiles(0));
    assertThat(storedResult.getExecutionMetadata().getWorker()).startsWith("127.0.0.1:");

    // The output is not in the CAS yet: the entry is incomplete, so absent.
    assertThat(send(HttpRequest.newBuilder(uri("/ac/" + actionHash)).GET()).statusCode()).isEqualTo(404);
    assertThat(send(HttpRequest.newBuilder(uri("/ac/" + actionHash)).method("HEAD", BodyPublishers.noBody()))
        .statusCode()).isEqualTo(404);

    assertThat(putCas(output).statusCode()).isEqualTo(200);
    HttpResponse<byte[]> got = send(HttpRequest.newBuilder(uri("/ac/" + actionHash)).GET());
    assertThat(got.statusCode()).isEqualTo(200);
    assertThat(got.headers().firstValue("content-type")).hasValue("application/octet-stream");
    assertThat(got.body()).isEqualTo(stored);
    HttpResponse<byte[]> hd = send(HttpRequest.newBuilder(uri("/ac/" + actionHash))
        .method("HEAD", BodyPublishers.noBody()));
    assertThat(hd.statusCode()).isEqualTo(200);
    assertThat(hd.headers().firstValueAsLong("content-length")).hasValue(stored.length);

    HttpResponse<byte[]> json = send(HttpRequest.newBuilder(uri("/ac/" + actionHash)).GET()
        .header("Accept", "application/json"));
    assertThat(json.statusCode()).isEqualTo(200);
    assertThat(json.headers().firstValue("content-type")).hasValue("application/json");
    ActionResult.Builder parsed = ActionResult.newBuilder();
    JsonFormat.parser().merge(new String(json.body(), StandardCharsets.UTF_8), parsed);
    assertThat(parsed.build()).isEqualTo(storedResult);
  }

  @Test
  void jsonAndZstdUploads() throws Exception {
    start(HttpCacheOptions.defaults());
    assertThat(putCas(output).statusCode()).isEqualTo(200);
    String json = JsonFormat.printer().print(result());
    HttpResponse<byte[]> put = send(HttpRequest.newBuilder(uri("/ac/" + actionHash))
        .header("Content-Type", "application/json; charset=utf-8")
        .PUT(BodyPublishers.ofString(json)));
    assertThat(put.statusCode()).as(new String(put.body())).isEqualTo(200);
    byte[] stored = mem.entries().get(new BlobKey(Kind.AC, DigestFunction.SHA256, actionHash));
    assertThat(ActionResult.parseFrom(stored).getOutputFiles(0).getPath()).isEqualTo("out/a.o");

    String other = sha("other action".getBytes(StandardCharsets.UTF_8));
    byte[] bin = result().toByteArray();
    HttpResponse<byte[]> z = send(HttpRequest.newBuilder(uri("/ac/" + other))
        .header("Content-Encoding", "zstd").header("X-Digest-SizeBytes", Integer.toString(bin.length))
        .PUT(BodyPublishers.ofByteArray(Zstd.compress(bin))));
    assertThat(z.statusCode()).as(new String(z.body())).isEqualTo(200);
    assertThat(send(HttpRequest.newBuilder(uri("/ac/" + other)).GET()).statusCode()).isEqualTo(200);
  }

  @Test
  void invalidActionResultsAre400AndNotStored() throws Exception {
    start(HttpCacheOptions.defaults());
    byte[][] bodies = {
      "definitely not a protobuf \u0000\u00ff".getBytes(StandardCharsets.ISO_8859_1),
      {(byte) 0x0a, (byte) 0xff}, // truncated field
      ActionResult.newBuilder()
          .addOutputFiles(OutputFile.newBuilder().setPath("/etc/passwd").setDigest(digestOf(output)))
          .build().toByteArray(),
      ActionResult.newBuilder().addOutputFiles(OutputFile.newBuilder().setPath("a")).build().toByteArray(),
    };
    for (byte[] body : bodies) {
      HttpResponse<byte[]> r = send(HttpRequest.newBuilder(uri("/ac/" + actionHash))
          .PUT(BodyPublishers.ofByteArray(body)));
      assertThat(r.statusCode()).isEqualTo(400);
    }
    HttpResponse<byte[]> badJson = send(HttpRequest.newBuilder(uri("/ac/" + actionHash))
        .header("Content-Type", "application/json").PUT(BodyPublishers.ofString("{\"exitCode\": \"x\"")));
    assertThat(badJson.statusCode()).isEqualTo(400);
    HttpResponse<byte[]> sizeLie = send(HttpRequest.newBuilder(uri("/ac/" + actionHash))
        .header("X-Digest-SizeBytes", "3").PUT(BodyPublishers.ofByteArray(result().toByteArray())));
    assertThat(sizeLie.statusCode()).isEqualTo(400);
    assertThat(mem.entries()).isEmpty();
  }

  @Test
  void disabledValidationStoresRawBytes() throws Exception {
    start(HttpCacheOptions.defaults().withDisableHttpAcValidation(true));
    byte[] garbage = "anything at all".getBytes(StandardCharsets.UTF_8);
    HttpResponse<byte[]> put = send(HttpRequest.newBuilder(uri("/ac/" + actionHash))
        .PUT(BodyPublishers.ofByteArray(garbage)));
    assertThat(put.statusCode()).isEqualTo(200);
    assertThat(mem.entries()).containsOnlyKeys(new BlobKey(Kind.RAW, DigestFunction.SHA256, actionHash));
    assertThat(send(HttpRequest.newBuilder(uri("/ac/" + actionHash)).GET()).body()).isEqualTo(garbage);
  }

  @Test
  void instanceManglingOfAcKeys() throws Exception {
    start(HttpCacheOptions.defaults().withDisableHttpAcValidation(true).withEnableAcKeyInstanceMangling(true));
    byte[] v = "value".getBytes(StandardCharsets.UTF_8);
    assertThat(send(HttpRequest.newBuilder(uri("/team/a/ac/" + actionHash)).PUT(BodyPublishers.ofByteArray(v)))
        .statusCode()).isEqualTo(200);
    String mangled = sha((actionHash + "team/a").getBytes(StandardCharsets.UTF_8));
    assertThat(mem.entries()).containsOnlyKeys(new BlobKey(Kind.RAW, DigestFunction.SHA256, mangled));
    assertThat(send(HttpRequest.newBuilder(uri("/team/a/ac/" + actionHash)).GET()).body()).isEqualTo(v);
    assertThat(send(HttpRequest.newBuilder(uri("/ac/" + actionHash)).GET()).statusCode()).isEqualTo(404);
    assertThat(send(HttpRequest.newBuilder(uri("/team/b/ac/" + actionHash)).GET()).statusCode()).isEqualTo(404);
    // No instance: the key is used as is.
    assertThat(send(HttpRequest.newBuilder(uri("/ac/" + actionHash)).PUT(BodyPublishers.ofByteArray(v)))
        .statusCode()).isEqualTo(200);
    assertThat(mem.entries()).containsKey(new BlobKey(Kind.RAW, DigestFunction.SHA256, actionHash));
    assertThat(HexFormat.of().parseHex(mangled)).hasSize(32);
  }

  @Test
  void withoutManglingInstancesShareAcEntries() throws Exception {
    start(HttpCacheOptions.defaults().withDisableHttpAcValidation(true));
    byte[] v = "value".getBytes(StandardCharsets.UTF_8);
    assertThat(send(HttpRequest.newBuilder(uri("/x/ac/" + actionHash)).PUT(BodyPublishers.ofByteArray(v)))
        .statusCode()).isEqualTo(200);
    assertThat(send(HttpRequest.newBuilder(uri("/ac/" + actionHash)).GET()).body()).isEqualTo(v);
  }
}
