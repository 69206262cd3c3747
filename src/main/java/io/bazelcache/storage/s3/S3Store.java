package io.bazelcache.storage.s3;

import io.bazelcache.digest.DigestFunction;
import io.bazelcache.digest.Hasher;
import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.BlobSizeMismatchException;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.BlobWriter;
import io.bazelcache.storage.ChannelSliceInputStream;
import io.bazelcache.storage.DigestMismatchException;
import io.bazelcache.storage.FileSlice;
import io.bazelcache.storage.StoreStats;
import io.bazelcache.storage.casblob.CasBlobFormatException;
import io.bazelcache.storage.casblob.CasBlobHeader;
import io.bazelcache.storage.casblob.CasBlobReader;
import io.bazelcache.storage.casblob.CasBlobWriter;
import io.bazelcache.storage.layers.RemoteStore;
import io.bazelcache.storage.s3.S3Stats.Operation;
import io.bazelcache.storage.s3.S3Stats.Status;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HexFormat;
import java.util.Optional;
import java.util.concurrent.Semaphore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import software.amazon.awssdk.auth.credentials.AnonymousCredentialsProvider;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProviderChain;
import software.amazon.awssdk.auth.credentials.AwsSessionCredentials;
import software.amazon.awssdk.auth.credentials.ContainerCredentialsProvider;
import software.amazon.awssdk.auth.credentials.InstanceProfileCredentialsProvider;
import software.amazon.awssdk.auth.credentials.ProfileCredentialsProvider;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.awscore.AwsRequestOverrideConfiguration;
import software.amazon.awssdk.core.ResponseInputStream;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.http.apache.ApacheHttpClient;
import software.amazon.awssdk.profiles.ProfileFile;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3ClientBuilder;
import software.amazon.awssdk.services.s3.model.GetObjectResponse;
import software.amazon.awssdk.services.s3.model.MetadataDirective;
import software.amazon.awssdk.services.s3.model.NoSuchKeyException;
import software.amazon.awssdk.services.s3.model.PutObjectRequest;
import software.amazon.awssdk.services.s3.model.S3Exception;

/**
 * The shared S3 (or MinIO) bucket, with bazel-remote's object layout, so a bucket written by
 * bazel-remote is readable here and the other way round:
 *
 * <pre>
 * [prefix/]cas.v2/&lt;hh&gt;/&lt;hash&gt;   CAS, storage_mode zstd: casblob format
 * [prefix/]cas/&lt;hh&gt;/&lt;hash&gt;      CAS, storage_mode uncompressed: raw bytes
 * [prefix/]ac/&lt;hh&gt;/&lt;hash&gt;       action cache: raw ActionResult bytes
 * [prefix/]raw/&lt;hh&gt;/&lt;hash&gt;      HTTP AC without validation: raw bytes
 * </pre>
 *
 * where {@code hh} is the first two hex characters of the hash. BLAKE3 entries (which bazel-remote does
 * not support) live under an extra {@code blake3/} segment, {@code [prefix/]blake3/cas.v2/<hh>/<hash>}
 * and so on, so they can never be mistaken for SHA-256 entries with the same hex string.
 *
 * <p>As a {@link RemoteStore} it is used by the layers (read-through, existence, write-behind). As a
 * {@link BlobStore} it works on its own, synchronously: {@code get} downloads to a temporary file and
 * verifies the digest before returning; a writer spools to a temporary file and uploads on commit.
 */
public final class S3Store implements BlobStore, RemoteStore {
  private static final Logger log = LoggerFactory.getLogger(S3Store.class);

  /** Extra key segment for BLAKE3 entries. */
  public static final String BLAKE3_SEGMENT = "blake3";

  private static final String CONTENT_TYPE = "application/octet-stream";
  /** AC/RAW entries up to this size are uploaded from memory; larger ones from a file. */
  private static final int MEMORY_UPLOAD_LIMIT = 8 * 1024 * 1024;

  private final S3Options opts;
  private final S3Stats stats;
  private final S3Client s3;
  private final String keyPrefix;
  private final Semaphore copySlots = new Semaphore(32);
  private final Breaker breaker = new Breaker(5, Duration.ofSeconds(1), Duration.ofSeconds(5));

