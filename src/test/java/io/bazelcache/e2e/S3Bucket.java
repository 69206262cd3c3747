package io.bazelcache.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.fail;

import io.bazelcache.storage.casblob.CasBlobInputStream;
import io.bazelcache.testing.S3ProxyProcess;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The shared bucket of the S3 end-to-end tests, seen from outside bazel-cache: the objects S3Proxy's filesystem
 * backend holds (one file per key), the S3 keys a replica's local directory should have produced, and S3Proxy's own
 * request counters (its Prometheus endpoint), so request counts come from the S3 server, not from our code.
 */
final class S3Bucket {
  /** A documented object key (docs/S3.md, no prefix): {@code cas.v2|cas|ac|raw / hh / sha256-hex}. */
  static final Pattern KEY = Pattern.compile("(cas\\.v2|cas|ac|raw)/([0-9a-f]{2})/([0-9a-f]{64})");
  /** A DiskStore entry file: {@code <hash>-<size>[.zst]} under {@code sha256/<kind>/<hh>/}. */
  private static final Pattern LOCAL_FILE = Pattern.compile("([0-9a-f]{64})-(\\d+)(\\.zst)?");
  /** One of S3Proxy's per-request counters: {@code http_server_request_duration_seconds_count{labels} N}. */
  private static final Pattern COUNT_LINE =
      Pattern.compile("(?m)^http_server_request_duration_seconds_(count|sum)\\{([^}]*)\\} ([0-9.eE+-]+)$");
  /**
   * A temporary file of S3Proxy's filesystem backend ({@code <key>-<uuid>}): an upload it had not finished when it
   * was killed. It is not an object we wrote, and the backend never serves it under the real key.
   */
  private static final Pattern BACKEND_TEMP = Pattern.compile(".*/[0-9a-f]{64}-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}");
  private static final Pattern LABEL = Pattern.compile("(\\w+)=\"([^\"]*)\"");

  private final S3ProxyProcess s3;
  private final String bucket;
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

  S3Bucket(S3ProxyProcess s3, String bucket) {
    this.s3 = s3;
    this.bucket = bucket;
  }

  /** The flags that point a bazel-cache at this bucket with SigV4 access keys, as a user would pass them. */
  List<String> serverFlags() {
    return List.of(
        "--s3.endpoint", s3.endpoint(),
        "--s3.bucket", bucket,
        "--s3.auth_method", "access_key",
        "--s3.access_key_id", S3ProxyProcess.ACCESS_KEY,
        "--s3.secret_access_key", S3ProxyProcess.SECRET_KEY,
        "--s3.disable_ssl=true",
        "--s3.bucket_lookup_type", "path");
  }

  /** Every object in the bucket, by key (the files of S3Proxy's filesystem backend). */
  Set<String> keys() {
    Path root = s3.bucketDir(bucket);
    Set<String> keys = new TreeSet<>();
    if (!Files.isDirectory(root)) {
      return keys;
    }
    try (Stream<Path> files = Files.walk(root)) {
      files.filter(Files::isRegularFile)
          .map(f -> root.relativize(f).toString())
          .filter(k -> !BACKEND_TEMP.matcher(k).matches())
          .forEach(keys::add);
    } catch (NoSuchFileException e) {
      return keys; // a file went away while walking (a temporary file of the backend): the next poll sees it
    } catch (IOException | UncheckedIOException e) {
      return keys;
    }
    return keys;
  }

