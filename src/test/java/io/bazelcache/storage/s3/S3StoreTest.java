package io.bazelcache.storage.s3;

import static io.bazelcache.storage.s3.CasblobVectors.MIB;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.BlobWriter;
import io.bazelcache.storage.DigestMismatchException;
import io.bazelcache.storage.Kind;
import io.bazelcache.storage.s3.S3Stats.Operation;
import io.bazelcache.storage.s3.S3Stats.Status;
import io.bazelcache.testing.S3ProxyProcess;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.S3Object;

class S3StoreTest {
  private static S3ProxyProcess server;
  private static S3Client raw;

  @TempDir Path tmp;
  private String bucket;
  private final S3Stats stats = new S3Stats();
  private S3Store store;

  @BeforeAll
  static void startServer() throws IOException {
    server = S3ProxyProcess.shared();
    raw = S3Testing.rawClient(server);
  }

  @BeforeEach
  void newBucket() {
    bucket = S3Testing.newBucketName();
    S3Testing.createBucket(raw, bucket);
  }

  @AfterEach
  void closeStore() {
    if (store != null) {
      store.close();
    }
  }

  private S3Store open(S3Options o) throws IOException {
    if (store != null) {
      store.close();
    }
    store = new S3Store(o, stats);
    return store;
  }

  private S3Options opts() {
    return S3Testing.options(server, bucket, tmp);
  }

  private static BlobKey cas(byte[] data) {
    return BlobKey.cas(Digest.of(DigestFunction.SHA256, data));
  }

  private static byte[] read(Blob b) throws IOException {
    try (b) {
      return b.readAllBytes();
    }
  }

  @Test
  void objectKeysAreBazelRemotesByteForByte() throws IOException {
    String h = "0a" + "1".repeat(62);
    BlobKey cas = new BlobKey(Kind.CAS, DigestFunction.SHA256, h);
    BlobKey ac = new BlobKey(Kind.AC, DigestFunction.SHA256, h);
    BlobKey rawKey = new BlobKey(Kind.RAW, DigestFunction.SHA256, h);

    S3Store zstd = open(opts());
    assertThat(zstd.objectKey(cas)).isEqualTo("cas.v2/0a/" + h);
    assertThat(zstd.objectKey(ac)).isEqualTo("ac/0a/" + h);
    assertThat(zstd.objectKey(rawKey)).isEqualTo("raw/0a/" + h);

    assertThat(open(opts().withZstd(false)).objectKey(cas)).isEqualTo("cas/0a/" + h);
    assertThat(open(opts().withPrefix("ci")).objectKey(cas)).isEqualTo("ci/cas.v2/0a/" + h);
    // path.Join semantics: trailing and doubled slashes collapse.
    assertThat(open(opts().withPrefix("ci/")).objectKey(ac)).isEqualTo("ci/ac/0a/" + h);
    assertThat(open(opts().withPrefix("a//b/./")).objectKey(ac)).isEqualTo("a/b/ac/0a/" + h);

    // BLAKE3 (unknown to bazel-remote) gets its own segment, so equal hex strings never collide.
    S3Store s = open(opts().withPrefix("ci"));
    assertThat(s.objectKey(new BlobKey(Kind.CAS, DigestFunction.BLAKE3, h))).isEqualTo("ci/blake3/cas.v2/0a/" + h);
    assertThat(s.objectKey(new BlobKey(Kind.AC, DigestFunction.BLAKE3, h))).isEqualTo("ci/blake3/ac/0a/" + h);
  }

  @Test
  void zstdModeStoresCasAsCasblobUnderCasV2() throws IOException {
    S3Store s = open(opts().withPrefix("pfx"));
    byte[] data = CasblobVectors.data(2 * MIB + MIB / 2 + 17, 1); // three chunks, the last partial
    BlobKey key = cas(data);
    s.put(key, data);

    String k = "pfx/cas.v2/" + key.hash().substring(0, 2) + "/" + key.hash();
    byte[] object = S3Testing.getObject(raw, bucket, k);
    assertThat(object).as("object at %s", k).isNotNull();
    assertThat(CasblobVectors.checkAndDecode(object, data)).isEqualTo(data);
    assertThat(object.length).isLessThan(data.length);
    assertThat(S3Testing.getObject(raw, bucket, "pfx/cas/" + key.hash().substring(0, 2) + "/" + key.hash()))
        .isNull();

    assertThat(read(s.get(key))).isEqualTo(data);
    assertThat(s.contains(key)).isTrue();
    assertThat(stats.requests(Operation.PUT, Status.OK)).isEqualTo(1);
    assertThat(stats.requests(Operation.GET, Status.OK)).isEqualTo(1);
    assertThat(stats.requests(Operation.HEAD, Status.OK)).isEqualTo(1);
    assertThat(stats.cacheHits.get()).isEqualTo(1);
  }

