package io.bazelcache.storage.s3;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;

/**
 * Everything {@link S3Store} needs, in bazel-remote's terms ({@code s3_proxy.*}), plus the client
 * timeouts that bound how long a miss can take when S3 is unreachable or slow.
 *
 * @param endpoint {@code host[:port]} as in bazel-remote (no scheme; {@code disable_ssl} picks http);
 *     a value with a scheme is used as given. Empty means AWS's regional endpoint.
 * @param bucket the bucket (required)
 * @param prefix optional key prefix; joined with '/' like Go's {@code path.Join}
 * @param region signing region; empty means {@code us-east-1} (what MinIO accepts by default)
 * @param disableSsl use http instead of https
 * @param bucketLookup auto, dns or path; see {@link BucketLookup#pathStyle(String)}
 * @param maxIdleConns size of the HTTP connection pool (bazel-remote documents 1024 as the default)
 * @param credentials how requests are signed
 * @param updateTimestamps after each S3 GET hit, copy the object onto itself to refresh its mtime
 * @param zstd storage_mode zstd: CAS objects live at {@code cas.v2/} in the casblob format;
 *     otherwise at {@code cas/}, raw
 * @param connectTimeout TCP connect timeout
 * @param requestTimeout bound on one request attempt (and on socket reads while streaming a body)
 * @param maxAttempts attempts per request including the first (SDK retries for 5xx, throttling, I/O)
 * @param tempDir where downloaded objects are spooled before they are verified (same disk as the
 *     cache, ideally); the store deletes its own leftover files there at startup, so give each store
 *     its own directory
 */
