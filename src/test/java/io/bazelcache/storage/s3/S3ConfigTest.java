package io.bazelcache.storage.s3;

import static org.assertj.core.api.Assertions.assertThat;

import io.bazelcache.config.Config;
import io.bazelcache.config.ConfigLoader;
import io.bazelcache.storage.layers.S3Layers;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The deployment's configuration maps onto the S3 options and layer options. */
class S3ConfigTest {

  @Test
  void deploymentConfigMapsOntoS3Options() throws Exception {
    Path yaml = Path.of(S3ConfigTest.class.getResource("/config/deployment-config.yaml").toURI());
    Config c = ConfigLoader.load(new String[] {"--config_file=" + yaml},
        Map.of("BAZEL_REMOTE_S3_ACCESS_KEY_ID", "AK", "BAZEL_REMOTE_S3_SECRET_ACCESS_KEY", "SK", "HOME", "/root"),
        false);
    S3Options o = S3Config.options(c.s3Proxy().orElseThrow(), true, Path.of("/data/tmp"));
    assertThat(o.endpoint()).isEqualTo("minio.attic-cache.svc.cluster.local:9000");
    assertThat(o.endpointUrl()).isEqualTo("http://minio.attic-cache.svc.cluster.local:9000");
    assertThat(o.bucket()).isEqualTo("bazel-cache");
    assertThat(o.prefix()).isEmpty();
    assertThat(o.bucketLookup().pathStyle(o.endpoint())).isTrue();
    assertThat(o.maxIdleConns()).isEqualTo(1024);
    assertThat(o.updateTimestamps()).isTrue();
    assertThat(o.credentials()).isEqualTo(new S3Options.Credentials.AccessKey("AK", "SK", null));
    assertThat(o.credentials().toString()).doesNotContain("SK");
    assertThat(o.region()).isEqualTo("us-east-1");

    S3Layers.Options l = S3Config.layerOptions(c);
    assertThat(l.numUploaders()).isEqualTo(100);
    assertThat(l.maxQueuedUploads()).isEqualTo(1_000_000);
    assertThat(l.maxProxyBlobSize()).isEqualTo(Long.MAX_VALUE);
  }

  @Test
  void bucketLookupAutoIsPathStyleExceptForAmazon() {
    assertThat(S3Options.BucketLookup.AUTO.pathStyle("minio:9000")).isTrue();
    assertThat(S3Options.BucketLookup.AUTO.pathStyle("s3.eu-west-1.amazonaws.com")).isFalse();
    assertThat(S3Options.BucketLookup.AUTO.pathStyle("")).isFalse();
    assertThat(S3Options.BucketLookup.DNS.pathStyle("minio:9000")).isFalse();
    assertThat(S3Options.BucketLookup.PATH.pathStyle("s3.amazonaws.com")).isTrue();
  }
}
