package io.bazelcache.e2e;

import java.net.URI;

/** A running HTTP remote cache that Bazel can use with {@code --remote_cache=<baseUri>}. */
interface HttpCache extends AutoCloseable {
  /** For example {@code http://127.0.0.1:18080} (no trailing slash). */
  URI baseUri();

  @Override
  void close();
}
