package io.bazelcache.auth;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.bazelcache.auth.HtpasswdEntries.Format;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class HtpasswdTest {
  @TempDir Path tmp;

  private Path file(String... lines) throws Exception {
    return Files.writeString(tmp.resolve("htpasswd"), String.join("\n", lines) + "\n");
  }

  @ParameterizedTest
  @EnumSource(value = Format.class, names = {"BCRYPT", "APR1", "SHA1", "SHA256_CRYPT", "SHA512_CRYPT"})
  void acceptsTheRightPasswordOnly(Format format) throws Exception {
    Htpasswd h = Htpasswd.load(file("# comment", "", HtpasswdEntries.line("alice", "s3cret pass:é", format),
        HtpasswdEntries.line("bob", "other", format)));
    assertThat(h.users()).containsExactlyInAnyOrder("alice", "bob");
    assertThat(h.verify("alice", "s3cret pass:é")).isTrue();
    assertThat(h.verify("bob", "other")).isTrue();
    assertThat(h.verify("alice", "s3cret pass:e")).isFalse();
    assertThat(h.verify("alice", "other")).isFalse();
    assertThat(h.verify("alice", "")).isFalse();
    assertThat(h.verify("carol", "other")).isFalse();
  }

  @Test
  void readsEntriesWrittenByApacheHtpasswd() throws Exception {
    assumeTrue(HtpasswdEntries.toolInstalled(), "htpasswd from apache2-utils");
    Htpasswd h = Htpasswd.load(file(HtpasswdEntries.tool("b", "pw-b", Format.BCRYPT),
        HtpasswdEntries.tool("m", "pw-m", Format.APR1), HtpasswdEntries.tool("s", "pw-s", Format.SHA1)));
    assertThat(h.verify("b", "pw-b")).isTrue();
    assertThat(h.verify("m", "pw-m")).isTrue();
    assertThat(h.verify("s", "pw-s")).isTrue();
    assertThat(h.verify("b", "pw-m")).isFalse();
    assertThat(h.isBcrypt("b")).isTrue();
  }

  @Test
  void acceptsAllBcryptVersionPrefixes() throws Exception {
    String y = HtpasswdEntries.line("u", "pw", Format.BCRYPT).substring(2);
    assertThat(y).startsWith("$2");
    String tail = y.substring(3);
    Htpasswd h = Htpasswd.load(file("y:$2y" + tail, "a:$2a" + tail, "b:$2b" + tail));
    assertThat(h.verify("y", "pw")).isTrue();
    assertThat(h.verify("a", "pw")).isTrue();
    assertThat(h.verify("b", "pw")).isTrue();
    assertThat(h.verify("b", "pw2")).isFalse();
  }

  @ParameterizedTest
  @EnumSource(value = Format.class, names = {"DES_CRYPT", "PLAIN"})
  void refusesWeakFormatsNamingTheLine(Format format) throws Exception {
    Path f = file(HtpasswdEntries.line("ok", "pw", Format.APR1), "# users", HtpasswdEntries.line("weak", "pw", format));
    assertThatThrownBy(() -> Htpasswd.load(f))
        .isInstanceOf(Htpasswd.FormatException.class)
        .hasMessage("htpasswd_file " + f + " line 3: unsupported password format for user \"weak\" (DES crypt or"
            + " plain text); use bcrypt (htpasswd -B), $apr1$ (htpasswd -m) or {SHA} (htpasswd -s)");
  }

  @Test
  void refusesMalformedLinesAndDuplicates() throws Exception {
    Path noColon = file("justauser");
    assertThatThrownBy(() -> Htpasswd.load(noColon)).hasMessageEndingWith("line 1: expected user:hash");
    Path badBcrypt = file("u:$2y$05$tooshort");
    assertThatThrownBy(() -> Htpasswd.load(badBcrypt)).hasMessageEndingWith("line 1: malformed bcrypt hash for user \"u\"");
    Path badSha = file("u:{SHA}abc");
    assertThatThrownBy(() -> Htpasswd.load(badSha)).hasMessageEndingWith("line 1: malformed {SHA} hash for user \"u\"");
    Path dup = file(HtpasswdEntries.line("u", "a", Format.SHA1), HtpasswdEntries.line("u", "b", Format.SHA1));
    assertThatThrownBy(() -> Htpasswd.load(dup)).hasMessageEndingWith("line 2: user \"u\" is listed twice");
    Path missing = tmp.resolve("nope");
    assertThatThrownBy(() -> Htpasswd.load(missing)).hasMessageStartingWith("htpasswd_file " + missing + ": cannot read");
  }

  @Test
  void aChangedFileIsReloadedAndABrokenOneIgnored() throws Exception {
    Path f = file(HtpasswdEntries.line("u", "old", Format.APR1));
    AtomicLong now = new AtomicLong();
    BasicAuthenticator auth = new BasicAuthenticator(Htpasswd.load(f), Duration.ofMinutes(5), 100, now::get);
    String old = "Basic " + Base64.getEncoder().encodeToString("u:old".getBytes());
    String neu = "Basic " + Base64.getEncoder().encodeToString("u:new".getBytes());
    assertThat(auth.authenticate(old)).isTrue();
    Files.writeString(f, HtpasswdEntries.line("u", "new", Format.SHA1) + "\n");
    Files.setLastModifiedTime(f, java.nio.file.attribute.FileTime.fromMillis(System.currentTimeMillis() + 10_000));
    assertThat(auth.authenticate(old)).as("not looked at again before the check interval").isTrue();
    now.addAndGet(BasicAuthenticator.RELOAD_CHECK_INTERVAL.toNanos());
    assertThat(auth.authenticate(old)).as("remembered success dropped with the old file").isFalse();
    assertThat(auth.authenticate(neu)).isTrue();
    Files.writeString(f, "u:plaintext\n");
    Files.setLastModifiedTime(f, java.nio.file.attribute.FileTime.fromMillis(System.currentTimeMillis() + 20_000));
    now.addAndGet(BasicAuthenticator.RELOAD_CHECK_INTERVAL.toNanos());
    assertThat(auth.authenticate(neu)).as("a broken file leaves the previous users in force").isTrue();
  }

  @Test
  void basicHeaderParsing() {
    String v = Base64.getEncoder().encodeToString("user:pa:ss".getBytes());
    assertThat(BasicAuthenticator.parse("Basic " + v)).isEqualTo(new BasicAuthenticator.Credentials("user", "pa:ss"));
    assertThat(BasicAuthenticator.parse("basic  " + v)).isEqualTo(new BasicAuthenticator.Credentials("user", "pa:ss"));
    assertThat(BasicAuthenticator.parse("Bearer " + v)).isNull();
    assertThat(BasicAuthenticator.parse("Basic !!!")).isNull();
    assertThat(BasicAuthenticator.parse("Basic " + Base64.getEncoder().encodeToString("nocolon".getBytes()))).isNull();
    assertThat(BasicAuthenticator.parse(null)).isNull();
    assertThat(new BasicAuthenticator.Credentials("u", "secret").toString()).doesNotContain("secret");
  }

  @Test
  void remembersSuccessesForAWhileButNeverFailures() throws Exception {
    Htpasswd h = Htpasswd.load(file(HtpasswdEntries.line("u", "pw", Format.BCRYPT)));
    AtomicLong now = new AtomicLong();
    BasicAuthenticator auth = new BasicAuthenticator(h, Duration.ofSeconds(60), 2, now::get);
    String good = "Basic " + Base64.getEncoder().encodeToString("u:pw".getBytes());
    String bad = "Basic " + Base64.getEncoder().encodeToString("u:nope".getBytes());
    assertThat(auth.authenticate(bad)).isFalse();
    assertThat(auth.rememberedCount()).isZero();
    assertThat(auth.authenticate(good)).isTrue();
    assertThat(auth.rememberedCount()).isEqualTo(1);
    assertThat(auth.authenticate(good)).isTrue();
    assertThat(auth.authenticate(bad)).isFalse();
    assertThat(auth.authenticate(null)).isFalse();
    now.addAndGet(Duration.ofSeconds(61).toNanos());
    assertThat(auth.authenticate(good)).isTrue(); // checked again, then remembered again
    assertThat(auth.rememberedCount()).isEqualTo(1);
    // A remembered success is keyed by a salted hash: the same password under another user is not a hit.
    assertThat(auth.authenticate("Basic " + Base64.getEncoder().encodeToString("v:pw".getBytes()))).isFalse();
  }
}
