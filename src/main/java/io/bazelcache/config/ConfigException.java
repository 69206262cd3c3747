package io.bazelcache.config;

/**
 * A configuration problem. The message is a single line that starts with the offending key (or the
 * flag/variable when no key applies), suitable for printing as {@code bazel-cache: <message>}.
 */
public final class ConfigException extends Exception {
  private static final long serialVersionUID = 1L;

  private final String key;

  public ConfigException(String key, String message) {
    super(oneLine(message));
    this.key = key;
  }

  /** The YAML-style key (for example {@code s3_proxy.access_key_id}) the problem is about. */
  public String key() {
    return key;
  }

  private static String oneLine(String message) {
    return message.replaceAll("[\\r\\n]+", " ").strip();
  }
}
