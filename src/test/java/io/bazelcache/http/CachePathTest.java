package io.bazelcache.http;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.bazelcache.digest.DigestFunction;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class CachePathTest {
  static final String H = DigestFunction.SHA256.hexOf("x".getBytes(StandardCharsets.UTF_8));

  static CachePath cache(String uri) throws Exception {
    CachePath.Target t = CachePath.parse(uri);
    assertThat(t).isInstanceOf(CachePath.Cache.class);
    return ((CachePath.Cache) t).path();
  }

  @Test
  void instancesAreThePrefixAsBazelRemoteComputesIt() throws Exception {
    assertThat(cache("/cas/" + H)).isEqualTo(new CachePath(CachePath.Area.CAS, "", H));
    assertThat(cache("/ac/" + H)).isEqualTo(new CachePath(CachePath.Area.AC, "", H));
    assertThat(cache("/foo/ac/" + H).instance()).isEqualTo("foo");
    assertThat(cache("/foo/bar/cas/" + H).instance()).isEqualTo("foo/bar");
    assertThat(cache("//ac/" + H).instance()).isEqualTo("");
    assertThat(cache("/ac/ac/" + H).instance()).isEqualTo("ac");
    assertThat(cache("/a%20b/ac/" + H + "?x=1").instance()).isEqualTo("a b");
    assertThat(cache("http://host:8080/i/cas/" + H).instance()).isEqualTo("i");
  }

  @Test
  void otherTargets() throws Exception {
    assertThat(CachePath.parse("/status")).isInstanceOf(CachePath.Status.class);
    assertThat(CachePath.parse("/status?x")).isInstanceOf(CachePath.Status.class);
    assertThat(CachePath.parse("/")).isInstanceOf(CachePath.Unknown.class);
    assertThat(CachePath.parse("/metrics")).isEqualTo(new CachePath.Unknown("/metrics"));
  }

  @Test
  void rejects() {
    for (String bad : new String[] {
      "*", "cas/" + H, "/cas/" + H.toUpperCase(), "/cas/" + H.substring(2), "/cas/", "/ac", "/cas/../" + H,
      "/./cas/" + H, "/%2E%2E/cas/" + H, "/cas/%2e%2e", "/x%5cy/cas/" + H, "/x%0ay/cas/" + H, "/%ff/cas/" + H,
      "/%4/cas/" + H, "/cas/" + H + "/", "/cas/x/y",
    }) {
      assertThatThrownBy(() -> CachePath.parse(bad)).as(bad).isInstanceOf(CachePath.BadPathException.class);
    }
  }

  @Test
  void manglingMatchesBazelRemote() {
    assertThat(CachePath.mangleAcHash(H, "")).isEqualTo(H);
    assertThat(CachePath.mangleAcHash(H, "inst"))
        .isEqualTo(DigestFunction.SHA256.hexOf((H + "inst").getBytes(StandardCharsets.UTF_8)));
  }
}
