package io.bazelcache.asset;

import java.nio.file.Path;
import java.time.Duration;

/**
 * Settings of the Remote Asset services.
 *
 * @param scratchDir where downloads are written before they are verified and stored
 * @param maxBlobSize larger downloads are abandoned (RESOURCE_EXHAUSTED in the response status)
 * @param defaultTimeout the time a whole FetchBlob may spend downloading when the request sets no
 *     (shorter) {@code timeout}
 * @param connectTimeout per connection attempt
 */
public record AssetOptions(Path scratchDir, long maxBlobSize, Duration defaultTimeout, Duration connectTimeout) {

  public static AssetOptions of(Path scratchDir, long maxBlobSize) {
    return new AssetOptions(scratchDir, maxBlobSize, Duration.ofMinutes(10), Duration.ofSeconds(30));
  }

  public AssetOptions withDefaultTimeout(Duration d) {
    return new AssetOptions(scratchDir, maxBlobSize, d, connectTimeout);
  }
}
