package io.bazelcache.server;

import java.util.logging.ConsoleHandler;
import java.util.logging.Formatter;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/** One-line log records on stderr (java.util.logging, behind slf4j): time, level, logger, message. */
final class Logging {
  private Logging() {}

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
            .append(r.getInstant()).append(' ')
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
