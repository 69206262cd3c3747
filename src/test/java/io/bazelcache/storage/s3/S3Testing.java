package io.bazelcache.storage.s3;

import io.bazelcache.testing.S3ProxyProcess;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.UUID;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.http.apache.ApacheHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.NoSuchKeyException;

/** Helpers for tests against a real S3Proxy: options, a fresh bucket, and a raw client to inspect it. */
public final class S3Testing {
  private S3Testing() {}

  public static String newBucketName() {
    return "b-" + UUID.randomUUID().toString().substring(0, 12).toLowerCase(Locale.ROOT);
  }

  /** Options for our store against {@code server}: path-style, http, short timeouts. */
  public static S3Options options(S3ProxyProcess server, String bucket, Path tempDir) {
    return options(server.endpoint(), bucket, tempDir);
  }

  public static S3Options options(String endpoint, String bucket, Path tempDir) {
    return S3Options.of(endpoint, bucket,
            new S3Options.Credentials.AccessKey(S3ProxyProcess.ACCESS_KEY, S3ProxyProcess.SECRET_KEY, null))
        .withDisableSsl(true)
        .withBucketLookup(S3Options.BucketLookup.PATH)
        .withTimeouts(Duration.ofSeconds(2), Duration.ofSeconds(5), 2)
        .withTempDir(tempDir);
  }

  /**
   * An independent client (its own client and connection pool) for setting up and
   * inspecting the bucket, like another tool (or bazel-remote) would.
   */
  public static S3Client rawClient(S3ProxyProcess server) {
    return S3Client.builder()
        .httpClient(ApacheHttpClient.create())
        .endpointOverride(URI.create("http://" + server.endpoint()))
        .region(Region.US_EAST_1)
        .forcePathStyle(true)
        .requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
        .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED)
        .credentialsProvider(StaticCredentialsProvider.create(
            AwsBasicCredentials.create(S3ProxyProcess.ACCESS_KEY, S3ProxyProcess.SECRET_KEY)))
        .build();
  }

  public static void createBucket(S3Client raw, String bucket) {
    raw.createBucket(b -> b.bucket(bucket));
  }

  public static byte[] getObject(S3Client raw, String bucket, String key) {
    try {
      return raw.getObjectAsBytes(b -> b.bucket(bucket).key(key)).asByteArray();
    } catch (NoSuchKeyException e) {
      return null;
    }
  }

  public static void putObject(S3Client raw, String bucket, String key, byte[] data) {
    raw.putObject(b -> b.bucket(bucket).key(key), RequestBody.fromBytes(data));
  }
}
