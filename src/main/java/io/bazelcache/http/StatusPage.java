package io.bazelcache.http;

import io.bazelcache.storage.StoreStats;

/**
 * The {@code /status} document, with bazel-remote's field names and layout (Go's json.Encoder with a one-space
 * indent, trailing newline). {@code NumGoroutines} carries the JVM's live thread count, which is also given as
 * {@code NumThreads}.
 */
final class StatusPage {
  private StatusPage() {}

  static String render(StoreStats s, long serverTimeSeconds, String gitCommit, String gitTags, int threads) {
    StringBuilder sb = new StringBuilder(256);
    sb.append("{\n");
    sb.append(" \"CurrSize\": ").append(s.currentSize()).append(",\n");
    sb.append(" \"UncompressedSize\": ").append(s.uncompressedSize()).append(",\n");
    sb.append(" \"ReservedSize\": ").append(s.reservedSize()).append(",\n");
    sb.append(" \"MaxSize\": ").append(s.maxSize()).append(",\n");
    sb.append(" \"NumFiles\": ").append(s.numFiles()).append(",\n");
    sb.append(" \"ServerTime\": ").append(serverTimeSeconds).append(",\n");
    sb.append(" \"GitCommit\": ").append(quote(gitCommit)).append(",\n");
    sb.append(" \"GitTags\": ").append(quote(gitTags)).append(",\n");
    sb.append(" \"NumGoroutines\": ").append(threads).append(",\n");
    sb.append(" \"NumThreads\": ").append(threads).append('\n');
    sb.append("}\n");
    return sb.toString();
  }

  /** A JSON string literal, escaping as Go's encoder does (including {@code <}, {@code >} and {@code &}). */
  static String quote(String s) {
    StringBuilder sb = new StringBuilder(s.length() + 2).append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> sb.append("\\\"");
        case '\\' -> sb.append("\\\\");
        case '\n' -> sb.append("\\n");
        case '\r' -> sb.append("\\r");
        case '\t' -> sb.append("\\t");
        default -> {
          if (c < 0x20 || c == '<' || c == '>' || c == '&' || c == '\u2028' || c == '\u2029') {
            sb.append(String.format("\\u%04x", (int) c));
          } else {
            sb.append(c);
          }
        }
      }
    }
    return sb.append('"').toString();
  }
}
