package io.bazelcache.config;

/** The value type of an {@link Option}; decides how text and YAML values are converted. */
public enum OptionType {
  /** Free text (paths, URLs, names). */
  STRING("string"),
  /** true/false (flags and env also accept Go's 1, t, T, TRUE, True, 0, f, F, FALSE, False). */
  BOOL("bool"),
  /** A 32-bit integer, optionally bounded by the option's min/max. */
  INT("integer"),
  /** A 64-bit integer, optionally bounded by the option's min/max. */
  LONG("integer"),
  /** A whole number of GiB, stored as the GiB count. */
  GIB("integer GiB"),
  /** A Go duration such as 15s, 1m30s or 100ms. */
  DURATION("duration"),
  /** A listener address: [host]:port or unix://path. */
  ADDRESS("address"),
  /** A listener address, or the word none to disable the listener. */
  ADDRESS_OR_NONE("address|none"),
  /** One of a fixed set of words (see the option's enum class). */
  ENUM("enum"),
  /** A YAML list of numbers. */
  NUMBER_LIST("list of numbers");

  private final String label;

  OptionType(String label) {
    this.label = label;
  }

  /** A short human label for docs. */
  public String label() {
    return label;
  }
}
