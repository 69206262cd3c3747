package io.bazelcache.auth;

import io.grpc.netty.shaded.io.grpc.netty.GrpcSslContexts;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The server side of TLS for both listeners, loaded once from PEM files: {@code tls_cert_file} (the certificate
 * chain), {@code tls_key_file} (unencrypted PKCS#8 {@code PRIVATE KEY}: RSA, EC or EdDSA; or PKCS#1 {@code RSA PRIVATE
 * KEY}; or SEC1 {@code EC PRIVATE KEY}),
 * optional {@code tls_ca_file} (CA certificates that client certificates must chain to: mTLS), and
 * {@code min_tls_version} (TLS 1.3 is always the highest).
 *
 * <p>With a CA, client certificates are required, or only verified when presented if anonymous reads are allowed
 * (the access rules then demand one for writes; see {@link AccessControl#mutualTls}). Note that the JDK disables
 * TLS 1.0 and 1.1 by default ({@code jdk.tls.disabledAlgorithms}), so {@code min_tls_version} 1.0 and 1.1 behave
 * like 1.2 for HTTP.
 */
public final class ServerTls {
  private final PrivateKey key;
  private final X509Certificate[] chain;
  private final X509Certificate[] clientCas;
  private final String[] protocols;
  private final ClientAuth clientAuth;

  private ServerTls(PrivateKey key, X509Certificate[] chain, X509Certificate[] clientCas, String[] protocols,
      ClientAuth clientAuth) {
    this.key = key;
    this.chain = chain;
    this.clientCas = clientCas;
    this.protocols = protocols;
    this.clientAuth = clientAuth;
  }

  /**
   * @param caFile null or empty for no client certificates
   * @param minVersion JSSE name of the lowest protocol accepted ({@code TLSv1} .. {@code TLSv1.3})
   * @param clientCertOptional with a CA: whether clients may connect without a certificate
   * @throws IOException naming the file, on unreadable or malformed input
   */
  public static ServerTls load(Path certFile, Path keyFile, Path caFile, String minVersion,
      boolean clientCertOptional) throws IOException {
    X509Certificate[] chain = certificates(certFile, "tls_cert_file");
    PrivateKey key = privateKey(keyFile);
    X509Certificate[] cas = null;
    ClientAuth auth = ClientAuth.NONE;
    if (caFile != null && !caFile.toString().isEmpty()) {
      cas = certificates(caFile, "tls_ca_file");
      auth = clientCertOptional ? ClientAuth.OPTIONAL : ClientAuth.REQUIRE;
    }
    return new ServerTls(key, chain, cas, protocolsFrom(minVersion), auth);
  }

  static String[] protocolsFrom(String minVersion) {
    List<String> all = List.of("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3");
    int i = all.indexOf(minVersion);
    if (i < 0) {
      throw new IllegalArgumentException("unknown TLS version " + minVersion);
    }
    List<String> out = new ArrayList<>(all.subList(i, all.size()));
    java.util.Collections.reverse(out);
    return out.toArray(String[]::new);
  }

  PrivateKey privateKey() {
    return key;
  }

  public boolean mutual() {
    return clientAuth != ClientAuth.NONE;
  }

  public String[] protocols() {
    return protocols.clone();
  }

  /** For the HTTP server (Netty, JDK provider). */
  public SslContext httpContext() throws IOException {
    try {
      SslContextBuilder b = SslContextBuilder.forServer(key, chain)
          .sslProvider(SslProvider.JDK)
          .protocols(protocols)
          .clientAuth(clientAuth);
      if (clientCas != null) {
        b.trustManager(clientCas);
      }
      return b.build();
    } catch (javax.net.ssl.SSLException e) {
      throw new IOException("TLS setup for HTTP failed: " + e.getMessage(), e);
    }
  }

  /** For the gRPC server (grpc-netty-shaded: HTTP/2 with ALPN; OpenSSL when bundled, else the JDK). */
  public io.grpc.netty.shaded.io.netty.handler.ssl.SslContext grpcContext() throws IOException {
    try {
      var b = io.grpc.netty.shaded.io.netty.handler.ssl.SslContextBuilder.forServer(key, chain);
      GrpcSslContexts.configure(b);
      b.protocols(protocols);
      b.clientAuth(switch (clientAuth) {
        case NONE -> io.grpc.netty.shaded.io.netty.handler.ssl.ClientAuth.NONE;
        case OPTIONAL -> io.grpc.netty.shaded.io.netty.handler.ssl.ClientAuth.OPTIONAL;
        case REQUIRE -> io.grpc.netty.shaded.io.netty.handler.ssl.ClientAuth.REQUIRE;
      });
      if (clientCas != null) {
        b.trustManager(clientCas);
      }
      return b.build();
    } catch (javax.net.ssl.SSLException e) {
      throw new IOException("TLS setup for gRPC failed: " + e.getMessage(), e);
    }
  }

  // --------------------------------------------------------------------------------------------- PEM

  private static final Pattern PEM =
      Pattern.compile("-----BEGIN ([A-Z0-9 ]+)-----([A-Za-z0-9+/=\\s]*?)-----END \\1-----");

  private static X509Certificate[] certificates(Path file, String key) throws IOException {
    byte[] bytes = read(file, key);
    try {
      List<X509Certificate> out = new ArrayList<>();
      for (var c : CertificateFactory.getInstance("X.509").generateCertificates(new ByteArrayInputStream(bytes))) {
        out.add((X509Certificate) c);
      }
      if (out.isEmpty()) {
        throw new IOException(key + " " + file + ": no certificate found");
      }
      return out.toArray(X509Certificate[]::new);
    } catch (CertificateException e) {
      throw new IOException(key + " " + file + ": not a PEM certificate: " + e.getMessage(), e);
    }
  }

  private static PrivateKey privateKey(Path file) throws IOException {
    String pem = new String(read(file, "tls_key_file"), StandardCharsets.US_ASCII);
    Matcher m = PEM.matcher(pem);
    while (m.find()) {
      String type = m.group(1);
      byte[] der;
      try {
        der = Base64.getMimeDecoder().decode(m.group(2));
      } catch (IllegalArgumentException e) {
        throw new IOException("tls_key_file " + file + ": bad base64 in " + type);
      }
      switch (type) {
        case "PRIVATE KEY" -> {
          return pkcs8(der, file);
        }
        case "RSA PRIVATE KEY" -> {
          return pkcs8(rsaPkcs1ToPkcs8(der), file);
        }
        case "EC PRIVATE KEY" -> {
          byte[] pkcs8 = ecSec1ToPkcs8(der);
          if (pkcs8 == null) {
            throw new IOException("tls_key_file " + file + ": EC PRIVATE KEY is malformed or names no curve; convert it"
                + " with: openssl pkcs8 -topk8 -nocrypt -in " + file + " -out key.pem");
          }
          return pkcs8(pkcs8, file);
        }
        case "ENCRYPTED PRIVATE KEY" -> throw new IOException("tls_key_file " + file + ": "
            + type + " is not supported; convert it with: openssl pkcs8 -topk8 -nocrypt -in " + file
            + " -out key.pem");
        default -> {
          // EC PARAMETERS and the like come before the key; keep looking.
        }
      }
    }
    throw new IOException("tls_key_file " + file + ": no PEM private key found");
  }

  private static PrivateKey pkcs8(byte[] der, Path file) throws IOException {
    PKCS8EncodedKeySpec spec = new PKCS8EncodedKeySpec(der);
    for (String alg : new String[] {"RSA", "EC", "Ed25519", "Ed448", "RSASSA-PSS"}) {
      try {
        return KeyFactory.getInstance(alg).generatePrivate(spec);
      } catch (GeneralSecurityException e) {
        // try the next algorithm
      }
    }
    throw new IOException("tls_key_file " + file + ": unreadable private key (expected unencrypted PKCS#8)");
  }

  /** Wraps a PKCS#1 RSAPrivateKey in a PKCS#8 PrivateKeyInfo (version 0, rsaEncryption, NULL parameters). */
  static byte[] rsaPkcs1ToPkcs8(byte[] pkcs1) {
    byte[] version = {0x02, 0x01, 0x00};
    byte[] algorithm = {0x30, 0x0d, 0x06, 0x09, 0x2a, (byte) 0x86, 0x48, (byte) 0x86, (byte) 0xf7, 0x0d, 0x01, 0x01,
        0x01, 0x05, 0x00};
    byte[] octets = tlv(0x04, pkcs1);
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    body.writeBytes(version);
    body.writeBytes(algorithm);
    body.writeBytes(octets);
    return tlv(0x30, body.toByteArray());
  }

  /**
   * Wraps a SEC1 ECPrivateKey ({@code SEQUENCE {version 1, OCTET STRING key, [0] curve OID, [1] public key}}, what
   * OpenSSL and cert-manager write as {@code EC PRIVATE KEY}) in a PKCS#8 PrivateKeyInfo naming the same curve; null
   * if the curve is not in it.
   */
  static byte[] ecSec1ToPkcs8(byte[] sec1) {
    try {
      int[] outer = header(sec1, 0);
      if ((sec1[0] & 0xff) != 0x30) {
        return null;
      }
      int pos = outer[0];
      int end = outer[0] + outer[1];
      while (pos < end) {
        int tag = sec1[pos] & 0xff;
        int[] h = header(sec1, pos);
        if (tag == 0xa0) { // [0] parameters: the curve's OID, as a complete TLV
          byte[] curveOid = java.util.Arrays.copyOfRange(sec1, h[0], h[0] + h[1]);
          if ((curveOid[0] & 0xff) != 0x06) {
            return null;
          }
          byte[] ecPublicKey = {0x06, 0x07, 0x2a, (byte) 0x86, 0x48, (byte) 0xce, 0x3d, 0x02, 0x01};
          ByteArrayOutputStream alg = new ByteArrayOutputStream();
          alg.writeBytes(ecPublicKey);
          alg.writeBytes(curveOid);
          ByteArrayOutputStream body = new ByteArrayOutputStream();
          body.writeBytes(new byte[] {0x02, 0x01, 0x00});
          body.writeBytes(tlv(0x30, alg.toByteArray()));
          body.writeBytes(tlv(0x04, sec1));
          return tlv(0x30, body.toByteArray());
        }
        pos = h[0] + h[1];
      }
      return null;
    } catch (ArrayIndexOutOfBoundsException e) {
      return null;
    }
  }

  /** The content offset and length of the DER element starting at {@code pos}. */
  private static int[] header(byte[] der, int pos) {
    int len = der[pos + 1] & 0xff;
    int off = pos + 2;
    if (len >= 0x80) {
      int n = len & 0x7f;
      if (n == 0 || n > 3) {
        throw new ArrayIndexOutOfBoundsException("unsupported DER length");
      }
      len = 0;
      for (int i = 0; i < n; i++) {
        len = (len << 8) | (der[off + i] & 0xff);
      }
      off += n;
    }
    if (off + len > der.length) {
      throw new ArrayIndexOutOfBoundsException("truncated DER");
    }
    return new int[] {off, len};
  }

  private static byte[] tlv(int tag, byte[] value) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.write(tag);
    int n = value.length;
    if (n < 0x80) {
      out.write(n);
    } else {
      int bytes = n > 0xffffff ? 4 : n > 0xffff ? 3 : n > 0xff ? 2 : 1;
      out.write(0x80 | bytes);
      for (int i = bytes - 1; i >= 0; i--) {
        out.write(n >>> (8 * i));
      }
    }
    out.writeBytes(value);
    return out.toByteArray();
  }

  private static byte[] read(Path file, String key) throws IOException {
    try {
      return Files.readAllBytes(file);
    } catch (IOException e) {
      throw new IOException(key + " " + file + ": cannot read: " + e.getMessage(), e);
    }
  }
}
