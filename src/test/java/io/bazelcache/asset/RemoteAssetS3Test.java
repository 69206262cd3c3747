package io.bazelcache.asset;

import static org.assertj.core.api.Assertions.assertThat;

import build.bazel.remote.asset.v1.FetchBlobRequest;
import build.bazel.remote.asset.v1.FetchBlobResponse;
import build.bazel.remote.asset.v1.Qualifier;
import io.bazelcache.config.Config;
import io.bazelcache.config.ConfigLoader;
import io.bazelcache.server.CacheServer;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.s3.S3Stats;
import io.bazelcache.storage.s3.S3Testing;
import io.bazelcache.testing.S3ProxyProcess;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two replicas (separate disk directories) on one S3 bucket (a real S3Proxy), each built from the
 * configuration as the server builds it: what one fetched, the other serves without the origin, and exports.
 */
class RemoteAssetS3Test {
  @TempDir Path tmp;

  Config config(String bucket, String name) throws Exception {
    S3ProxyProcess s3 = S3ProxyProcess.shared();
    return ConfigLoader.load(new String[] {
        "--dir=" + tmp.resolve(name), "--max_size=1",
        "--s3.endpoint=" + s3.endpoint(), "--s3.bucket=" + bucket, "--s3.disable_ssl",
        "--s3.bucket_lookup_type=path", "--s3.auth_method=access_key",
        "--s3.access_key_id=" + S3ProxyProcess.ACCESS_KEY, "--s3.secret_access_key=" + S3ProxyProcess.SECRET_KEY,
    }, Map.of("HOME", tmp.toString()));
  }

  @Test
  void whatOneReplicaFetchedTheOtherServesAndExports() throws Exception {
    String bucket = S3Testing.newBucketName();
    S3Testing.createBucket(S3Testing.rawClient(S3ProxyProcess.shared()), bucket);
    byte[] a = new byte[20_000];
    new Random(1).nextBytes(a);
    byte[] b = "unpinned content".getBytes(StandardCharsets.UTF_8);
    FetchBlobRequest pinned;
    FetchBlobRequest unpinned;
    try (Origin origin = new Origin()) {
      origin.files.put("/a.tar.gz", a);
      origin.files.put("/b.txt", b);
      pinned = FetchBlobRequest.newBuilder().addUris(origin.url("/a.tar.gz"))
          .addQualifiers(Qualifier.newBuilder().setName("checksum.sri").setValue(RemoteAssetTest.sri("sha512", a)))
          .addQualifiers(Qualifier.newBuilder().setName("bazel.canonical_id").setValue(origin.url("/a.tar.gz")))
          .build();
      unpinned = FetchBlobRequest.newBuilder().addUris(origin.url("/b.txt")).build();
      Config replicaA = config(bucket, "a");
      try (BlobStore store = CacheServer.openStore(replicaA, new S3Stats());
          RemoteAsset ra = new RemoteAsset(store, AssetOptions.of(tmp.resolve("scratch-a"), replicaA.maxBlobSize()))) {
        assertThat(ra.fetchBlob(pinned).getStatus().getCode()).isZero();
        assertThat(ra.fetchBlob(unpinned).getStatus().getCode()).isZero();
      } // closing drains the write-behind uploads to S3
    }
    Config replicaB = config(bucket, "b");
    try (BlobStore store = CacheServer.openStore(replicaB, new S3Stats());
        RemoteAsset rb = new RemoteAsset(store, AssetOptions.of(tmp.resolve("scratch-b"), replicaB.maxBlobSize()))) {
      FetchBlobResponse ra = rb.fetchBlob(pinned);
      FetchBlobResponse rbb = rb.fetchBlob(unpinned);
      assertThat(ra.getStatus().getCode()).isZero();
      assertThat(rbb.getStatus().getCode()).isZero();
      ByteArrayOutputStream log = new ByteArrayOutputStream();
      int rc = new AssetsCommand(store, new PrintStream(log, true, StandardCharsets.UTF_8))
          .exportRepositoryCache(tmp.resolve("export"));
      assertThat(rc).as(log.toString(StandardCharsets.UTF_8)).isZero();
    }
    Path entry = tmp.resolve("export/content_addressable/sha256").resolve(AssetsCommandTest.sha256(a));
    assertThat(Files.readAllBytes(entry.resolve("file"))).isEqualTo(a);
    assertThat(entry.resolve("id-" + AssetIndex.canonicalIdHash(pinned.getUris(0)))).exists();
    assertThat(Files.readAllBytes(tmp.resolve("export/content_addressable/sha256")
        .resolve(AssetsCommandTest.sha256(b)).resolve("file"))).isEqualTo(b);
  }
}
