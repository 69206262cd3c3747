package io.bazelcache.auth;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.bazelcache.http.HttpCacheOptions;
import io.bazelcache.http.HttpCacheServer;
import io.bazelcache.storage.StoreStats;
import io.bazelcache.testing.MemoryBlobStore;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Key and certificate files as OpenSSL writes them. */
class ServerTlsTest {
  @TempDir Path tmp;

  private void openssl(String... args) throws Exception {
    Path bin = Path.of("/usr/bin/openssl");
    assumeTrue(Files.isExecutable(bin), "openssl");
    java.util.List<String> cmd = new java.util.ArrayList<>(java.util.List.of(bin.toString()));
    cmd.addAll(java.util.List.of(args));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).as(out).isZero();
  }

  @Test
  void servesHttpsWithAPkcs1RsaKey() throws Exception {
    Path key = tmp.resolve("rsa.key");
    Path cert = tmp.resolve("rsa.crt");
    openssl("genrsa", "-traditional", "-out", key.toString(), "2048");
    assertThat(Files.readString(key)).startsWith("-----BEGIN RSA PRIVATE KEY-----");
    openssl("req", "-new", "-x509", "-key", key.toString(), "-subj", "/CN=localhost", "-days", "1",
        "-addext", "subjectAltName=IP:127.0.0.1", "-out", cert.toString());
    ServerTls tls = ServerTls.load(cert, key, null, "TLSv1.2", false);
    assertThat(tls.mutual()).isFalse();
    assertThat(tls.protocols()).containsExactly("TLSv1.3", "TLSv1.2");
    assertThat(tls.grpcContext()).isNotNull();

    KeyStore trust = KeyStore.getInstance("PKCS12");
    trust.load(null, null);
    try (InputStream in = Files.newInputStream(cert)) {
      trust.setCertificateEntry("server", CertificateFactory.getInstance("X.509").generateCertificate(in));
    }
    TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    tmf.init(trust);
    SSLContext client = SSLContext.getInstance("TLS");
    client.init(null, tmf.getTrustManagers(), null);
    try (HttpCacheServer server = new HttpCacheServer(new InetSocketAddress("127.0.0.1", 0), new MemoryBlobStore(),
        new MemoryBlobStore(), HttpCacheOptions.builder().ioThreads(1).sslContext(tls.httpContext()).build(),
        () -> new StoreStats(0, 0, 0, 0, 0)).start()) {
      HttpClient c = HttpClient.newBuilder().sslContext(client).build();
      HttpResponse<String> r = c.send(HttpRequest.newBuilder(URI.create("https://127.0.0.1:" + server.port()
          + "/status")).build(), HttpResponse.BodyHandlers.ofString());
      assertThat(r.statusCode()).isEqualTo(200);
      c.shutdownNow();
    }
  }

  @Test
  void readsPkcs8KeysFromOpenssl() throws Exception {
    Path key = tmp.resolve("ec.key");
    Path cert = tmp.resolve("ec.crt");
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key.toString());
    assertThat(Files.readString(key)).startsWith("-----BEGIN PRIVATE KEY-----");
    openssl("req", "-new", "-x509", "-key", key.toString(), "-subj", "/CN=localhost", "-days", "1", "-out",
        cert.toString());
    ServerTls tls = ServerTls.load(cert, key, cert, "TLSv1.3", true);
    assertThat(tls.mutual()).isTrue();
    assertThat(tls.protocols()).containsExactly("TLSv1.3");
    assertThat(tls.httpContext()).isNotNull();
    assertThat(tls.grpcContext()).isNotNull();

    Path sec1 = tmp.resolve("sec1.key");
    openssl("ec", "-in", key.toString(), "-out", sec1.toString());
    assertThat(Files.readString(sec1)).startsWith("-----BEGIN EC PRIVATE KEY-----");
    // The same key in SEC1 form (cert-manager's default for ECDSA) is read too, and is the same key.
    ServerTls fromSec1 = ServerTls.load(cert, sec1, null, "TLSv1", false);
    assertThat(fromSec1.httpContext()).isNotNull();
    assertThat(((java.security.interfaces.ECPrivateKey) fromSec1.privateKey()).getS())
        .isEqualTo(((java.security.interfaces.ECPrivateKey) tls.privateKey()).getS());
    assertThat(((java.security.interfaces.ECPrivateKey) fromSec1.privateKey()).getParams().toString())
        .isEqualTo(((java.security.interfaces.ECPrivateKey) tls.privateKey()).getParams().toString());

    Path encrypted = tmp.resolve("enc.key");
    openssl("pkcs8", "-topk8", "-in", key.toString(), "-out", encrypted.toString(), "-passout", "pass:x");
    assertThatThrownBy(() -> ServerTls.load(cert, encrypted, null, "TLSv1", false))
        .hasMessage("tls_key_file " + encrypted + ": ENCRYPTED PRIVATE KEY is not supported; convert it with:"
            + " openssl pkcs8 -topk8 -nocrypt -in " + encrypted + " -out key.pem");
  }
}