  @Test
  void uncompressedModeStoresRawBytesUnderCas() throws IOException {
    S3Store s = open(opts().withZstd(false));
    byte[] data = CasblobVectors.data(300_000, 2);
    BlobKey key = cas(data);
    s.put(key, data);
    assertThat(S3Testing.getObject(raw, bucket, "cas/" + key.hash().substring(0, 2) + "/" + key.hash()))
        .isEqualTo(data);
    assertThat(read(s.get(key))).isEqualTo(data);
  }

  @Test
  void acAndRawEntriesAreStoredAsIs() throws IOException {
    S3Store s = open(opts());
    byte[] value = "an ActionResult, or anything for RAW".getBytes(StandardCharsets.UTF_8);
    String h = Digest.of(DigestFunction.SHA256, "action".getBytes(StandardCharsets.UTF_8)).hash();
    s.put(new BlobKey(Kind.AC, DigestFunction.SHA256, h), value);
    s.put(new BlobKey(Kind.RAW, DigestFunction.SHA256, h), "raw".getBytes(StandardCharsets.UTF_8));
    assertThat(S3Testing.getObject(raw, bucket, "ac/" + h.substring(0, 2) + "/" + h)).isEqualTo(value);
    assertThat(S3Testing.getObject(raw, bucket, "raw/" + h.substring(0, 2) + "/" + h))
        .isEqualTo("raw".getBytes(StandardCharsets.UTF_8));
    assertThat(read(s.get(new BlobKey(Kind.AC, DigestFunction.SHA256, h)))).isEqualTo(value);
  }

  @Test
  void readsObjectsAsBazelRemoteWritesThem() throws IOException {
    S3Store s = open(opts());
    byte[] big = CasblobVectors.data(2 * MIB + 5, 3);
    byte[] small = "small blob".getBytes(StandardCharsets.UTF_8);
    byte[] identity = CasblobVectors.data(MIB + 100, 4);
    S3Testing.putObject(raw, bucket, s.objectKey(cas(big)), CasblobVectors.build(big, MIB, 1, 3));
    S3Testing.putObject(raw, bucket, s.objectKey(cas(small)), CasblobVectors.build(small, MIB, 1, 1));
    S3Testing.putObject(raw, bucket, s.objectKey(cas(identity)), CasblobVectors.build(identity, MIB, 0, 0));

    assertThat(read(s.get(cas(big)))).isEqualTo(big);
    assertThat(read(s.get(cas(small)))).isEqualTo(small);
    assertThat(read(s.get(cas(identity)))).isEqualTo(identity);
    assertThat(stats.corruptObjects.get()).isZero();
  }

  @Test
  void objectsThatDoNotMatchTheirDigestAreMisses() throws IOException {
    S3Store s = open(opts());
    byte[] good = "the real content".getBytes(StandardCharsets.UTF_8);
    byte[] other = "something else!!".getBytes(StandardCharsets.UTF_8);
    // A well-formed casblob of the wrong content.
    S3Testing.putObject(raw, bucket, s.objectKey(cas(good)), CasblobVectors.build(other, MIB, 1, 1));
    assertThat(s.get(cas(good))).isNull();
    // Not a casblob at all.
    byte[] junk = CasblobVectors.data(1000, 5);
    S3Testing.putObject(raw, bucket, s.objectKey(cas(junk)), junk);
    assertThat(s.get(cas(junk))).isNull();
    // A truncated casblob.
    byte[] data = CasblobVectors.data(100_000, 6);
    byte[] cb = CasblobVectors.build(data, MIB, 1, 1);
    S3Testing.putObject(raw, bucket, s.objectKey(cas(data)),
        java.util.Arrays.copyOf(cb, cb.length - 10));
    assertThat(s.get(cas(data))).isNull();

    assertThat(stats.corruptObjects.get()).isEqualTo(3);
    assertThat(stats.cacheHits.get()).isZero();
    assertThat(stats.cacheMisses.get()).isEqualTo(3);

    // Uncompressed layout: raw bytes that are not the content.
    S3Store u = open(opts().withZstd(false));
    S3Testing.putObject(raw, bucket, u.objectKey(cas(good)), other);
    assertThat(u.get(cas(good))).isNull();
  }

