package io.bazelcache.storage;

/**
 * The namespaces of the cache, as in bazel-remote: the action cache, the content-addressable store, and
 * RAW (HTTP action-cache entries stored without validation when {@code disable_http_ac_validation} is set).
 */
public enum Kind {
  AC("ac"),
  CAS("cas"),
  RAW("raw");

  private final String dirName;

  Kind(String dirName) {
    this.dirName = dirName;
  }

  /** Lowercase name, used in paths, S3 keys and metric labels. */
  public String dirName() {
    return dirName;
  }

  /** Whether content must hash to the key (only CAS; AC and RAW map a key to arbitrary bytes). */
  public boolean isContentAddressed() {
    return this == CAS;
  }
}
