package io.bazelcache.http;

import static org.assertj.core.api.Assertions.assertThat;

import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.StoreStats;
import io.bazelcache.testing.MemoryBlobStore;
import io.netty.handler.ssl.SslContextBuilder;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** HTTPS: the same protocol behind TLS, including blobs that offer a file for zero-copy. */
class HttpsTest {
  @TempDir Path tmp;

  @Test
  void servesOverTls() throws Exception {
    Path ks = tmp.resolve("server.p12");
    char[] pw = "changeit".toCharArray();
    Process keytool = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "keytool").toString(),
        "-genkeypair", "-alias", "server", "-keyalg", "EC", "-groupname", "secp256r1", "-dname", "CN=localhost",
        "-ext", "SAN=ip:127.0.0.1,dns:localhost", "-validity", "2", "-storetype", "PKCS12",
        "-keystore", ks.toString(), "-storepass", "changeit", "-keypass", "changeit")
        .redirectErrorStream(true).start();
    String out = new String(keytool.getInputStream().readAllBytes());
    assertThat(keytool.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(keytool.exitValue()).as(out).isZero();

    KeyStore store = KeyStore.getInstance("PKCS12");
    try (InputStream in = Files.newInputStream(ks)) {
      store.load(in, pw);
    }
    KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
    kmf.init(store, pw);
    TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    tmf.init(store);
    SSLContext clientCtx = SSLContext.getInstance("TLS");
    clientCtx.init(null, tmf.getTrustManagers(), null);

    byte[] data = new byte[500_000];
    new Random(1).nextBytes(data);
    String h = DigestFunction.SHA256.hexOf(data);
    java.nio.file.Path raw = Files.write(tmp.resolve("raw"), data);
    HttpCacheServerTest.FileStore cas = new HttpCacheServerTest.FileStore(h, raw, null);
    try (HttpCacheServer server = new HttpCacheServer(new InetSocketAddress("127.0.0.1", 0), cas,
        new MemoryBlobStore(),
        HttpCacheOptions.builder().ioThreads(1).sslContext(SslContextBuilder.forServer(kmf).build()).build(),
        () -> new StoreStats(0, 0, 0, 0, 0)).start()) {
      HttpClient client = HttpClient.newBuilder().sslContext(clientCtx).version(HttpClient.Version.HTTP_1_1).build();
      URI base = URI.create("https://127.0.0.1:" + server.port());
      byte[] small = "hello tls".getBytes();
      HttpResponse<byte[]> put = client.send(HttpRequest.newBuilder(base.resolve("/cas/"
          + DigestFunction.SHA256.hexOf(small))).PUT(HttpRequest.BodyPublishers.ofByteArray(small)).build(),
          HttpResponse.BodyHandlers.ofByteArray());
      assertThat(put.statusCode()).isEqualTo(200);
      HttpResponse<byte[]> got = client.send(HttpRequest.newBuilder(base.resolve("/cas/" + h)).build(),
          HttpResponse.BodyHandlers.ofByteArray());
      assertThat(got.statusCode()).isEqualTo(200);
      assertThat(got.body()).isEqualTo(data);
      // The blob offers a file region; under TLS the server streams it instead (sendfile cannot encrypt).
      HttpCacheServerTest.awaitClosed(cas.last.get());
    }
  }
}
