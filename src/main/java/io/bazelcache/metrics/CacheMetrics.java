package io.bazelcache.metrics;

import io.bazelcache.http.HttpCacheOptions;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.Kind;
import io.bazelcache.storage.disk.DiskStore;
import io.bazelcache.storage.s3.S3Stats;
import io.grpc.ServerInterceptor;
import io.prometheus.metrics.config.EscapingScheme;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.Gauge;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.core.metrics.Summary;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.instrumentation.jvm.JvmMetrics;
import io.prometheus.metrics.model.registry.Collector;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.prometheus.metrics.model.snapshots.MetricSnapshot;
import io.prometheus.metrics.model.snapshots.UnknownSnapshot;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.List;
import java.util.Optional;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

/**
 * All Prometheus metrics of one server, in a registry of its own (so several servers in one JVM do not
 * collide). {@code CacheServer} creates one and hands its pieces to the layers:
 *
 * <ul>
 *   <li>{@link #meter(BlobStore)}: a store decorator counting {@code bazel_remote_incoming_requests_total}
 *   <li>{@link #httpObserver()}: the HTTP server's request observer (duration, size, in flight, status codes)
 *   <li>{@link #grpcInterceptor(boolean)}: gRPC server metrics and the gRPC access log
 *   <li>{@link #bindDisk} and {@link #bindS3}: callbacks reading the disk store and the S3 counters at scrape time
 *   <li>{@link #page()}: the {@code /metrics} body in the Prometheus text format 0.0.4
 * </ul>
 *
 * Names, types and labels follow bazel-remote; the names the deployment's alert rules use in addition are
 * described in {@code docs/METRICS.md}.
 */
public final class CacheMetrics {
  /** bazel-remote's prefix, for {@code http_metrics_prefix} and for our own metrics. */
  public static final String PREFIX = "bazel_remote_";

  /** bazel-remote's default {@code endpoint_metrics_duration_buckets}. */
  public static final List<Double> DEFAULT_DURATION_BUCKETS =
      List.of(0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0);

  /** go-http-metrics' response size buckets: 100 B × 10^n, n = 0..7. */
  private static final double[] SIZE_BUCKETS = {1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};

  private final PrometheusRegistry registry = new PrometheusRegistry();
  private final PrometheusTextFormatWriter writer = PrometheusTextFormatWriter.create();
  private final double[] durationBuckets;

  private final Counter incoming;
  /** [method (get, contains)][kind][hit, miss], resolved once: the store decorator is on every request's path. */
  private final io.prometheus.metrics.core.datapoints.CounterDataPoint[] incomingPoints =
      new io.prometheus.metrics.core.datapoints.CounterDataPoint[2 * Kind.values().length * 2];
  private final Histogram httpDuration; // always bazel_remote_http_request_duration_seconds
  private final Histogram httpDurationUnprefixed; // http_request_duration_seconds, unless http_metrics_prefix
  private final Histogram httpResponseSize;
  private final Gauge httpInflight;
  private final Counter httpRequests;
  final GrpcMetrics grpc;