  @Test
  void blake3AndSha256EntriesWithTheSameHexDoNotCollide() throws IOException {
    S3Store s = open(opts());
    String h = "ab" + "c".repeat(62);
    BlobKey sha = new BlobKey(Kind.AC, DigestFunction.SHA256, h);
    BlobKey b3 = new BlobKey(Kind.AC, DigestFunction.BLAKE3, h);
    s.put(sha, "sha".getBytes(StandardCharsets.UTF_8));
    s.put(b3, "blake3".getBytes(StandardCharsets.UTF_8));
    assertThat(read(s.get(sha))).isEqualTo("sha".getBytes(StandardCharsets.UTF_8));
    assertThat(read(s.get(b3))).isEqualTo("blake3".getBytes(StandardCharsets.UTF_8));
    List<String> keys = raw.listObjectsV2(b -> b.bucket(bucket)).contents().stream().map(S3Object::key).sorted().toList();
    assertThat(keys).containsExactly("ac/ab/" + h, "blake3/ac/ab/" + h);

    byte[] data = "blake3 content".getBytes(StandardCharsets.UTF_8);
    BlobKey b3cas = BlobKey.cas(Digest.of(DigestFunction.BLAKE3, data));
    s.put(b3cas, data);
    assertThat(read(s.get(b3cas))).isEqualTo(data);
    assertThat(S3Testing.getObject(raw, bucket, "blake3/cas.v2/" + b3cas.hash().substring(0, 2) + "/" + b3cas.hash()))
        .isNotNull();
  }

  @Test
  void absentEntriesAreMissesAndCounted() throws IOException {
    S3Store s = open(opts());
    BlobKey key = cas("not there".getBytes(StandardCharsets.UTF_8));
    assertThat(s.get(key)).isNull();
    assertThat(s.contains(key)).isFalse();
    assertThat(stats.requests(Operation.GET, Status.NOT_FOUND)).isEqualTo(1);
    assertThat(stats.requests(Operation.HEAD, Status.NOT_FOUND)).isEqualTo(1);
    assertThat(stats.cacheMisses.get()).isEqualTo(1);
    // The empty blob always exists and is never stored.
    BlobKey empty = BlobKey.cas(Digest.empty(DigestFunction.SHA256));
    assertThat(s.contains(empty)).isTrue();
    assertThat(read(s.get(empty))).isEmpty();
    s.put(empty, new byte[0]);
    assertThat(raw.listObjectsV2(b -> b.bucket(bucket)).contents()).isEmpty();
  }

  @Test
  void writerVerifiesBeforeUploading() throws IOException {
    S3Store s = open(opts());
    byte[] data = "content".getBytes(StandardCharsets.UTF_8);
    BlobKey wrong = cas("other".getBytes(StandardCharsets.UTF_8));
    try (BlobWriter w = s.newWriter(wrong, data.length)) {
      w.write(ByteBuffer.wrap(data));
      assertThatThrownBy(w::commit).isInstanceOf(DigestMismatchException.class);
    }
    assertThat(raw.listObjectsV2(b -> b.bucket(bucket)).contents()).isEmpty();
    assertThat(stats.requests(Operation.PUT)).isZero();
  }

