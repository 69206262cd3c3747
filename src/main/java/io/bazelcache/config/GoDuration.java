package io.bazelcache.config;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.time.Duration;
import java.util.Map;

/**
 * Parses durations written in Go's {@code time.ParseDuration} syntax, as bazel-remote accepts them:
 * an optional sign and a sequence of decimal numbers each followed by a unit ({@code ns}, {@code
 * us}, {@code µs}, {@code ms}, {@code s}, {@code m}, {@code h}), for example {@code 15s}, {@code
 * 1m30s}, {@code 1.5h} or {@code 100ms}. A bare {@code 0} is also accepted.
 */
final class GoDuration {
  private static final Map<String, Long> UNIT_NANOS =
      Map.of(
          "ns", 1L,
          "us", 1_000L,
          "\u00b5s", 1_000L,
          "\u03bcs", 1_000L,
          "ms", 1_000_000L,
          "s", 1_000_000_000L,
          "m", 60_000_000_000L,
          "h", 3_600_000_000_000L);

  private GoDuration() {}

  /** Returns the duration, or throws IllegalArgumentException with a short reason. */
  static Duration parse(String text) {
    String s = text.strip();
    if (s.isEmpty()) {
      throw new IllegalArgumentException("empty duration");
    }
    boolean negative = false;
    if (s.charAt(0) == '-' || s.charAt(0) == '+') {
      negative = s.charAt(0) == '-';
      s = s.substring(1);
    }
    if (s.equals("0")) {
      return Duration.ZERO;
    }
    if (s.isEmpty()) {
      throw new IllegalArgumentException("no number");
    }
    BigInteger total = BigInteger.ZERO;
    int i = 0;
    while (i < s.length()) {
      int start = i;
      while (i < s.length() && (Character.isDigit(s.charAt(i)) || s.charAt(i) == '.')) {
        i++;
      }
      String number = s.substring(start, i);
      if (number.isEmpty() || number.equals(".") || number.indexOf('.') != number.lastIndexOf('.')) {
        throw new IllegalArgumentException("expected a number at '" + s.substring(start) + "'");
      }
      int unitStart = i;
      while (i < s.length() && !Character.isDigit(s.charAt(i)) && s.charAt(i) != '.') {
        i++;
      }
      String unit = s.substring(unitStart, i);
      if (unit.isEmpty()) {
        throw new IllegalArgumentException("missing unit after '" + number + "' (use ns, us, ms, s, m or h)");
      }
      Long nanos = UNIT_NANOS.get(unit);
      if (nanos == null) {
        throw new IllegalArgumentException("unknown unit '" + unit + "' (use ns, us, ms, s, m or h)");
      }
      BigDecimal value = new BigDecimal(number.startsWith(".") ? "0" + number : number);
      total = total.add(value.multiply(BigDecimal.valueOf(nanos)).toBigInteger());
      if (total.bitLength() > 63) {
        throw new IllegalArgumentException("duration too large");
      }
    }
    long n = total.longValueExact();
    return Duration.ofNanos(negative ? -n : n);
  }

  /** Formats a duration the way Go prints it, for example {@code 1m30s} or {@code 0s}. */
  static String format(Duration d) {
    if (d.isZero()) {
      return "0s";
    }
    StringBuilder sb = new StringBuilder();
    if (d.isNegative()) {
      sb.append('-');
      d = d.negated();
    }
    long nanos = d.toNanos();
    if (nanos < 1_000_000_000L) {
      if (nanos % 1_000_000L == 0) {
        return sb.append(nanos / 1_000_000L).append("ms").toString();
      }
      if (nanos % 1_000L == 0) {
        return sb.append(nanos / 1_000L).append("us").toString();
      }
      return sb.append(nanos).append("ns").toString();
    }
    long hours = d.toHours();
    long minutes = d.toMinutesPart();
    BigDecimal seconds = BigDecimal.valueOf(d.toSecondsPart())
        .add(BigDecimal.valueOf(d.toNanosPart(), 9))
        .stripTrailingZeros();
    if (hours > 0) {
      sb.append(hours).append('h');
    }
    if (hours > 0 || minutes > 0) {
      sb.append(minutes).append('m');
    }
    return sb.append(seconds.toPlainString()).append('s').toString();
  }
}
