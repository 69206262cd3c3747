package io.bazelcache.server;

import java.util.logging.ConsoleHandler;
import java.util.logging.Formatter;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * One-line log records on stderr (java.util.logging, behind slf4j): time, level, logger, message. The time is
 * ISO-8601 in UTC, in the local time zone, or left out, after {@code log_timezone} (see {@link #timezone}).
 */
final class Logging {
  private Logging() {}

  /** UTC, the system's zone, or null for no timestamp. */
  private static volatile java.time.ZoneId zone = java.time.ZoneOffset.UTC;

  /** bazel-remote's {@code log_timezone}: applies to every line logged from now on. */
  static void timezone(io.bazelcache.config.Config.LogTimezone tz) {
    zone = switch (tz) {
      case UTC -> java.time.ZoneOffset.UTC;
      case LOCAL -> java.time.ZoneId.systemDefault();
      case NONE -> null;
    };
  }

  /** The timestamp prefix of a record logged at {@code t} (with its trailing space), or "" for none. */
  static String timestamp(java.time.Instant t) {
    java.time.ZoneId z = zone;
    if (z == null) {
      return "";
    }
    if (z.equals(java.time.ZoneOffset.UTC)) {
      return t + " ";
    }
    return java.time.OffsetDateTime.ofInstant(t, z) + " ";
  }

  static void configure() {
    if (System.getProperty("java.util.logging.config.file") != null) {
      return;
    }
    Logger root = Logger.getLogger("");
    for (var h : root.getHandlers()) {
      root.removeHandler(h);
    }
    ConsoleHandler handler = new ConsoleHandler();
    handler.setFormatter(new Formatter() {
      @Override
      public String format(LogRecord r) {
        String name = r.getLoggerName() == null ? "" : r.getLoggerName();
        int dot = name.lastIndexOf('.');
        StringBuilder sb = new StringBuilder(128)
            .append(timestamp(r.getInstant()))
            .append(r.getLevel().getName()).append(' ')
            .append(dot >= 0 ? name.substring(dot + 1) : name).append(": ")
            .append(formatMessage(r)).append('\n');
        if (r.getThrown() != null) {
          sb.append(r.getThrown()).append('\n');
        }
        return sb.toString();
      }
    });
    handler.setLevel(Level.ALL);
    root.addHandler(handler);
    root.setLevel(Level.INFO);
    // gRPC and Netty are chatty at INFO about transport details.
    Logger.getLogger("io.grpc.netty.shaded").setLevel(Level.WARNING);
    Logger.getLogger("io.netty").setLevel(Level.WARNING);
  }
}