  public S3Store(S3Options opts, S3Stats stats) throws IOException {
    this.opts = opts;
    this.stats = stats;
    this.keyPrefix = cleanPrefix(opts.prefix());
    Files.createDirectories(opts.tempDir());
    deleteLeftovers(opts.tempDir());
    this.s3 = buildClient(opts);
  }

  private static final java.util.List<String> TEMP_PREFIXES = java.util.List.of("s3get-", "s3put-", "s3blob-", "s3w-");

  /** Deletes temporary files a previous process left behind (a crash mid-download). */
  private static void deleteLeftovers(Path dir) {
    try (var files = Files.list(dir)) {
      files.filter(p -> {
        String n = p.getFileName().toString();
        return TEMP_PREFIXES.stream().anyMatch(n::startsWith) && Files.isRegularFile(p);
      }).forEach(S3Store::deleteQuietly);
    } catch (IOException e) {
      log.warn("could not clean {}: {}", dir, e.toString());
    }
  }

  public S3Options options() {
    return opts;
  }

  public S3Stats s3Stats() {
    return stats;
  }

  /** The underlying client (tests use it to inspect the bucket). */
  public S3Client client() {
    return s3;
  }

  private static S3Client buildClient(S3Options o) {
    ApacheHttpClient.Builder http =
        ApacheHttpClient.builder()
            .maxConnections(o.maxIdleConns())
            .connectionTimeout(o.connectTimeout())
            .socketTimeout(o.requestTimeout())
            .connectionAcquisitionTimeout(o.requestTimeout())
            .connectionMaxIdleTime(Duration.ofSeconds(90))
            .tcpKeepAlive(true);
    S3ClientBuilder b =
        S3Client.builder()
            .httpClientBuilder(http)
            .region(Region.of(o.region()))
            .credentialsProvider(credentialsProvider(o.credentials()))
            .forcePathStyle(o.bucketLookup().pathStyle(o.endpoint()))
            // Plain PUTs with Content-Length, as bazel-remote sends: no aws-chunked trailers, which
            // older MinIO releases and other S3 clones mishandle.
            .requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
            .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED)
            .overrideConfiguration(
                c -> c.apiCallAttemptTimeout(o.requestTimeout())
                    .apiCallTimeout(o.requestTimeout().multipliedBy(o.maxAttempts()).plusSeconds(1))
                    .retryStrategy(r -> r.maxAttempts(o.maxAttempts())));
    String url = o.endpointUrl();
    if (url != null) {
      b.endpointOverride(URI.create(url));
    }
    return b.build();
  }

  static AwsCredentialsProvider credentialsProvider(S3Options.Credentials c) {
    return switch (c) {
      case S3Options.Credentials.AccessKey k -> StaticCredentialsProvider.create(
          k.sessionToken() == null || k.sessionToken().isEmpty()
              ? AwsBasicCredentials.create(k.accessKeyId(), k.secretAccessKey())
              : AwsSessionCredentials.create(k.accessKeyId(), k.secretAccessKey(), k.sessionToken()));
      case S3Options.Credentials.IamRole r -> {
        if (r.endpoint() != null && !r.endpoint().isBlank()) {
          yield InstanceProfileCredentialsProvider.builder().endpoint(r.endpoint()).build();
        }
        // Like minio-go's IAM provider: container (ECS/EKS pod identity) credentials when their
        // environment variables are set, else the instance profile (IMDS).
        yield AwsCredentialsProviderChain.of(
            ContainerCredentialsProvider.create(), InstanceProfileCredentialsProvider.create());
      }
      case S3Options.Credentials.CredentialsFile f -> {
        ProfileCredentialsProvider.Builder pb =
            ProfileCredentialsProvider.builder()
                .profileName(f.profile() == null || f.profile().isBlank() ? "default" : f.profile());
        if (f.file() != null) {
          pb.profileFile(ProfileFile.builder().content(f.file()).type(ProfileFile.Type.CREDENTIALS).build());
        }
        yield pb.build();
      }
      case S3Options.Credentials.Anonymous a -> AnonymousCredentialsProvider.create();
    };
  }

  /** Whether requests are currently being sent (false while the circuit breaker is open). */
  public boolean available() {
    return breaker.allow();
  }

  private void checkBreaker(Operation op, String k) throws IOException {
    if (!breaker.allow()) {
      stats.count(op, Status.ERROR);
      stats.breakerRejections.incrementAndGet();
      throw new IOException("S3 " + op + " " + k + ": backend unavailable (recent requests failed)");
    }
  }

  /** Records the outcome of a request that got an HTTP status (or none, for I/O errors). */
  private void outcome(int httpStatus) {
    if (httpStatus >= 500 || httpStatus <= 0) {
      long pause = breaker.failure();
      if (pause > 0) {
        log.warn("S3 at {} is failing (I/O errors, timeouts or 5xx); pausing requests for {} ms",
            opts.endpointUrl(), pause / 1_000_000);
      }
    } else if (breaker.success()) {
      log.info("S3 at {} answers again", opts.endpointUrl());
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Keys

  /** The object key of {@code key}, exactly as bazel-remote computes it (plus the BLAKE3 segment). */
  public String objectKey(BlobKey key) {
    String hash = key.hash();
    String dir =
        switch (key.kind()) {
          case CAS -> opts.zstd() ? "cas.v2" : "cas";
          case AC -> "ac";
          case RAW -> "raw";
        };
    String base = dir + "/" + hash.substring(0, 2) + "/" + hash;
    if (key.function() == DigestFunction.BLAKE3) {
      base = BLAKE3_SEGMENT + "/" + base;
    }
    if (keyPrefix.isEmpty()) {
      return base;
    }
    return keyPrefix.endsWith("/") ? keyPrefix + base : keyPrefix + "/" + base;
  }

  /** Go's {@code path.Clean} of the prefix, so {@code path.Join(prefix, key)} is reproduced. */
  static String cleanPrefix(String prefix) {
    if (prefix == null || prefix.isEmpty()) {
      return "";
    }
    boolean rooted = prefix.startsWith("/");
    Deque<String> parts = new ArrayDeque<>();
    for (String seg : prefix.split("/")) {
      if (seg.isEmpty() || seg.equals(".")) {
        continue;
      }
      if (seg.equals("..")) {
        if (!parts.isEmpty() && !parts.peekLast().equals("..")) {
          parts.removeLast();
        } else if (!rooted) {
          parts.addLast("..");
        }
        continue;
      }
      parts.addLast(seg);
    }
    String joined = String.join("/", parts);
    if (rooted) {
      return "/" + joined;
    }
    return joined.equals("") ? "" : joined;
  }

  private boolean isCasblob(BlobKey key) {
    return opts.zstd() && key.kind() == io.bazelcache.storage.Kind.CAS;
  }

  // ---------------------------------------------------------------------------------------------
  // RemoteStore

  @Override
  public boolean exists(BlobKey key) throws IOException {
    if (key.isEmptyCasBlob()) {
      return true;
    }
    String k = objectKey(key);
    checkBreaker(Operation.HEAD, k);
    try {
      s3.headObject(b -> b.bucket(opts.bucket()).key(k));
      outcome(200);
      stats.count(Operation.HEAD, Status.OK);
      return true;
    } catch (NoSuchKeyException e) {
      outcome(404);
      stats.count(Operation.HEAD, Status.NOT_FOUND);
      return false;
    } catch (S3Exception e) {
      outcome(e.statusCode());
      if (e.statusCode() == 404) {
        stats.count(Operation.HEAD, Status.NOT_FOUND);
        return false;
      }
      stats.count(Operation.HEAD, Status.ERROR);
      throw new IOException("S3 HEAD " + k + ": HTTP " + e.statusCode() + " " + e.getMessage(), e);
    } catch (SdkException e) {
      outcome(0);
      stats.count(Operation.HEAD, Status.ERROR);
      throw new IOException("S3 HEAD " + k + ": " + e.getMessage(), e);
    }
  }

  @Override
  public RemoteEntry fetch(BlobKey key, long maxSize) throws IOException {
    if (key.isEmptyCasBlob()) {
      return new MemoryEntry(new byte[0]);
    }
    String k = objectKey(key);
    checkBreaker(Operation.GET, k);
    ResponseInputStream<GetObjectResponse> in;
    try {
      in = s3.getObject(b -> b.bucket(opts.bucket()).key(k));
      outcome(200);
    } catch (NoSuchKeyException e) {
      outcome(404);
      stats.count(Operation.GET, Status.NOT_FOUND);
      return null;
    } catch (S3Exception e) {
      outcome(e.statusCode());
      if (e.statusCode() == 404) {
        stats.count(Operation.GET, Status.NOT_FOUND);
        return null;
      }
      stats.count(Operation.GET, Status.ERROR);
      throw new IOException("S3 GET " + k + ": HTTP " + e.statusCode() + " " + e.getMessage(), e);
    } catch (SdkException e) {
      outcome(0);
      stats.count(Operation.GET, Status.ERROR);
      throw new IOException("S3 GET " + k + ": " + e.getMessage(), e);
    }
    boolean casblob = isCasblob(key);
    Path tmp = null;
    boolean ok = false;
    try (in) {
      Long contentLength = in.response().contentLength();
      if (!casblob && contentLength != null && contentLength > maxSize) {
        in.abort();
        stats.count(Operation.GET, Status.OK);
        log.debug("S3 object {} has {} bytes, more than max_proxy_blob_size {}", k, contentLength, maxSize);
        ok = true;
        return null;
      }
      tmp = Files.createTempFile(opts.tempDir(), "s3get-", ".tmp");
      try (OutputStream out = Files.newOutputStream(tmp, StandardOpenOption.WRITE)) {
        if (casblob) {
          // The logical size is in the header: refuse too-large objects before downloading them.
          byte[] head = in.readNBytes(16);
          if (head.length == 16) {
            ByteBuffer hb = ByteBuffer.wrap(head).order(ByteOrder.LITTLE_ENDIAN);
            if (hb.getInt(0) == CasBlobHeader.MAGIC && hb.getLong(8) > maxSize) {
              in.abort();
              stats.count(Operation.GET, Status.OK);
              ok = true;
              return null;
            }
          }
          out.write(head);
        }
        in.transferTo(out);
      }
      stats.count(Operation.GET, Status.OK);
      ok = true;
    } catch (SdkException e) {
      outcome(0);
      stats.count(Operation.GET, Status.ERROR);
      deleteQuietly(tmp);
      throw new IOException("S3 GET " + k + " (reading the body): " + e.getMessage(), e);
    } catch (IOException e) {
      if (!ok) {
        outcome(0);
        stats.count(Operation.GET, Status.ERROR);
      }
      deleteQuietly(tmp);
      throw e;
    }

    long fileLength = Files.size(tmp);
    if (!casblob) {
      if (fileLength > maxSize) {
        deleteQuietly(tmp);
        return null;
      }
      return new FileEntry(tmp, null, fileLength, null);
    }
    FileChannel ch = FileChannel.open(tmp, StandardOpenOption.READ);
    try {
      CasBlobReader reader = CasBlobReader.open(ch, fileLength);
      if (reader.uncompressedSize() > maxSize) {
        ch.close();
        deleteQuietly(tmp);
        return null;
      }
      return new FileEntry(tmp, ch, reader.uncompressedSize(), reader);
    } catch (IOException e) {
      ch.close();
      deleteQuietly(tmp);
      throw new CasBlobFormatException("S3 object " + k + " is not a valid casblob: " + e.getMessage(), e);
    }
  }

  @Override
  public void fetched(BlobKey key) {
    if (!opts.updateTimestamps() || key.isEmptyCasBlob()) {
      return;
    }
    // Off the request path, and bounded: when many copies are in flight, skip this one.
    if (!copySlots.tryAcquire()) {
      return;
    }
    Thread.ofVirtual().name("s3-touch").start(() -> {
      try {
        touch(key);
      } catch (IOException | RuntimeException e) { // RuntimeException: the client was closed meanwhile
        log.debug("update_timestamps copy of {} failed: {}", key, e.toString());
      } finally {
        copySlots.release();
      }
    });
  }

  /** Copies the object onto itself so its last-modified time is now (for lifecycle rules). */
  public void touch(BlobKey key) throws IOException {
    String k = objectKey(key);
    checkBreaker(Operation.COPY, k);
    try {
      s3.copyObject(b -> b.sourceBucket(opts.bucket()).sourceKey(k)
          .destinationBucket(opts.bucket()).destinationKey(k)
          .metadataDirective(MetadataDirective.REPLACE)
          .contentType(CONTENT_TYPE));
      outcome(200);
      stats.count(Operation.COPY, Status.OK);
    } catch (S3Exception e) {
      outcome(e.statusCode());
      stats.count(Operation.COPY, e.statusCode() == 404 ? Status.NOT_FOUND : Status.ERROR);
      throw new IOException("S3 COPY " + k + ": HTTP " + e.statusCode() + " " + e.getMessage(), e);
    } catch (SdkException e) {
      outcome(0);
      stats.count(Operation.COPY, Status.ERROR);
      throw new IOException("S3 COPY " + k + ": " + e.getMessage(), e);
    }
  }

  @Override
  public void upload(BlobKey key, Blob blob) throws IOException {
    if (key.isEmptyCasBlob()) {
      return;
    }
    String k = objectKey(key);
    long size = blob.size();
    if (isCasblob(key)) {
      Optional<FileSlice> z = blob.zstdFile();
      if (z.isPresent() && isCasblobFile(z.get(), size)) {
        // The local file is already in bazel-remote's format: send its bytes as they are.
        FileSlice s = z.get();
        put(k, RequestBody.fromContentProvider(
            () -> new ChannelSliceInputStream(s.channel(), s.position(), s.count()), s.count(), CONTENT_TYPE),
            s.count());
        return;
      }
      Path tmp = Files.createTempFile(opts.tempDir(), "s3put-", ".casblob");
      try {
        long len;
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.READ);
            CasBlobWriter w = new CasBlobWriter(ch, size);
            InputStream in = blob.openStream(0)) {
          byte[] buf = new byte[256 * 1024];
          int n;
          while ((n = in.read(buf)) > 0) {
            w.write(ByteBuffer.wrap(buf, 0, n));
          }
          len = w.finish();
        } catch (IllegalStateException e) {
          throw new IOException("local entry " + key + " changed size while encoding: " + e.getMessage(), e);
        }
        put(k, RequestBody.fromFile(tmp), len);
      } finally {
        deleteQuietly(tmp);
      }
      return;
    }
    Optional<FileSlice> raw = blob.rawFile();
    if (raw.isPresent()) {
      FileSlice s = raw.get();
      put(k, RequestBody.fromContentProvider(
          () -> new ChannelSliceInputStream(s.channel(), s.position(), s.count()), s.count(), CONTENT_TYPE),
          s.count());
      return;
    }
    if (size <= MEMORY_UPLOAD_LIMIT) {
      byte[] data = blob.readAllBytes();
      if (data.length != size) {
        throw new IOException("local entry " + key + " has " + data.length + " bytes, expected " + size);
      }
      put(k, RequestBody.fromBytes(data), size);
      return;
    }
    Path tmp = Files.createTempFile(opts.tempDir(), "s3put-", ".raw");
    try {
      try (InputStream in = blob.openStream(0)) {
        Files.copy(in, tmp, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
      }
      put(k, RequestBody.fromFile(tmp), Files.size(tmp));
    } finally {
      deleteQuietly(tmp);
    }
  }

  /** Whether {@code s} is a whole, well-formed casblob file for {@code size} logical bytes. */
  private static boolean isCasblobFile(FileSlice s, long size) {
    if (s.position() != 0) {
      return false;
    }
    try {
      CasBlobHeader h = CasBlobHeader.read(s.channel(), s.count());
      return h.uncompressedSize() == size;
    } catch (IOException e) {
      return false;
    }
  }

  private void put(String k, RequestBody body, long length) throws IOException {
    // A whole-request bound that grows with the size (1 s per MiB on top of the base), so big
    // uploads are not cut off; stalls are caught by the socket timeout.
    Duration attempt = opts.requestTimeout().plusSeconds(length >> 20);
    PutObjectRequest req =
        PutObjectRequest.builder()
            .bucket(opts.bucket())
            .key(k)
            .contentType(CONTENT_TYPE)
            .contentLength(length)
            .overrideConfiguration(AwsRequestOverrideConfiguration.builder()
                .apiCallAttemptTimeout(attempt)
                .apiCallTimeout(attempt.multipliedBy(opts.maxAttempts()).plusSeconds(1))
                .build())
            .build();
    checkBreaker(Operation.PUT, k);
    try {
      s3.putObject(req, body);
      outcome(200);
      stats.count(Operation.PUT, Status.OK);
    } catch (S3Exception e) {
      outcome(e.statusCode());
      stats.count(Operation.PUT, Status.ERROR);
      int code = e.statusCode();
      String msg = "S3 PUT " + k + ": HTTP " + code + " " + e.getMessage();
      if (code >= 400 && code < 500 && code != 408 && code != 429) {
        throw new PermanentFailureException(msg, e);
      }
      throw new IOException(msg, e);
    } catch (SdkException e) {
      outcome(0);
      stats.count(Operation.PUT, Status.ERROR);
      throw new IOException("S3 PUT " + k + ": " + e.getMessage(), e);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // BlobStore (standalone use)

  @Override
  public Blob get(BlobKey key) throws IOException {
    if (key.isEmptyCasBlob()) {
      return new MemoryBlob(new byte[0]);
    }
    RemoteEntry e;
    try {
      e = fetch(key, Long.MAX_VALUE);
    } catch (CasBlobFormatException ex) {
      stats.corruptObjects.incrementAndGet();
      stats.cacheMisses.incrementAndGet();
      log.warn("S3 object {} is corrupt: {}", objectKey(key), ex.getMessage());
      return null;
    } catch (IOException ex) {
      stats.cacheMisses.incrementAndGet();
      log.debug("S3 get {}: {}", key, ex.getMessage());
      return null;
    }
    if (e == null) {
      stats.cacheMisses.incrementAndGet();
      return null;
    }
    Path tmp = Files.createTempFile(opts.tempDir(), "s3blob-", ".tmp");
    boolean keep = false;
    try (e) {
      Hasher h = key.function().newHasher();
      long n = 0;
      try (InputStream in = e.openStream(); OutputStream out = Files.newOutputStream(tmp)) {
        byte[] buf = new byte[256 * 1024];
        int r;
        while ((r = in.read(buf)) > 0) {
          h.update(buf, 0, r);
          out.write(buf, 0, r);
          n += r;
        }
      }
      if (n != e.size()
          || (key.kind().isContentAddressed() && !HexFormat.of().formatHex(h.finish()).equals(key.hash()))) {
        stats.corruptObjects.incrementAndGet();
        stats.cacheMisses.incrementAndGet();
        log.warn("S3 object {} does not match its digest; treated as a miss", objectKey(key));
        return null;
      }
      TempFileBlob blob = new TempFileBlob(tmp, n);
      keep = true;
      stats.cacheHits.incrementAndGet();
      fetched(key);
      return blob;
    } catch (CasBlobFormatException ex) {
      stats.corruptObjects.incrementAndGet();
      stats.cacheMisses.incrementAndGet();
      log.warn("S3 object {} is corrupt: {}", objectKey(key), ex.getMessage());
      return null;
    } finally {
      if (!keep) {
        deleteQuietly(tmp);
      }
    }
  }

  @Override
  public boolean contains(BlobKey key) {
    try {
      return exists(key);
    } catch (IOException e) {
      log.debug("S3 contains {}: {}", key, e.getMessage());
      return false;
    }
  }

  @Override
  public BlobWriter newWriter(BlobKey key, long size) throws IOException {
    if (size < 0) {
      throw new BlobSizeMismatchException("negative size " + size);
    }
    return new SpoolingWriter(key, size);
  }

  @Override
  public StoreStats stats() {
    return new StoreStats(0, 0, 0, 0, 0);
  }

  @Override
  public void close() {
    // Let timestamp copies in flight finish (briefly) before the client goes away under them.
    try {
      if (copySlots.tryAcquire(32, 5, java.util.concurrent.TimeUnit.SECONDS)) {
        copySlots.release(32);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    s3.close();
  }

  private static void deleteQuietly(Path p) {
    if (p == null) {
      return;
    }
    try {
      Files.deleteIfExists(p);
    } catch (IOException ignored) {
      // best effort
    }
  }

  /** Spools an upload to a temporary file, verifies it, then PUTs it on commit. */
  private final class SpoolingWriter implements BlobWriter {
    private final BlobKey key;
    private final long size;
    private final Path tmp;
    private final FileChannel ch;
    private final Hasher hasher;
    private long written;
    private boolean done;

    SpoolingWriter(BlobKey key, long size) throws IOException {
      this.key = key;
      this.size = size;
      this.tmp = Files.createTempFile(opts.tempDir(), "s3w-", ".tmp");
      this.ch = FileChannel.open(tmp, StandardOpenOption.WRITE);
      this.hasher = key.function().newHasher();
    }

    @Override
    public BlobKey key() {
      return key;
    }

    @Override
    public long expectedSize() {
      return size;
    }

    @Override
    public void write(ByteBuffer data) throws IOException {
      if (done) {
        throw new IOException("writer closed");
      }
      if (written + data.remaining() > size) {
        throw new BlobSizeMismatchException("more than the announced " + size + " bytes");
      }
      ByteBuffer dup = data.duplicate();
      hasher.update(dup);
      while (data.hasRemaining()) {
        written += ch.write(data);
      }
    }

    @Override
    public long bytesWritten() {
      return written;
    }

    @Override
    public void commit() throws IOException {
      if (done) {
        throw new IOException("writer already closed");
      }
      try {
        if (written != size) {
          throw new BlobSizeMismatchException("got " + written + " bytes, want " + size);
        }
        String got = HexFormat.of().formatHex(hasher.finish());
        if (key.kind().isContentAddressed() && !got.equals(key.hash())) {
          throw new DigestMismatchException("content hashes to " + got + ", not " + key.hash());
        }
        ch.close();
        if (key.isEmptyCasBlob()) {
          return;
        }
        try (TempFileBlob blob = new TempFileBlob(tmp, size)) {
          upload(key, blob);
        }
      } finally {
        close();
      }
    }

    @Override
    public void close() {
      if (done) {
        return;
      }
      done = true;
      try {
        ch.close();
      } catch (IOException ignored) {
        // deleted below
      }
      deleteQuietly(tmp);
    }
  }

  /** A spooled download: raw bytes, or a casblob decoded on the fly. */
  private static final class FileEntry implements RemoteEntry {
    private final Path path;
    private final FileChannel ch;
    private final long size;
    private final CasBlobReader reader;

    FileEntry(Path path, FileChannel ch, long size, CasBlobReader reader) {
      this.path = path;
      this.ch = ch;
      this.size = size;
      this.reader = reader;
    }

    @Override
    public long size() {
      return size;
    }

    @Override
    public InputStream openStream() throws IOException {
      return reader != null ? reader.openStream(0) : Files.newInputStream(path);
    }

    @Override
    public InputStream openCasblob() throws IOException {
      return reader != null ? Files.newInputStream(path) : null;
    }

    @Override
    public void close() {
      if (ch != null) {
        try {
          ch.close();
        } catch (IOException ignored) {
          // deleted below
        }
      }
      deleteQuietly(path);
    }
  }

  private record MemoryEntry(byte[] data) implements RemoteEntry {
    @Override
    public long size() {
      return data.length;
    }

    @Override
    public InputStream openStream() {
      return new ByteArrayInputStream(data);
    }

    @Override
    public void close() {}
  }

  private record MemoryBlob(byte[] data) implements Blob {
    @Override
    public long size() {
      return data.length;
    }

    @Override
    public InputStream openStream(long offset) {
      return new ByteArrayInputStream(data, (int) offset, data.length - (int) offset);
    }

    @Override
    public void close() {}
  }
}
