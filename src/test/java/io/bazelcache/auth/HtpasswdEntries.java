package io.bazelcache.auth;

import at.favre.lib.crypto.bcrypt.BCrypt;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Base64;
import java.util.concurrent.TimeUnit;
import org.apache.commons.codec.digest.Md5Crypt;

/**
 * htpasswd lines for tests: made by Apache's {@code htpasswd} (Debian apache2-utils) when it is installed, as users
 * make them; otherwise by the same algorithms from the libraries (bcrypt at cost 5, $apr1$, {SHA}).
 */
public final class HtpasswdEntries {
  static final Path HTPASSWD = Path.of("/usr/bin/htpasswd");

  public enum Format {
    BCRYPT("-B"),
    APR1("-m"),
    SHA1("-s"),
    SHA256_CRYPT("-2"),
    SHA512_CRYPT("-5"),
    DES_CRYPT("-d"),
    PLAIN("-p");

    final String flag;

    Format(String flag) {
      this.flag = flag;
    }
  }

  private HtpasswdEntries() {}

  static boolean toolInstalled() {
    return Files.isExecutable(HTPASSWD);
  }

  /** One {@code user:hash} line. */
  public static String line(String user, String password, Format format) throws Exception {
    if (toolInstalled()) {
      return tool(user, password, format);
    }
    return user + ":" + switch (format) {
      case BCRYPT -> BCrypt.with(BCrypt.Version.VERSION_2Y).hashToString(5, password.toCharArray());
      case APR1 -> Md5Crypt.apr1Crypt(password.getBytes(StandardCharsets.UTF_8));
      case SHA1 -> "{SHA}" + Base64.getEncoder().encodeToString(
          MessageDigest.getInstance("SHA-1").digest(password.getBytes(StandardCharsets.UTF_8)));
      case SHA256_CRYPT -> org.apache.commons.codec.digest.Sha2Crypt.sha256Crypt(
          password.getBytes(StandardCharsets.UTF_8));
      case SHA512_CRYPT -> org.apache.commons.codec.digest.Sha2Crypt.sha512Crypt(
          password.getBytes(StandardCharsets.UTF_8));
      case DES_CRYPT -> org.apache.commons.codec.digest.UnixCrypt.crypt(password);
      case PLAIN -> password;
    };
  }

  /** Runs {@code htpasswd -nb[B|m|s|...] user password} and returns its line. */
  static String tool(String user, String password, Format format) throws Exception {
    Process p = new ProcessBuilder(HTPASSWD.toString(), "-nb" + format.flag.substring(1), user, password)
        .redirectError(ProcessBuilder.Redirect.DISCARD).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0) {
      throw new IllegalStateException("htpasswd failed: " + out);
    }
    return out.lines().filter(l -> !l.isBlank()).findFirst().orElseThrow();
  }
}
