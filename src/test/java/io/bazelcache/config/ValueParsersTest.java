package io.bazelcache.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.bazelcache.config.ListenAddress.Tcp;
import io.bazelcache.config.ListenAddress.Unix;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class ValueParsersTest {
  @Test
  void goDurations() {
    assertThat(GoDuration.parse("15s")).isEqualTo(Duration.ofSeconds(15));
    assertThat(GoDuration.parse("1m30s")).isEqualTo(Duration.ofSeconds(90));
    assertThat(GoDuration.parse("100ms")).isEqualTo(Duration.ofMillis(100));
    assertThat(GoDuration.parse("1h2m3s4ms5us6ns"))
        .isEqualTo(Duration.ofHours(1).plusMinutes(2).plusSeconds(3).plusMillis(4).plusNanos(5006));
    assertThat(GoDuration.parse("1.5h")).isEqualTo(Duration.ofMinutes(90));
    assertThat(GoDuration.parse(".5s")).isEqualTo(Duration.ofMillis(500));
    assertThat(GoDuration.parse("2\u00b5s")).isEqualTo(Duration.ofNanos(2000));
    assertThat(GoDuration.parse("0")).isEqualTo(Duration.ZERO);
    assertThat(GoDuration.parse("-2s")).isEqualTo(Duration.ofSeconds(-2));
    assertThat(GoDuration.parse("+2s")).isEqualTo(Duration.ofSeconds(2));
  }

  @Test
  void badGoDurations() {
    for (String bad : new String[] {"", "15", "s", "1.2.3s", "1d", "1 s", "-", "5m-3s", "9999999999h"}) {
      assertThatThrownBy(() -> GoDuration.parse(bad)).as(bad).isInstanceOf(IllegalArgumentException.class);
    }
  }

  @Test
  void formatsDurationsTheGoWay() {
    assertThat(GoDuration.format(Duration.ZERO)).isEqualTo("0s");
    assertThat(GoDuration.format(Duration.ofSeconds(90))).isEqualTo("1m30s");
    assertThat(GoDuration.format(Duration.ofMillis(100))).isEqualTo("100ms");
    assertThat(GoDuration.format(Duration.ofHours(2))).isEqualTo("2h0m0s");
    assertThat(GoDuration.format(Duration.ofMillis(1500))).isEqualTo("1.5s");
  }

  @Test
  void listenAddresses() {
    assertThat(ListenAddress.parse(":8080")).isEqualTo(new Tcp("", 8080));
    assertThat(ListenAddress.parse("0.0.0.0:8080")).isEqualTo(new Tcp("0.0.0.0", 8080));
    assertThat(ListenAddress.parse("cache.example.com:0")).isEqualTo(new Tcp("cache.example.com", 0));
    assertThat(ListenAddress.parse("[::]:9092")).isEqualTo(new Tcp("::", 9092));
    assertThat(ListenAddress.parse("unix:///run/bazel.sock")).isEqualTo(new Unix("/run/bazel.sock"));
    assertThat(ListenAddress.parse("unix://rel.sock")).isEqualTo(new Unix("rel.sock"));
    assertThat(new Tcp("::1", 80).toString()).isEqualTo("[::1]:80");
    assertThat(new Unix("/s").toString()).isEqualTo("unix:///s");
  }

  @Test
  void badListenAddresses() {
    for (String bad : new String[] {"8080", "host:", ":65536", ":-1", "::1:80", "[::1:80", "unix://", "a b:1",
        "http://x:80"}) {
      assertThatThrownBy(() -> ListenAddress.parse(bad)).as(bad).isInstanceOf(IllegalArgumentException.class);
    }
  }

  @Test
  void goBooleans() {
    for (String t : new String[] {"1", "t", "T", "true", "TRUE", "True"}) {
      assertThat(Option.parseBool(t)).as(t).isTrue();
    }
    for (String f : new String[] {"0", "f", "F", "false", "FALSE", "False"}) {
      assertThat(Option.parseBool(f)).as(f).isFalse();
    }
    assertThatThrownBy(() -> Option.parseBool("yes")).isInstanceOf(IllegalArgumentException.class);
  }
}
