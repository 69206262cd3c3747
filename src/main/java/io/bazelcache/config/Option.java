package io.bazelcache.config;

import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * One row of the option table ({@link Options#ALL}): everything bazel-cache knows about a
 * configuration key. The command line, environment lookup, YAML mapping, {@code --help} and
 * docs/CONFIG.md are all derived from these rows.
 *
 * @param key the YAML path, for example {@code max_size} or {@code s3_proxy.access_key_id}; used to
 *     name the option in every message
 * @param status whether this build implements the option
 * @param type the value type
 * @param flags command-line names including dashes, preferred name first (may be empty)
 * @param envVars environment variables, highest priority first (may be empty)
 * @param inYaml whether the key may appear in the YAML file
 * @param defaultValue the typed default, or null when the option is unset by default
 * @param defaultText how docs and help show the default
 * @param enumClass for {@link OptionType#ENUM}, the enum whose constants are the allowed values
 * @param min inclusive lower bound for numeric types, or null
 * @param max inclusive upper bound for numeric types, or null
 * @param deprecated whether bazel-remote marks the option deprecated
 * @param help one-paragraph description
 */
public record Option(
    String key,
    Status status,
    OptionType type,
    List<String> flags,
    List<String> envVars,
    boolean inYaml,
    Object defaultValue,
    String defaultText,
    Class<? extends Enum<?>> enumClass,
    Long min,
    Long max,
    boolean deprecated,
    String help) {

  public Option {
    flags = List.copyOf(flags);
    envVars = List.copyOf(envVars);
  }

  /** The nested YAML block this key lives in ({@code s3_proxy}), or null for top-level keys. */
  public String block() {
    int dot = key.indexOf('.');
    return dot < 0 ? null : key.substring(0, dot);
  }

  /** The key inside its block ({@code access_key_id} for {@code s3_proxy.access_key_id}). */
  public String leafName() {
    return key.substring(key.indexOf('.') + 1);
  }

  /** The allowed spellings of an enum option, in declaration order; empty for other types. */
  public List<String> choices() {
    if (enumClass == null) {
      return List.of();
    }
    return Arrays.stream(enumClass.getEnumConstants()).map(e -> ((ConfigEnum) e).configName()).toList();
  }

  /**
   * Converts text from a flag or environment variable (or a YAML scalar already checked for
   * kind) to the typed value. Throws IllegalArgumentException whose message is the reason only.
   */
  public Object parseText(String raw) {
    String text = raw.strip();
    return switch (type) {
      case STRING -> raw;
      case BOOL -> parseBool(text);
      case INT -> (int) bounded(parseLong(text));
      case LONG, GIB -> bounded(parseLong(text));
      case DURATION -> {
        Duration d;
        try {
          d = GoDuration.parse(text);
        } catch (IllegalArgumentException e) {
          throw new IllegalArgumentException(
              "invalid duration '" + text + "': " + e.getMessage() + "; write it like 15s, 1m30s or 100ms");
        }
        if (d.isNegative()) {
          throw new IllegalArgumentException("must not be negative, got " + text);
        }
        yield d;
      }
      case ADDRESS -> parseAddress(text);
      case ADDRESS_OR_NONE -> text.equals("none") ? Optional.empty() : Optional.of(parseAddress(text));
      case ENUM -> parseEnum(text);
      case NUMBER_LIST -> throw new IllegalArgumentException("can only be set in the YAML file");
    };
  }

  /** Formats a typed value the way it would be written in configuration. */
  public String format(Object value) {
    if (value == null) {
      return "";
    }
    return switch (value) {
      case Duration d -> GoDuration.format(d);
      case ConfigEnum e -> e.configName();
      case Optional<?> o -> o.map(Object::toString).orElse("none");
      case List<?> l -> l.stream().map(Option::formatNumber).collect(Collectors.joining(", ", "[", "]"));
      default -> value.toString();
    };
  }

  private static String formatNumber(Object n) {
    if (n instanceof Double d && d == Math.rint(d) && !Double.isInfinite(d)) {
      return Long.toString(d.longValue());
    }
    return n.toString();
  }

  private static ListenAddress parseAddress(String text) {
    try {
      return ListenAddress.parse(text);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("invalid address '" + text + "': " + e.getMessage());
    }
  }

  private Object parseEnum(String text) {
    for (Enum<?> e : enumClass.getEnumConstants()) {
      if (((ConfigEnum) e).configName().equals(text)) {
        return e;
      }
    }
    throw new IllegalArgumentException(
        "unknown value '" + text + "', must be one of " + String.join(", ", choices()));
  }

  private long bounded(long v) {
    String what = type == OptionType.GIB ? "a whole number of GiB" : "an integer";
    boolean range = min != null && max != null && max <= 1_000_000_000L;
    if (min != null && v < min) {
      throw new IllegalArgumentException("must be " + what
          + (range ? " from " + min + " to " + max : " of at least " + min) + ", got " + v);
    }
    if (max != null && v > max) {
      throw new IllegalArgumentException("must be " + what
          + (range ? " from " + min + " to " + max : " of at most " + max) + ", got " + v);
    }
    return v;
  }

  private long parseLong(String text) {
    try {
      return Long.parseLong(text.startsWith("+") ? text.substring(1) : text);
    } catch (NumberFormatException e) {
      String what = type == OptionType.GIB ? "a whole number of GiB" : "an integer";
      throw new IllegalArgumentException("must be " + what + ", got '" + text + "'");
    }
  }

  static boolean parseBool(String text) {
    return switch (text) {
      case "1", "t", "T", "true", "TRUE", "True" -> true;
      case "0", "f", "F", "false", "FALSE", "False" -> false;
      default -> throw new IllegalArgumentException("must be true or false, got '" + text + "'");
    };
  }

  /** The preferred flag, or null for YAML-only options. */
  public String flag() {
    return flags.isEmpty() ? null : flags.get(0);
  }

  /** The type as shown in docs, for example {@code duration} or {@code zstd|uncompressed}. */
  String typeLabel() {
    return type == OptionType.ENUM ? String.join("|", choices()) : type.label();
  }
}