public record S3Options(
    String endpoint,
    String bucket,
    String prefix,
    String region,
    boolean disableSsl,
    BucketLookup bucketLookup,
    int maxIdleConns,
    Credentials credentials,
    boolean updateTimestamps,
    boolean zstd,
    Duration connectTimeout,
    Duration requestTimeout,
    int maxAttempts,
    Path tempDir) {

  public static final int DEFAULT_MAX_IDLE_CONNS = 1024;
  public static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(5);
  public static final Duration DEFAULT_REQUEST_TIMEOUT = Duration.ofSeconds(30);
  public static final int DEFAULT_MAX_ATTEMPTS = 3;

  public S3Options {
    if (bucket == null || bucket.isBlank()) {
      throw new IllegalArgumentException("s3_proxy.bucket is required");
    }
    endpoint = endpoint == null ? "" : endpoint.trim();
    prefix = prefix == null ? "" : prefix;
    region = region == null || region.isBlank() ? "us-east-1" : region;
    bucketLookup = bucketLookup == null ? BucketLookup.AUTO : bucketLookup;
    maxIdleConns = maxIdleConns <= 0 ? DEFAULT_MAX_IDLE_CONNS : maxIdleConns;
    if (credentials == null) {
      throw new IllegalArgumentException("s3_proxy.auth_method is required");
    }
    connectTimeout = connectTimeout == null ? DEFAULT_CONNECT_TIMEOUT : connectTimeout;
    requestTimeout = requestTimeout == null ? DEFAULT_REQUEST_TIMEOUT : requestTimeout;
    maxAttempts = maxAttempts <= 0 ? DEFAULT_MAX_ATTEMPTS : maxAttempts;
    tempDir = tempDir == null ? Path.of(System.getProperty("java.io.tmpdir")) : tempDir;
  }

  /** Options with the defaults for everything but the essentials; use the {@code with*} methods to adjust. */
  public static S3Options of(String endpoint, String bucket, Credentials credentials) {
    return new S3Options(endpoint, bucket, "", "", false, BucketLookup.AUTO, 0, credentials, false, true,
        null, null, 0, null);
  }

  public S3Options withPrefix(String p) {
    return new S3Options(endpoint, bucket, p, region, disableSsl, bucketLookup, maxIdleConns, credentials,
        updateTimestamps, zstd, connectTimeout, requestTimeout, maxAttempts, tempDir);
  }

  public S3Options withDisableSsl(boolean v) {
    return new S3Options(endpoint, bucket, prefix, region, v, bucketLookup, maxIdleConns, credentials,
        updateTimestamps, zstd, connectTimeout, requestTimeout, maxAttempts, tempDir);
  }

  public S3Options withBucketLookup(BucketLookup v) {
    return new S3Options(endpoint, bucket, prefix, region, disableSsl, v, maxIdleConns, credentials,
        updateTimestamps, zstd, connectTimeout, requestTimeout, maxAttempts, tempDir);
  }

  public S3Options withZstd(boolean v) {
    return new S3Options(endpoint, bucket, prefix, region, disableSsl, bucketLookup, maxIdleConns, credentials,
        updateTimestamps, v, connectTimeout, requestTimeout, maxAttempts, tempDir);
  }

  public S3Options withUpdateTimestamps(boolean v) {
    return new S3Options(endpoint, bucket, prefix, region, disableSsl, bucketLookup, maxIdleConns, credentials,
        v, zstd, connectTimeout, requestTimeout, maxAttempts, tempDir);
  }

  public S3Options withTimeouts(Duration connect, Duration request, int attempts) {
    return new S3Options(endpoint, bucket, prefix, region, disableSsl, bucketLookup, maxIdleConns, credentials,
        updateTimestamps, zstd, connect, request, attempts, tempDir);
  }

  public S3Options withTempDir(Path dir) {
    return new S3Options(endpoint, bucket, prefix, region, disableSsl, bucketLookup, maxIdleConns, credentials,
        updateTimestamps, zstd, connectTimeout, requestTimeout, maxAttempts, dir);
  }

  /** The endpoint as a URI with scheme, or {@code null} for AWS's default endpoint. */
  public String endpointUrl() {
    if (endpoint.isEmpty()) {
      return null;
    }
    if (endpoint.contains("://")) {
      return endpoint;
    }
    return (disableSsl ? "http://" : "https://") + endpoint;
  }

  /** {@code s3_proxy.bucket_lookup_type}. */
  public enum BucketLookup {
    AUTO,
    DNS,
    PATH;

    public static BucketLookup parse(String s) {
      if (s == null || s.isBlank()) {
        return AUTO;
      }
      return switch (s.trim().toLowerCase(Locale.ROOT)) {
        case "auto" -> AUTO;
        case "dns" -> DNS;
        case "path" -> PATH;
        default -> throw new IllegalArgumentException("s3_proxy.bucket_lookup_type must be auto, dns or path: " + s);
      };
    }

    /**
     * Whether requests use path-style URLs ({@code http://host/bucket/key}). {@code auto} follows
     * minio-go: virtual-host style for Amazon endpoints, path style for anything else (MinIO, S3Proxy).
     */
    public boolean pathStyle(String endpoint) {
      return switch (this) {
        case PATH -> true;
        case DNS -> false;
        case AUTO -> !(endpoint == null || endpoint.isEmpty() || endpoint.contains("amazonaws.com"));
      };
    }
  }

  /** {@code s3_proxy.auth_method} and its keys. */
  public sealed interface Credentials {

    /** {@code access_key}: static keys, with an optional session token. */
    record AccessKey(String accessKeyId, String secretAccessKey, String sessionToken) implements Credentials {
      public AccessKey {
        if (accessKeyId == null || accessKeyId.isEmpty()) {
          throw new IllegalArgumentException("missing s3_proxy.access_key_id");
        }
        if (secretAccessKey == null || secretAccessKey.isEmpty()) {
          throw new IllegalArgumentException("missing s3_proxy.secret_access_key");
        }
      }

      @Override
      public String toString() {
        return "AccessKey[" + accessKeyId + ", secret redacted]";
      }
    }

    /** {@code iam_role}: the instance-profile (IMDS) credentials; {@code endpoint} overrides the IMDS address. */
    record IamRole(String endpoint) implements Credentials {}

    /** {@code aws_credentials_file}: a shared credentials file and profile (defaults: ~/.aws/credentials, "default"). */
    record CredentialsFile(Path file, String profile) implements Credentials {}

    /** Unsigned requests ({@code signature_type: anonymous}). */
    record Anonymous() implements Credentials {}
  }
}
