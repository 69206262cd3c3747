package io.bazelcache.config;

/** Whether this build of bazel-cache implements an option. */
public enum Status {
  /** The option is implemented and honoured. */
  SUPPORTED,
  /**
   * The option is parsed and validated, but the feature is not built yet: setting it to anything
   * other than its default is refused with {@code not supported yet: KEY}.
   */
  NOT_YET
}
