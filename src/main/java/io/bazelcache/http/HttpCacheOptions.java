package io.bazelcache.http;

import io.netty.handler.ssl.SslContext;
import java.time.Duration;
import java.util.function.Supplier;

/**
 * Settings of the HTTP cache endpoint. Start from {@link #defaults()} or {@link #builder()}.
 *
 * @param maxBlobSize largest logical (uncompressed) entry accepted by PUT; larger uploads get 413
 * @param disableHttpAcValidation store HTTP {@code /ac/} entries under kind RAW in the CAS/RAW store without parsing
 *     them (bazel-remote's {@code disable_http_ac_validation})
 * @param enableAcKeyInstanceMangling AC keys under a non-empty instance become
 *     {@code hex(sha256(utf8(hash + instance)))} (bazel-remote's {@code enable_ac_key_instance_mangling})
 * @param maxActionResultSize largest validated AC entry, which is parsed in memory; larger uploads get 413
 * @param gitCommit reported by {@code /status} as {@code GitCommit}
 * @param gitTags reported by {@code /status} as {@code GitTags}
 * @param zstdLevel compression level used when a client asks for zstd and the store has no compressed copy
 * @param zeroCopy send files with sendfile when the store offers them (turned off automatically under TLS)
 * @param ioThreads Netty event-loop threads (0: Netty's default, twice the cores)
 * @param maxInitialLineLength longest request line accepted (longer: 414)
 * @param maxHeaderSize largest header block accepted (larger: 431)
 * @param shutdownGrace how long {@link HttpCacheServer#close()} lets requests in flight finish
 * @param readTimeout zero for none (bazel-remote's default); otherwise a connection is closed when nothing arrives
 *     from the client for this long while we wait for it: between requests (keep-alive idle, as Go uses ReadTimeout
 *     when IdleTimeout is unset) or in the middle of a request body. Unlike Go's http_read_timeout it bounds
 *     inactivity, not the whole request, so large uploads on slow links still work
 * @param writeTimeout zero for none; otherwise a connection is closed when the client takes none of our response
 *     for this long (again inactivity, not the whole response as Go's http_write_timeout)
 * @param accessLog log one line per request to the {@code io.bazelcache.http.access} logger at INFO
 * @param observer told about every finished request (for metrics); never null
 * @param metricsPage the body of {@code GET /metrics} (Prometheus text), or null to answer 404 as bazel-remote does
 *     without {@code enable_endpoint_metrics}
 * @param authorizer decides from the {@code Authorization} header (and the TLS session) whether a request may
 *     proceed (401 with {@code WWW-Authenticate: Basic realm="bazel-cache"} otherwise; an upload body is not read), or
 *     null to allow everything. {@code GET|HEAD /status} is never asked about: it stays open for readiness probes
 * @param sslContext serve HTTPS with this server context (built by the caller from tls_cert_file / tls_key_file, with
 *     client authentication for tls_ca_file), or null for plain HTTP; zero-copy is off under TLS
 */
