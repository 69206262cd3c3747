package io.bazelcache.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.bazelcache.config.Config.LogTimezone;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneId;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** log_timezone: the timestamp that starts every log line. */
class LoggingTest {
  private static final Instant T = Instant.parse("2026-11-23T21:15:01.123Z");

  @AfterEach
  void reset() {
    Logging.timezone(LogTimezone.UTC);
  }

  @Test
  void utcIsIsoWithZ() {
    Logging.timezone(LogTimezone.UTC);
    assertThat(Logging.timestamp(T)).isEqualTo("2026-11-23T21:15:01.123Z ");
  }

  @Test
  void localCarriesTheSystemOffset() {
    Logging.timezone(LogTimezone.LOCAL);
    String s = Logging.timestamp(T);
    assertThat(OffsetDateTime.parse(s.trim()).toInstant()).isEqualTo(T);
    assertThat(OffsetDateTime.parse(s.trim()).getOffset()).isEqualTo(ZoneId.systemDefault().getRules().getOffset(T));
  }

  @Test
  void noneLeavesTheTimestampOut() {
    Logging.timezone(LogTimezone.NONE);
    assertThat(Logging.timestamp(T)).isEmpty();
  }
}
