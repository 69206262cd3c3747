package io.bazelcache.testing;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * A throw-away PKI made with the running JDK's {@code keytool}: a CA, a server certificate for 127.0.0.1/localhost
 * and a client certificate signed by it, and a self-signed "rogue" client certificate the CA never saw. Everything
 * is written as PEM (certificate chains, PKCS#8 keys), as an operator would configure the server.
 */
public final class TestPki {
  private static final String PW = "changeit";

  /** A key and its certificate chain (leaf first), as PEM files and as Java objects. */
  public record Identity(Path certPem, Path keyPem, PrivateKey key, X509Certificate[] chain) {
    public KeyStore keyStore() throws Exception {
      KeyStore ks = KeyStore.getInstance("PKCS12");
      ks.load(null, null);
      ks.setKeyEntry("id", key, PW.toCharArray(), chain);
      return ks;
    }
  }

  private final Path dir;
  private final Path caPem;
  private final X509Certificate caCert;
  private final Identity server;
  private final Identity client;
  private final Identity rogueClient;

  private TestPki(Path dir, Path caPem, X509Certificate caCert, Identity server, Identity client, Identity rogue) {
    this.dir = dir;
    this.caPem = caPem;
    this.caCert = caCert;
    this.server = server;
    this.client = client;
    this.rogueClient = rogue;
  }

  public static TestPki create(Path dir) throws Exception {
    Files.createDirectories(dir);
    Path caStore = dir.resolve("ca.p12");
    keytool("-genkeypair", "-alias", "ca", "-keyalg", "EC", "-groupname", "secp256r1", "-dname", "CN=bazel-cache test CA",
        "-ext", "bc:c", "-validity", "2", "-storetype", "PKCS12", "-keystore", caStore.toString(),
        "-storepass", PW, "-keypass", PW);
    Path caPem = dir.resolve("ca.pem");
    keytool("-exportcert", "-rfc", "-alias", "ca", "-keystore", caStore.toString(), "-storepass", PW,
        "-file", caPem.toString());
    X509Certificate ca = certs(Files.readAllBytes(caPem)).get(0);
    Identity server = signed(dir, "server", "CN=localhost", caStore, ca, "SAN=ip:127.0.0.1,dns:localhost",
        "EKU=serverAuth");
    Identity client = signed(dir, "client", "CN=builder", caStore, ca, null, "EKU=clientAuth");
    Identity rogue = selfSigned(dir, "rogue", "CN=builder");
    return new TestPki(dir, caPem, ca, server, client, rogue);
  }

  public Path dir() {
    return dir;
  }

  public Path caPem() {
    return caPem;
  }

  public X509Certificate caCert() {
    return caCert;
  }

  public Identity server() {
    return server;
  }

  public Identity client() {
    return client;
  }

  public Identity rogueClient() {
    return rogueClient;
  }

  /** A client context that trusts the test CA and, unless {@code identity} is null, presents that certificate. */
  public SSLContext clientContext(Identity identity, String... protocols) throws Exception {
    KeyStore trust = KeyStore.getInstance("PKCS12");
    trust.load(null, null);
    trust.setCertificateEntry("ca", caCert);
    TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    tmf.init(trust);
    KeyManagerFactory kmf = null;
    if (identity != null) {
      kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
      kmf.init(identity.keyStore(), PW.toCharArray());
    }
    SSLContext ctx = SSLContext.getInstance(protocols.length == 1 ? protocols[0] : "TLS");
    ctx.init(kmf == null ? null : new javax.net.ssl.KeyManager[] {
        new AlwaysPresent((javax.net.ssl.X509ExtendedKeyManager) kmf.getKeyManagers()[0])},
        tmf.getTrustManagers(), null);
    return ctx;
  }

  /**
   * Presents the one client certificate whatever CAs the server asks for (the JDK's own key manager would quietly
   * send none when the issuer is not among them, which hides what the server does with an untrusted certificate).
   */
  private static final class AlwaysPresent extends javax.net.ssl.X509ExtendedKeyManager {
    private final javax.net.ssl.X509ExtendedKeyManager delegate;

    AlwaysPresent(javax.net.ssl.X509ExtendedKeyManager delegate) {
      this.delegate = delegate;
    }

    @Override
    public String[] getClientAliases(String keyType, java.security.Principal[] issuers) {
      return new String[] {"id"};
    }

    @Override
    public String chooseClientAlias(String[] keyType, java.security.Principal[] issuers, java.net.Socket socket) {
      return "id";
    }

    @Override
    public String chooseEngineClientAlias(String[] keyType, java.security.Principal[] issuers,
        javax.net.ssl.SSLEngine engine) {
      return "id";
    }

    @Override
    public String[] getServerAliases(String keyType, java.security.Principal[] issuers) {
      return null;
    }

    @Override
    public String chooseServerAlias(String keyType, java.security.Principal[] issuers, java.net.Socket socket) {
      return null;
    }

    @Override
    public X509Certificate[] getCertificateChain(String alias) {
      return delegate.getCertificateChain(alias);
    }

    @Override
    public PrivateKey getPrivateKey(String alias) {
      return delegate.getPrivateKey(alias);
    }
  }

  private static Identity signed(Path dir, String name, String dname, Path caStore, X509Certificate ca, String san,
      String eku) throws Exception {
    Path store = dir.resolve(name + ".p12");
    keytool("-genkeypair", "-alias", name, "-keyalg", "EC", "-groupname", "secp256r1", "-dname", dname,
        "-validity", "2", "-storetype", "PKCS12", "-keystore", store.toString(), "-storepass", PW, "-keypass", PW);
    Path csr = dir.resolve(name + ".csr");
    keytool("-certreq", "-alias", name, "-keystore", store.toString(), "-storepass", PW, "-file", csr.toString());
    Path leafPem = dir.resolve(name + "-leaf.pem");
    List<String> gencert = new ArrayList<>(List.of("-gencert", "-rfc", "-alias", "ca", "-keystore",
        caStore.toString(), "-storepass", PW, "-infile", csr.toString(), "-outfile", leafPem.toString(),
        "-validity", "2"));
    if (san != null) {
      gencert.addAll(List.of("-ext", san));
    }
    gencert.addAll(List.of("-ext", eku));
    keytool(gencert.toArray(String[]::new));
    X509Certificate leaf = certs(Files.readAllBytes(leafPem)).get(0);
    X509Certificate[] chain = {leaf, ca};
    return write(dir, name, key(store, name), chain);
  }

  private static Identity selfSigned(Path dir, String name, String dname) throws Exception {
    Path store = dir.resolve(name + ".p12");
    keytool("-genkeypair", "-alias", name, "-keyalg", "EC", "-groupname", "secp256r1", "-dname", dname,
        "-validity", "2", "-storetype", "PKCS12", "-keystore", store.toString(), "-storepass", PW, "-keypass", PW);
    KeyStore ks = load(store);
    X509Certificate cert = (X509Certificate) ks.getCertificate(name);
    return write(dir, name, key(store, name), new X509Certificate[] {cert});
  }

  private static Identity write(Path dir, String name, PrivateKey key, X509Certificate[] chain) throws Exception {
    StringBuilder certs = new StringBuilder();
    for (X509Certificate c : chain) {
      certs.append(pem("CERTIFICATE", c.getEncoded()));
    }
    Path certPem = Files.writeString(dir.resolve(name + ".crt"), certs);
    Path keyPem = Files.writeString(dir.resolve(name + ".key"), pem("PRIVATE KEY", key.getEncoded()));
    return new Identity(certPem, keyPem, key, chain);
  }

  public static String pem(String type, byte[] der) {
    return "-----BEGIN " + type + "-----\n" + Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII))
        .encodeToString(der) + "\n-----END " + type + "-----\n";
  }

  private static PrivateKey key(Path store, String alias) throws Exception {
    return (PrivateKey) load(store).getKey(alias, PW.toCharArray());
  }

  private static KeyStore load(Path store) throws Exception {
    KeyStore ks = KeyStore.getInstance("PKCS12");
    try (InputStream in = Files.newInputStream(store)) {
      ks.load(in, PW.toCharArray());
    }
    return ks;
  }

  private static List<X509Certificate> certs(byte[] pem) throws Exception {
    List<X509Certificate> out = new ArrayList<>();
    for (Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(new ByteArrayInputStream(pem))) {
      out.add((X509Certificate) c);
    }
    return out;
  }

  private static void keytool(String... args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "keytool").toString());
    command.addAll(List.of(args));
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
      throw new IOException("keytool " + String.join(" ", args) + " failed: " + out);
    }
  }
}