  /** The S3 keys that a replica's local entries under {@code cacheDir} map to (storage_mode zstd, no prefix). */
  static Set<String> expectedKeys(Path cacheDir) {
    Set<String> keys = new TreeSet<>();
    Path sha = cacheDir.resolve("sha256");
    for (String kind : List.of("cas", "ac", "raw")) {
      Path dir = sha.resolve(kind);
      if (!Files.isDirectory(dir)) {
        continue;
      }
      try (Stream<Path> files = Files.walk(dir)) {
        files.filter(Files::isRegularFile).forEach(f -> {
          Matcher m = LOCAL_FILE.matcher(f.getFileName().toString());
          if (m.matches()) {
            String hash = m.group(1);
            keys.add((kind.equals("cas") ? "cas.v2" : kind) + "/" + hash.substring(0, 2) + "/" + hash);
          }
        });
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return keys;
  }

  /**
   * Waits until every key in {@code expected} is in the bucket (the uploads of the replicas have drained), polling
   * the bucket; fails with the missing keys after {@code timeout}. Returns how long it took.
   */
  Duration awaitKeys(Set<String> expected, Duration timeout) {
    long start = System.nanoTime();
    long deadline = start + timeout.toNanos();
    while (true) {
      Set<String> missing = new TreeSet<>(expected);
      missing.removeAll(keys());
      if (missing.isEmpty()) {
        return Duration.ofNanos(System.nanoTime() - start);
      }
      if (System.nanoTime() - deadline > 0) {
        fail(missing.size() + " of " + expected.size() + " expected objects not in bucket " + bucket + " after "
            + timeout + ", e.g. " + missing.stream().limit(5).toList());
      }
      sleep(200);
    }
  }

  /**
   * Checks every object against the documented layout: the key is {@code cas.v2/hh/hash} or {@code ac/hh/hash} with
   * hh the hash's first two characters, no uncompressed {@code cas/} objects in zstd mode, and every {@code cas.v2}
   * object is a valid casblob whose content hashes to its key. Returns the number of objects by top-level directory.
   */
  Map<String, Integer> assertLayoutAndContent() {
    Map<String, Integer> byKind = new TreeMap<>();
    List<String> problems = new ArrayList<>();
    for (String key : keys()) {
      Matcher m = KEY.matcher(key);
      if (!m.matches()) {
        problems.add(key + ": not a documented key");
        continue;
      }
      String kind = m.group(1);
      String hash = m.group(3);
      byKind.merge(kind, 1, Integer::sum);
      if (!hash.startsWith(m.group(2))) {
        problems.add(key + ": directory is not the hash's first two characters");
      }
      if (kind.equals("cas") || kind.equals("raw")) {
        problems.add(key + ": " + kind + "/ object from a zstd-mode cache that validates AC");
      }
      if (kind.equals("cas.v2")) {
        try (InputStream in = new DigestInputStream(
            new CasBlobInputStream(Files.newInputStream(s3.bucketDir(bucket).resolve(key))), sha256())) {
          MessageDigest md = ((DigestInputStream) in).getMessageDigest();
          in.transferTo(java.io.OutputStream.nullOutputStream());
          String actual = HexFormat.of().formatHex(md.digest());
          if (!actual.equals(hash)) {
            problems.add(key + ": content hashes to " + actual);
          }
        } catch (IOException e) {
          problems.add(key + ": not a valid casblob: " + e.getMessage());
        }
      }
    }
    assertThat(problems).as("objects in bucket %s that break the layout of docs/S3.md", bucket).isEmpty();
    return byKind;
  }

  /**
   * S3Proxy's request counters: "METHOD s3Operation status" to the number of requests it has answered so far,
   * e.g. {@code "HEAD HeadObject 200" -> 12}. Empty while S3Proxy is down.
   */
  Map<String, Long> requestCounts() {
    return scrape("count");
  }

  /** S3Proxy's time spent answering, in microseconds, keyed like {@link #requestCounts()}. */
  Map<String, Long> requestMicros() {
    return scrape("sum");
  }

  private Map<String, Long> scrape(String series) {
    String text;
    try {
      HttpResponse<String> r = http.send(HttpRequest.newBuilder(s3.metricsUri()).timeout(Duration.ofSeconds(10))
          .GET().build(), HttpResponse.BodyHandlers.ofString());
      assertThat(r.statusCode()).as("GET %s", s3.metricsUri()).isEqualTo(200);
      text = r.body();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + s3.metricsUri(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
    Map<String, Long> counts = new TreeMap<>();
    for (Matcher line = COUNT_LINE.matcher(text); line.find(); ) {
      if (!line.group(1).equals(series)) {
        continue;
      }
      Map<String, String> labels = new TreeMap<>();
      for (Matcher l = LABEL.matcher(line.group(2)); l.find(); ) {
        labels.put(l.group(1), l.group(2));
      }
      String key = labels.get("http_request_method") + " " + labels.get("s3_operation") + " "
          + labels.get("http_response_status_code");
      double value = Double.parseDouble(line.group(3));
      counts.merge(key, series.equals("sum") ? Math.round(value * 1e6) : (long) value, Long::sum);
    }
    return counts;
  }

  /**
   * {@link #requestCounts()} once two reads 200 ms apart agree: S3Proxy records a request after answering it, so a
   * count read right after a build could miss the build's last requests and put them in the next window.
   */
  Map<String, Long> settledRequestCounts() {
    Map<String, Long> last = requestCounts();
    for (int i = 0; i < 50; i++) {
      sleep(200);
      Map<String, Long> now = requestCounts();
      if (now.equals(last)) {
        return now;
      }
      last = now;
    }
    return last;
  }

  /** {@code after - before}, without the entries that did not change. */
  static Map<String, Long> delta(Map<String, Long> before, Map<String, Long> after) {
    Map<String, Long> d = new TreeMap<>();
    after.forEach((k, v) -> {
      long n = v - before.getOrDefault(k, 0L);
      if (n != 0) {
        d.put(k, n);
      }
    });
    return d;
  }

  /** Requests with this HTTP method in a {@link #delta}. */
  static long requests(Map<String, Long> counts, String method) {
    return counts.entrySet().stream().filter(e -> e.getKey().startsWith(method + " "))
        .mapToLong(Map.Entry::getValue).sum();
  }

  static URI statusUri(ServerProcess server) {
    return server.baseUri().resolve("/status");
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }
}
