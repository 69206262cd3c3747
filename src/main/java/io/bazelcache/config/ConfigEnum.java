package io.bazelcache.config;

/** An enum whose constants are spelled in configuration as {@link #configName()}. */
public interface ConfigEnum {
  /** The exact spelling accepted in YAML, flags and environment variables. */
  String configName();
}
