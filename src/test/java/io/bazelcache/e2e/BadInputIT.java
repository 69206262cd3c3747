package io.bazelcache.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Invalid uploads and requests against the real server process: each is refused and leaves nothing behind. */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class BadInputIT {
  private static final int MAX_BLOB_SIZE = 1024;
  private static final String HEX64 = "0123456789abcdef".repeat(4);

  private static ServerProcess server;
  private static final HttpClient client = HttpClient.newBuilder()
      .version(HttpClient.Version.HTTP_1_1)
      .connectTimeout(Duration.ofSeconds(5))
      .build();
  private static final SplittableRandom random = new SplittableRandom();

  @BeforeAll
  static void startServer() {
    Path runDir = E2e.runDir("BadInputIT");
    server = ServerProcess.start(runDir.resolve("cache"), 1, runDir.resolve("logs"),
        "--max_blob_size", Integer.toString(MAX_BLOB_SIZE));
  }

  @AfterAll
  static void stopServer() {
    if (server != null) {
      server.close();
    }
  }

  @Test
  void casUploadUnderTheWrongHashIsRejectedAndNotStored() throws Exception {
    byte[] body = randomBytes(100);
    String wrongKey = E2e.sha256Hex("not the body".getBytes(StandardCharsets.UTF_8));
    assertThat(put("/cas/" + wrongKey, body)).as("PUT under a digest that is not the body's").isEqualTo(400);
    assertThat(get("/cas/" + wrongKey).statusCode()).as("GET under the claimed digest").isEqualTo(404);
    assertThat(get("/cas/" + E2e.sha256Hex(body)).statusCode()).as("GET under the body's digest").isEqualTo(404);

    assertThat(put("/cas/" + E2e.sha256Hex(body), body)).as("the same body under its own digest").isEqualTo(200);
    assertThat(get("/cas/" + E2e.sha256Hex(body)).body()).isEqualTo(body);
  }

  @Test
  void uploadCutShortByADisconnectIsNotStored() throws Exception {
    byte[] body = randomBytes(1000);
    String key = E2e.sha256Hex(body);
    try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), server.port())) {
      OutputStream out = socket.getOutputStream();
      out.write(("PUT /cas/" + key + " HTTP/1.1\r\nHost: 127.0.0.1:" + server.port()
          + "\r\nContent-Type: application/octet-stream\r\nContent-Length: " + body.length + "\r\n\r\n")
          .getBytes(StandardCharsets.US_ASCII));
      out.write(body, 0, 400);
      out.flush();
      Thread.sleep(200); // let the server start on the body before the connection goes away
    }
    Thread.sleep(500); // and let it notice the disconnect
    assertThat(get("/cas/" + key).statusCode()).as("GET after 400 of 1000 bytes and a disconnect").isEqualTo(404);
    assertThat(head("/cas/" + key)).as("HEAD after the aborted upload").isEqualTo(404);

    assertThat(put("/cas/" + key, body)).as("the complete upload afterwards").isEqualTo(200);
    assertThat(get("/cas/" + key).body()).isEqualTo(body);
  }

  @Test
  void blobAboveMaxBlobSizeIs413AndNotStored() throws Exception {
    byte[] tooBig = randomBytes(MAX_BLOB_SIZE * 2);
    assertThat(put("/cas/" + E2e.sha256Hex(tooBig), tooBig)).as("PUT of %d bytes with --max_blob_size %d",
        tooBig.length, MAX_BLOB_SIZE).isEqualTo(413);
    assertThat(get("/cas/" + E2e.sha256Hex(tooBig)).statusCode()).isEqualTo(404);

    byte[] justFits = randomBytes(MAX_BLOB_SIZE);
    assertThat(put("/cas/" + E2e.sha256Hex(justFits), justFits)).as("PUT of exactly max_blob_size bytes")
        .isEqualTo(200);
    assertThat(get("/cas/" + E2e.sha256Hex(justFits)).body()).isEqualTo(justFits);
  }

  @Test
  void malformedPathsAre400() throws Exception {
    List<String> paths = List.of(
        "/cas/abc",
        "/cas/" + HEX64.substring(1),
        "/cas/" + HEX64 + "0",
        "/cas/" + HEX64.toUpperCase(),
        "/cas/" + "g".repeat(64),
        "/ac/" + HEX64.toUpperCase(),
        "/blobs/" + HEX64,
        "/cas/" + HEX64 + "/extra",
        "/cas",
        "/nothing-here");
    byte[] body = randomBytes(10);
    for (String path : paths) {
      assertThat(get(path).statusCode()).as("GET %s", path).isEqualTo(400);
      assertThat(put(path, body)).as("PUT %s", path).isEqualTo(400);
    }
  }

  @Test
  void garbageActionResultIsRejectedAndNotStored() throws Exception {
    String key = E2e.sha256Hex(randomBytes(32));
    // Not a protobuf message: the first tag has wire type 7, which does not exist.
    byte[] invalidWireType = {0x0f, 0x01, 0x02, 0x03};
    // Field 5 (stdout_raw, length-delimited) claims 100 bytes but 3 follow.
    byte[] truncated = {0x2a, 100, 'a', 'b', 'c'};
    for (byte[] garbage : List.of(invalidWireType, truncated)) {
      assertThat(put("/ac/" + key, garbage)).as("PUT /ac/ of %s", Arrays.toString(garbage)).isEqualTo(400);
      assertThat(get("/ac/" + key).statusCode()).as("GET /ac/ after the rejected PUT").isEqualTo(404);
    }

    // A well-formed ActionResult under the same key is accepted: exit_code 0 (field 4), stdout_raw "ok" (field 5).
    byte[] valid = {0x20, 0x00, 0x2a, 0x02, 'o', 'k'};
    assertThat(put("/ac/" + key, valid)).as("PUT of a valid ActionResult").isEqualTo(200);
    HttpResponse<byte[]> stored = get("/ac/" + key);
    assertThat(stored.statusCode()).isEqualTo(200);
    assertThat(new String(stored.body(), StandardCharsets.ISO_8859_1)).contains("ok");
  }

  private static byte[] randomBytes(int size) {
    byte[] data = new byte[size];
    random.nextBytes(data);
    return data;
  }

  private static URI uri(String path) {
    return URI.create("http://127.0.0.1:" + server.port() + path);
  }

  private static int put(String path, byte[] body) throws IOException, InterruptedException {
    HttpRequest request = HttpRequest.newBuilder(uri(path))
        .timeout(Duration.ofSeconds(30))
        .PUT(HttpRequest.BodyPublishers.ofByteArray(body))
        .build();
    return client.send(request, HttpResponse.BodyHandlers.discarding()).statusCode();
  }

  private static HttpResponse<byte[]> get(String path) throws IOException, InterruptedException {
    HttpRequest request = HttpRequest.newBuilder(uri(path)).timeout(Duration.ofSeconds(30)).GET().build();
    return client.send(request, HttpResponse.BodyHandlers.ofByteArray());
  }

  private static int head(String path) throws IOException, InterruptedException {
    HttpRequest request = HttpRequest.newBuilder(uri(path))
        .timeout(Duration.ofSeconds(30))
        .method("HEAD", HttpRequest.BodyPublishers.noBody())
        .build();
    return client.send(request, HttpResponse.BodyHandlers.discarding()).statusCode();
  }
}
