package io.bazelcache.http;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.digest.Hasher;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** A 192 MiB upload through a server whose whole heap is 48 MiB: the body must be streamed, not held. */
class SmallHeapUploadTest {
  static final long SIZE = 192L << 20;

  /** Deterministic pseudo-random bytes, generated on the fly. */
  static InputStream content() {
    return new InputStream() {
      final SplittableRandom rnd = new SplittableRandom(42);
      long left = SIZE;

      @Override
      public int read() {
        byte[] b = new byte[1];
        return read(b, 0, 1) < 0 ? -1 : b[0] & 0xff;
      }

      @Override
      public int read(byte[] b, int off, int len) {
        if (left == 0) {
          return -1;
        }
        int n = (int) Math.min(Math.min(len, left), 8192) & ~7;
        if (n == 0) {
          n = (int) Math.min(len, left);
          for (int i = 0; i < n; i++) {
            b[off + i] = (byte) rnd.nextInt();
          }
        } else {
          for (int i = 0; i < n; i += 8) {
            long v = rnd.nextLong();
            for (int j = 0; j < 8; j++) {
              b[off + i + j] = (byte) (v >>> (8 * j));
            }
          }
        }
        left -= n;
        return n;
      }
    };
  }

  @Test
  void uploadMuchLargerThanTheHeapSucceeds() throws Exception {
    Hasher h = DigestFunction.SHA256.newHasher();
    try (InputStream in = content()) {
      byte[] buf = new byte[1 << 16];
      int n;
      while ((n = in.read(buf)) > 0) {
        h.update(buf, 0, n);
      }
    }
    String hash = HexFormat.of().formatHex(h.finish());

    String javaBin = ProcessHandle.current().info().command().orElse("java");
    Process p = new ProcessBuilder(javaBin, "-Xmx48m", "-cp", System.getProperty("java.class.path"),
        SmallHeapServerMain.class.getName()).redirectErrorStream(true).start();
    try {
      BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
      String line;
      int port = -1;
      while ((line = out.readLine()) != null) {
        if (line.startsWith("PORT ")) {
          port = Integer.parseInt(line.substring(5).trim());
          break;
        }
      }
      assertThat(port).as("server did not start").isPositive();
      Thread drain = Thread.ofVirtual().start(() -> {
        try {
          out.transferTo(java.io.Writer.nullWriter());
        } catch (java.io.IOException ignored) {
          // process gone
        }
      });

      HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
      HttpResponse<String> put = client.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/cas/" + hash))
          .header("X-Digest-SizeBytes", Long.toString(SIZE))
          .PUT(HttpRequest.BodyPublishers.ofInputStream(SmallHeapUploadTest::content)).build(),
          HttpResponse.BodyHandlers.ofString());
      assertThat(put.statusCode()).as(put.body()).isEqualTo(200);

      HttpResponse<String> status = client.send(
          HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/status")).build(),
          HttpResponse.BodyHandlers.ofString());
      JsonNode json = new ObjectMapper().readTree(status.body());
      assertThat(json.get("NumFiles").asLong()).isEqualTo(1);
      assertThat(json.get("UncompressedSize").asLong()).isEqualTo(SIZE);
      assertThat(p.isAlive()).isTrue();
      p.getOutputStream().close();
      assertThat(p.waitFor(20, TimeUnit.SECONDS)).isTrue();
      drain.join(5000);
    } finally {
      p.destroyForcibly();
    }
  }
}