public record HttpCacheOptions(
    long maxBlobSize,
    boolean disableHttpAcValidation,
    boolean enableAcKeyInstanceMangling,
    long maxActionResultSize,
    String gitCommit,
    String gitTags,
    int zstdLevel,
    boolean zeroCopy,
    int ioThreads,
    int maxInitialLineLength,
    int maxHeaderSize,
    Duration shutdownGrace,
    Duration readTimeout,
    Duration writeTimeout,
    boolean accessLog,
    RequestObserver observer,
    Supplier<String> metricsPage,
    Authorizer authorizer,
    SslContext sslContext) {

  public static final long DEFAULT_MAX_ACTION_RESULT_SIZE = 64L << 20;

  /** Whether a request is a read (GET, HEAD: cache entries, /metrics) or anything else (a write). */
  public enum Access {
    READ,
    WRITE
  }

  /** Authentication hook (htpasswd, LDAP, ...); runs on the connection's virtual thread, so it may block. */
  @FunctionalInterface
  public interface Authorizer {
    /**
     * @param authorization the request's {@code Authorization} header, or null
     * @return whether the request may proceed
     */
    boolean permits(Access access, String authorization);

    /**
     * The form the server calls: also sees the connection's TLS session (null over plain HTTP), so that a verified
     * client certificate (mTLS) can stand in for credentials. Defaults to {@link #permits(Access, String)}.
     */
    default boolean permits(Access access, String authorization, javax.net.ssl.SSLSession tls) {
      return permits(access, authorization);
    }
  }

  /** Receives one call per finished request, on the connection's thread; must not block. */
  @FunctionalInterface
  public interface RequestObserver {
    /**
     * @param handler bazel-remote's metric label: the method ({@code GET}, {@code PUT}, {@code HEAD}, ...) for cache
     *     requests, {@code status} for /status, {@code metrics} for /metrics
     * @param status the HTTP status sent (0 if the client went away before any response)
     */
    void onRequest(String handler, String method, int status, long nanos);
  }

  public HttpCacheOptions {
    if (maxBlobSize <= 0) {
      throw new IllegalArgumentException("maxBlobSize must be > 0");
    }
    if (maxActionResultSize <= 0 || maxActionResultSize > Integer.MAX_VALUE - 64) {
      throw new IllegalArgumentException("maxActionResultSize must be in (0, 2 GiB)");
    }
    if (maxInitialLineLength < 256 || maxHeaderSize < 1024) {
      throw new IllegalArgumentException("request line / header limits are too small");
    }
    if (ioThreads < 0) {
      throw new IllegalArgumentException("ioThreads must be >= 0");
    }
    if (zstdLevel < -7 || zstdLevel > 22) {
      throw new IllegalArgumentException("zstdLevel must be in [-7, 22]");
    }
    gitCommit = gitCommit == null ? "" : gitCommit;
    gitTags = gitTags == null ? "" : gitTags;
    shutdownGrace = shutdownGrace == null ? Duration.ofSeconds(10) : shutdownGrace;
    readTimeout = readTimeout == null || readTimeout.isNegative() ? Duration.ZERO : readTimeout;
    writeTimeout = writeTimeout == null || writeTimeout.isNegative() ? Duration.ZERO : writeTimeout;
    observer = observer == null ? (h, m, s, n) -> {} : observer;
  }

  /** bazel-remote's defaults: no size limit, AC validation on, no key mangling, no timeouts. */
  public static HttpCacheOptions defaults() {
    return builder().build();
  }

  public static Builder builder() {
    return new Builder();
  }

  public Builder toBuilder() {
    Builder b = new Builder();
    b.maxBlobSize = maxBlobSize;
    b.disableHttpAcValidation = disableHttpAcValidation;
    b.enableAcKeyInstanceMangling = enableAcKeyInstanceMangling;
    b.maxActionResultSize = maxActionResultSize;
    b.gitCommit = gitCommit;
    b.gitTags = gitTags;
    b.zstdLevel = zstdLevel;
    b.zeroCopy = zeroCopy;
    b.ioThreads = ioThreads;
    b.maxInitialLineLength = maxInitialLineLength;
    b.maxHeaderSize = maxHeaderSize;
    b.shutdownGrace = shutdownGrace;
    b.readTimeout = readTimeout;
    b.writeTimeout = writeTimeout;
    b.accessLog = accessLog;
    b.observer = observer;
    b.metricsPage = metricsPage;
    b.authorizer = authorizer;
    b.sslContext = sslContext;
    return b;
  }

  public HttpCacheOptions withMaxBlobSize(long v) {
    return toBuilder().maxBlobSize(v).build();
  }

  public HttpCacheOptions withDisableHttpAcValidation(boolean v) {
    return toBuilder().disableHttpAcValidation(v).build();
  }

  public HttpCacheOptions withEnableAcKeyInstanceMangling(boolean v) {
    return toBuilder().enableAcKeyInstanceMangling(v).build();
  }

  public HttpCacheOptions withGit(String commit, String tags) {
    return toBuilder().gitCommit(commit).gitTags(tags).build();
  }

  public HttpCacheOptions withZeroCopy(boolean v) {
    return toBuilder().zeroCopy(v).build();
  }

  public HttpCacheOptions withIoThreads(int v) {
    return toBuilder().ioThreads(v).build();
  }

  public HttpCacheOptions withShutdownGrace(Duration v) {
    return toBuilder().shutdownGrace(v).build();
  }

  /** Both {@link #readTimeout()} and {@link #writeTimeout()}. */
  public HttpCacheOptions withTimeouts(Duration v) {
    return toBuilder().readTimeout(v).writeTimeout(v).build();
  }

  /** Mutable builder with the defaults of {@link #defaults()}. */
  public static final class Builder {
    private long maxBlobSize = Long.MAX_VALUE;
    private boolean disableHttpAcValidation;
    private boolean enableAcKeyInstanceMangling;
    private long maxActionResultSize = DEFAULT_MAX_ACTION_RESULT_SIZE;
    private String gitCommit = "";
    private String gitTags = "";
    private int zstdLevel = 1;
    private boolean zeroCopy = true;
    private int ioThreads;
    private int maxInitialLineLength = 8192;
    private int maxHeaderSize = 16384;
    private Duration shutdownGrace = Duration.ofSeconds(10);
    private Duration readTimeout = Duration.ZERO;
    private Duration writeTimeout = Duration.ZERO;
    private boolean accessLog = true;
    private RequestObserver observer;
    private Supplier<String> metricsPage;
    private Authorizer authorizer;
    private SslContext sslContext;

    private Builder() {}

    public Builder sslContext(SslContext v) {
      sslContext = v;
      return this;
    }

    public Builder authorizer(Authorizer v) {
      authorizer = v;
      return this;
    }

    public Builder maxBlobSize(long v) {
      maxBlobSize = v;
      return this;
    }

    public Builder disableHttpAcValidation(boolean v) {
      disableHttpAcValidation = v;
      return this;
    }

    public Builder enableAcKeyInstanceMangling(boolean v) {
      enableAcKeyInstanceMangling = v;
      return this;
    }

    public Builder maxActionResultSize(long v) {
      maxActionResultSize = v;
      return this;
    }

    public Builder gitCommit(String v) {
      gitCommit = v;
      return this;
    }

    public Builder gitTags(String v) {
      gitTags = v;
      return this;
    }

    public Builder zstdLevel(int v) {
      zstdLevel = v;
      return this;
    }

    public Builder zeroCopy(boolean v) {
      zeroCopy = v;
      return this;
    }

    public Builder ioThreads(int v) {
      ioThreads = v;
      return this;
    }

    public Builder maxInitialLineLength(int v) {
      maxInitialLineLength = v;
      return this;
    }

    public Builder maxHeaderSize(int v) {
      maxHeaderSize = v;
      return this;
    }

    public Builder shutdownGrace(Duration v) {
      shutdownGrace = v;
      return this;
    }

    public Builder readTimeout(Duration v) {
      readTimeout = v;
      return this;
    }

    public Builder writeTimeout(Duration v) {
      writeTimeout = v;
      return this;
    }

    public Builder accessLog(boolean v) {
      accessLog = v;
      return this;
    }

    public Builder observer(RequestObserver v) {
      observer = v;
      return this;
    }

    public Builder metricsPage(Supplier<String> v) {
      metricsPage = v;
      return this;
    }

    public HttpCacheOptions build() {
      return new HttpCacheOptions(maxBlobSize, disableHttpAcValidation, enableAcKeyInstanceMangling,
          maxActionResultSize, gitCommit, gitTags, zstdLevel, zeroCopy, ioThreads, maxInitialLineLength,
          maxHeaderSize, shutdownGrace, readTimeout, writeTimeout, accessLog, observer, metricsPage, authorizer,
          sslContext);
    }
  }
}
