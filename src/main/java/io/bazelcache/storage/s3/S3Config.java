package io.bazelcache.storage.s3;

import io.bazelcache.config.Config;
import io.bazelcache.storage.layers.S3Layers;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Turns the parsed configuration ({@code s3_proxy.*}, the upload and proxy limits) into S3 settings. */
public final class S3Config {
  private static final Logger log = LoggerFactory.getLogger(S3Config.class);

  private S3Config() {}

  /**
   * The client settings for {@code s3}. {@code signature_type} v2 is not offered by the AWS SDK v2:
   * requests are signed with v4, which every S3 implementation that accepts v2 also accepts;
   * {@code anonymous} sends unsigned requests.
   *
   * @param zstd whether {@code storage_mode} is zstd (CAS objects at {@code cas.v2/}, casblob format)
   * @param tempDir where downloads are spooled before verification (put it on the cache's disk)
   */
  public static S3Options options(Config.S3Proxy s, boolean zstd, Path tempDir) {
    S3Options.Credentials creds;
    if (s.signatureType() == Config.SignatureType.ANONYMOUS) {
      creds = new S3Options.Credentials.Anonymous();
    } else {
      if (s.signatureType() == Config.SignatureType.V2) {
        log.warn("s3_proxy.signature_type v2 is not supported by the AWS SDK; signing with v4");
      }
      creds = switch (s.authMethod()) {
        case ACCESS_KEY -> new S3Options.Credentials.AccessKey(
            s.accessKeyId(), s.secretAccessKey(), emptyToNull(s.sessionToken()));
        case IAM_ROLE -> new S3Options.Credentials.IamRole(emptyToNull(s.iamRoleEndpoint()));
        case AWS_CREDENTIALS_FILE -> new S3Options.Credentials.CredentialsFile(
            emptyToNull(s.awsSharedCredentialsFile()) == null ? null : Path.of(s.awsSharedCredentialsFile()),
            emptyToNull(s.awsProfile()));
      };
    }
    S3Options.BucketLookup lookup = switch (s.bucketLookupType()) {
      case AUTO -> S3Options.BucketLookup.AUTO;
      case DNS -> S3Options.BucketLookup.DNS;
      case PATH -> S3Options.BucketLookup.PATH;
    };
    return new S3Options(s.endpoint(), s.bucket(), s.prefix(), s.region(), s.disableSsl(), lookup,
        s.maxIdleConns(), creds, s.updateTimestamps(), zstd, null, null, 0, tempDir);
  }

  /** The layer settings: {@code max_proxy_blob_size}, {@code num_uploaders}, {@code max_queued_uploads}. */
  public static S3Layers.Options layerOptions(Config c) {
    return S3Layers.Options.defaults()
        .withMaxProxyBlobSize(c.maxProxyBlobSize())
        .withUploads(c.numUploaders(), c.maxQueuedUploads());
  }

  private static String emptyToNull(String s) {
    return s == null || s.isEmpty() ? null : s;
  }
}