  /**
   * @param durationBuckets upper bounds (seconds) of the HTTP and gRPC duration histograms
   *     ({@code endpoint_metrics_duration_buckets})
   * @param httpMetricsPrefix bazel-remote's {@code http_metrics_prefix}: name the go-http-metrics families
   *     {@code bazel_remote_http_*} instead of {@code http_*}
   */
  public CacheMetrics(List<Double> durationBuckets, boolean httpMetricsPrefix) {
    this.durationBuckets = durationBuckets.stream().mapToDouble(Double::doubleValue).toArray();
    for (int i = 0; i < this.durationBuckets.length; i++) {
      if (!(this.durationBuckets[i] > 0) || (i > 0 && this.durationBuckets[i] <= this.durationBuckets[i - 1])) {
        throw new IllegalArgumentException("duration buckets must be positive and strictly increasing: "
            + durationBuckets);
      }
    }
    String httpPrefix = httpMetricsPrefix ? PREFIX : "";

    incoming = Counter.builder().name(PREFIX + "incoming_requests")
        .help("The number of incoming cache requests")
        .labelNames("method", "kind", "status").withoutExemplars().register(registry);
    int i = 0;
    for (String method : List.of("get", "contains")) {
      for (Kind kind : Kind.values()) {
        for (String status : List.of("hit", "miss")) {
          incomingPoints[i++] = incoming.labelValues(method, kind.dirName(), status);
        }
      }
    }

    httpDuration = durationHistogram(PREFIX + "http_request_duration_seconds");
    httpDurationUnprefixed = httpMetricsPrefix ? null : durationHistogram("http_request_duration_seconds");
    httpResponseSize = Histogram.builder().name(httpPrefix + "http_response_size_bytes")
        .help("The size of the HTTP responses.").labelNames("handler", "method", "code")
        .classicOnly().classicUpperBounds(SIZE_BUCKETS).withoutExemplars().register(registry);
    httpInflight = Gauge.builder().name(httpPrefix + "http_requests_inflight")
        .help("The number of inflight requests being handled at the same time.").labelNames("handler")
        .withoutExemplars().register(registry);
    httpRequests = Counter.builder().name(PREFIX + "http_request")
        .help("HTTP requests by status code (bazel-cache; not in bazel-remote)").labelNames("code")
        .withoutExemplars().register(registry);

    grpc = new GrpcMetrics(registry, this.durationBuckets);

    // Proxy backends bazel-remote always registers; bazel-cache has none of them, so they stay 0.
    untyped(PREFIX + "http_cache_hits", "The total number of HTTP backend cache hits (no HTTP proxy: always 0)",
        () -> 0);
    untyped(PREFIX + "http_cache_misses",
        "The total number of HTTP backend cache misses (no HTTP proxy: always 0)", () -> 0);
    untyped(PREFIX + "azblob_cache_hits",
        "The total number of Azure blob backend cache hits (no Azure proxy: always 0)", () -> 0);
    untyped(PREFIX + "azblob_cache_misses",
        "The total number of Azure blob backend cache misses (no Azure proxy: always 0)", () -> 0);

    JvmMetrics.builder().register(registry);
  }

  private Histogram durationHistogram(String name) {
    return Histogram.builder().name(name).help("The latency of the HTTP requests.")
        .labelNames("handler", "method", "code").classicOnly().classicUpperBounds(durationBuckets)
        .withoutExemplars().register(registry);
  }

  /**
   * A counter exposed without the {@code _total} suffix, as bazel-remote's Go client does for its
   * {@code *_cache_hits/misses}: the Java client always appends {@code _total} to counters, so these are
   * exposed as untyped samples under their exact bazel-remote name.
   */
  private void untyped(String name, String help, LongSupplier value) {
    registry.register(new Collector() {
      @Override
      public MetricSnapshot collect() {
        return UnknownSnapshot.builder().name(name).help(help)
            .dataPoint(UnknownSnapshot.UnknownDataPointSnapshot.builder().value(value.getAsLong()).build())
            .build();
      }

      @Override
      public String getPrometheusName() {
        return name;
      }
    });
  }

  /** Wraps a store so that get and contains (and findMissing, per key) count as incoming requests. */
  public BlobStore meter(BlobStore store) {
    return new MeteredStore(store, this);
  }

  private static final int KINDS = Kind.values().length;

  void countIncoming(String method, Kind kind, boolean hit) {
    countIncoming(method, kind, hit, 1);
  }

  void countIncoming(String method, Kind kind, boolean hit, long times) {
    if (times > 0) {
      incomingPoints[(method.equals("get") ? 0 : 2 * KINDS) + 2 * kind.ordinal() + (hit ? 0 : 1)].inc(times);
    }
  }

  /** The HTTP server's observer: go-http-metrics' three families plus {@code bazel_remote_http_request_total}. */
  public HttpCacheOptions.RequestObserver httpObserver() {
    return new HttpCacheOptions.RequestObserver() {
      @Override
      public void onStart(String handler) {
        httpInflight.labelValues(bounded(handler)).inc();
      }

      @Override
      public void onRequest(String handler, String method, int status, long nanos) {
        onRequest(handler, method, status, nanos, 0);
      }

      @Override
      public void onRequest(String handler, String method, int status, long nanos, long responseBytes) {
        handler = bounded(handler);
        method = bounded(method);
        httpInflight.labelValues(handler).dec();
        String code = Integer.toString(status);
        double seconds = nanos / 1e9;
        httpDuration.labelValues(handler, method, code).observe(seconds);
        if (httpDurationUnprefixed != null) {
          httpDurationUnprefixed.labelValues(handler, method, code).observe(seconds);
        }
        httpResponseSize.labelValues(handler, method, code).observe(responseBytes);
        httpRequests.labelValues(code).inc();
      }
    };
  }