  @Test
  void credentialsComeFromTheNamedProfileOfACredentialsFile() throws IOException {
    Path file = tmp.resolve("credentials");
    java.nio.file.Files.writeString(file, String.join("\n",
        "[default]",
        "aws_access_key_id = nobody",
        "aws_secret_access_key = wrong",
        "[ci]",
        "aws_access_key_id = " + S3ProxyProcess.ACCESS_KEY,
        "aws_secret_access_key = " + S3ProxyProcess.SECRET_KEY,
        ""));
    S3Options base = opts();
    S3Store s = open(new S3Options(base.endpoint(), bucket, "", "", true, S3Options.BucketLookup.PATH, 0,
        new S3Options.Credentials.CredentialsFile(file, "ci"), false, true, null, null, 0, tmp));
    byte[] data = "via a profile".getBytes(StandardCharsets.UTF_8);
    s.put(cas(data), data);
    assertThat(read(s.get(cas(data)))).isEqualTo(data);
  }

  @Test
  void rejectedCredentialsAreErrorsAndUploadsFailPermanently() throws IOException {
    S3Options base = opts();
    S3Store s = open(new S3Options(base.endpoint(), bucket, "", "", true, S3Options.BucketLookup.PATH, 0,
        new S3Options.Credentials.AccessKey(S3ProxyProcess.ACCESS_KEY, "not-the-secret", null),
        false, true, null, null, 0, tmp));
    byte[] data = "denied".getBytes(StandardCharsets.UTF_8);
    assertThat(s.contains(cas(data))).isFalse();
    assertThat(stats.requests(Operation.HEAD, Status.ERROR)).isEqualTo(1);
    assertThatThrownBy(() -> s.put(cas(data), data))
        .isInstanceOf(io.bazelcache.storage.layers.RemoteStore.PermanentFailureException.class)
        .hasMessageContaining("403");
    assertThat(s.get(cas(data))).isNull();
    assertThat(stats.requests(Operation.GET, Status.ERROR)).isEqualTo(1);
    assertThat(raw.listObjectsV2(b -> b.bucket(bucket)).contents()).isEmpty();
    // 4xx answers mean S3 is up: requests keep being sent.
    assertThat(s.available()).isTrue();
  }

  @Test
  void leftoverTemporaryFilesAreDeletedAtStartup() throws IOException {
    Path dir = tmp.resolve("own");
    java.nio.file.Files.createDirectories(dir);
    Path leftover = java.nio.file.Files.writeString(dir.resolve("s3get-123.tmp"), "partial download");
    Path foreign = java.nio.file.Files.writeString(dir.resolve("keep.txt"), "not ours");
    open(opts().withTempDir(dir));
    assertThat(leftover).doesNotExist();
    assertThat(foreign).exists();
  }

  @Test
  void accessKeysWithASessionTokenAreSessionCredentials() {
    // (S3Proxy answers 501 to x-amz-security-token, so this is checked at the provider.)
    var c = S3Store.credentialsProvider(new S3Options.Credentials.AccessKey("AK", "SK", "TOKEN")).resolveCredentials();
    assertThat(c).isInstanceOf(software.amazon.awssdk.auth.credentials.AwsSessionCredentials.class);
    assertThat(((software.amazon.awssdk.auth.credentials.AwsSessionCredentials) c).sessionToken()).isEqualTo("TOKEN");
    var plain = S3Store.credentialsProvider(new S3Options.Credentials.AccessKey("AK", "SK", null)).resolveCredentials();
    assertThat(plain.accessKeyId()).isEqualTo("AK");
    assertThat(plain).isNotInstanceOf(software.amazon.awssdk.auth.credentials.AwsSessionCredentials.class);
  }

  @Test
  void updateTimestampsCopiesTheObjectOntoItselfOnAHit() throws Exception {
    S3Store s = open(opts().withUpdateTimestamps(true));
    byte[] data = CasblobVectors.data(10_000, 7);
    BlobKey key = cas(data);
    s.put(key, data);
    byte[] before = S3Testing.getObject(raw, bucket, s.objectKey(key));
    assertThat(read(s.get(key))).isEqualTo(data);
    long deadline = System.nanoTime() + 10_000_000_000L;
    while (stats.requests(Operation.COPY) == 0 && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    assertThat(stats.requests(Operation.COPY, Status.OK)).isEqualTo(1);
    assertThat(S3Testing.getObject(raw, bucket, s.objectKey(key))).isEqualTo(before);
    // A miss copies nothing.
    assertThat(s.get(cas("absent".getBytes(StandardCharsets.UTF_8)))).isNull();
    Thread.sleep(200);
    assertThat(stats.requests(Operation.COPY)).isEqualTo(1);
  }
}