  private static final java.util.Set<String> KNOWN_LABELS = java.util.Set.of("GET", "HEAD", "PUT", "POST",
      "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT", "status", "metrics");

  /** Keeps label cardinality bounded: a client can send any method token; unknown ones become "other". */
  static String bounded(String label) {
    return KNOWN_LABELS.contains(label) ? label : "other";
  }

  /**
   * A global gRPC server interceptor recording go-grpc-prometheus' server metrics and, with
   * {@code accessLog}, one line per call to the {@code io.bazelcache.grpc.access} logger.
   */
  public ServerInterceptor grpcInterceptor(boolean accessLog) {
    return new GrpcInterceptor(grpc, accessLog);
  }

  /**
   * bazel-remote's disk cache metrics, read from {@code disk} at scrape time.
   *
   * @param hardLimit {@code max_size_hard_limit} in bytes, or 0 when unset (then no {@code type="reject"} series)
   */
  public void bindDisk(DiskStore disk, long hardLimit) {
    GaugeWithCallback.builder().name(PREFIX + "disk_cache_size_bytes")
        .help("The current number of bytes in the disk backend (on disk, in 4 KiB blocks)")
        .callback(cb -> cb.call(disk.stats().currentSize())).register(registry);
    GaugeWithCallback.builder().name(PREFIX + "disk_cache_size_bytes_limit")
        .help("The highest number of bytes of the disk backend: evict beyond type=evict, reject uploads "
            + "beyond type=reject")
        .labelNames("type")
        .callback(cb -> {
          cb.call(disk.stats().maxSize(), "evict");
          if (hardLimit > 0) {
            cb.call(hardLimit, "reject");
          }
        }).register(registry);
    GaugeWithCallback.builder().name(PREFIX + "disk_cache_logical_bytes")
        .help("The current number of bytes in the disk backend if they were uncompressed")
        .callback(cb -> cb.call(disk.stats().uncompressedSize())).register(registry);
    CounterWithCallback.builder().name(PREFIX + "disk_cache_evicted_bytes")
        .help("The total number of bytes evicted from the disk backend")
        .callback(cb -> cb.call(disk.evictedBytes())).register(registry);
    CounterWithCallback.builder().name(PREFIX + "disk_cache_overwritten_bytes")
        .help("The total number of bytes removed from the disk backend because an entry was overwritten")
        .callback(cb -> cb.call(disk.overwrittenBytes())).register(registry);
    Summary entryBytes = Summary.builder().name(PREFIX + "disk_cache_entry_bytes")
        .help("The sizes (uncompressed) of the entries added to the disk backend")
        .quantile(0.5, 0.05).quantile(0.9, 0.01).quantile(0.99, 0.001).quantile(1.0, 0.0)
        .withoutExemplars().register(registry);
    disk.onEntryAdded(entryBytes::observe);
    GaugeWithCallback.builder().name(PREFIX + "disk_cache_longest_item_idle_time_seconds")
        .help("The idle time (now - atime) of the last item in the LRU cache, updated once per minute. "
            + "Depending on filesystem mount options (e.g. relatime), the resolution may be measured in 'days' "
            + "and not accurate to the second.")
        .callback(cb -> cb.call(longestIdle.get(disk))).register(registry);
  }

  private final IdleTime longestIdle = new IdleTime();

  /** The least recently used file's idle time from its atime (or mtime if newer), recomputed at most once a minute. */
  static final class IdleTime {
    private long computedAtNanos;
    private double seconds;
    private boolean valid;

    synchronized double get(DiskStore disk) {
      long now = System.nanoTime();
      if (!valid || now - computedAtNanos >= 60_000_000_000L) {
        seconds = compute(disk);
        computedAtNanos = now;
        valid = true;
      }
      return seconds;
    }

    private static double compute(DiskStore disk) {
      Optional<Path> lru = disk.leastRecentlyUsedFile();
      if (lru.isEmpty()) {
        return 0;
      }
      try {
        BasicFileAttributes a = Files.readAttributes(lru.get(), BasicFileAttributes.class);
        long last = Math.max(a.lastAccessTime().toMillis(), a.lastModifiedTime().toMillis());
        return Math.max(0, System.currentTimeMillis() - last) / 1000.0;
      } catch (IOException e) {
        return 0; // evicted in the meantime; the next minute will see the new tail
      }
    }
  }

  /**
   * bazel-remote's S3 counters and ours: requests by operation and status, the upload queue, dropped uploads.
   * Registered always (as bazel-remote does), all zero without {@code s3_proxy}.
   */
  public void bindS3(S3Stats s3) {
    untyped(PREFIX + "s3_cache_hits", "The total number of s3 backend cache hits", s3.cacheHits::get);
    untyped(PREFIX + "s3_cache_misses", "The total number of s3 backend cache misses", s3.cacheMisses::get);
    CounterWithCallback.builder().name(PREFIX + "s3_requests")
        .help("S3 requests by operation (get, head, put, copy) and status (ok, not_found, error)")
        .labelNames("operation", "status")
        .callback(cb -> {
          for (S3Stats.Operation op : S3Stats.Operation.values()) {
            for (S3Stats.Status st : S3Stats.Status.values()) {
              cb.call(s3.requests(op, st), op.name().toLowerCase(), st.name().toLowerCase());
            }
          }
        }).register(registry);
    GaugeWithCallback.builder().name(PREFIX + "s3_upload_queue_length")
        .help("Entries waiting in the write-behind queue for upload to S3")
        .callback(cb -> cb.call(s3.uploadQueueLength())).register(registry);
    CounterWithCallback.builder().name(PREFIX + "s3_uploads_dropped")
        .help("Uploads to S3 dropped because the queue was full (max_queued_uploads) or the server was stopping")
        .callback(cb -> cb.call(s3.uploadsDropped.get())).register(registry);
    CounterWithCallback.builder().name(PREFIX + "s3_uploads")
        .help("Uploads to S3 by result: queued, uploaded, failed (given up after retries)")
        .labelNames("result")
        .callback(cb -> {
          cb.call(s3.uploadsQueued.get(), "queued");
          cb.call(s3.uploadsDone.get(), "uploaded");
          cb.call(s3.uploadsFailed.get(), "failed");
        }).register(registry);
    CounterWithCallback.builder().name(PREFIX + "s3_upload_retries")
        .help("Upload attempts to S3 that failed and were retried")
        .callback(cb -> cb.call(s3.uploadRetries.get())).register(registry);
    CounterWithCallback.builder().name(PREFIX + "s3_corrupt_objects")
        .help("S3 objects whose bytes did not match their digest or were malformed (never served)")
        .callback(cb -> cb.call(s3.corruptObjects.get())).register(registry);
    CounterWithCallback.builder().name(PREFIX + "s3_existence_cache_hits")
        .help("Existence checks answered from remembered positive S3 answers instead of a HEAD")
        .callback(cb -> cb.call(s3.existenceCacheHits.get())).register(registry);
    CounterWithCallback.builder().name(PREFIX + "s3_breaker_rejections")
        .help("S3 requests not sent because the backend was considered down (also counted as errors)")
        .callback(cb -> cb.call(s3.breakerRejections.get())).register(registry);
  }

  /** The {@code /metrics} body: every family in the Prometheus text format 0.0.4. */
  public String scrape() {
    ByteArrayOutputStream out = new ByteArrayOutputStream(64 * 1024);
    try {
      writer.write(out, registry.scrape(), EscapingScheme.UNDERSCORE_ESCAPING);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out.toString(StandardCharsets.UTF_8);
  }

  /** {@link #scrape()} as the HTTP server's {@code metricsPage}. */
  public Supplier<String> page() {
    return this::scrape;
  }

  /** The registry, for tests and for adding more collectors. */
  public PrometheusRegistry registry() {
    return registry;
  }
}
