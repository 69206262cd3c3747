package io.bazelcache.config;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The resolved, validated configuration: defaults, overridden by the YAML file, overridden by
 * environment variables, overridden by flags. Immutable. Build it with {@link ConfigLoader}.
 */
public final class Config {
  /** Bytes per GiB, the unit of {@code max_size} and {@code max_size_hard_limit}. */
  public static final long GIB = 1L << 30;

  private final Map<String, Object> values;
  private final Map<String, String> sources;
  private final Path dir;
  private final ListenAddress httpAddress;
  private final Optional<ListenAddress> grpcAddress;
  private final Optional<ListenAddress> profileAddress;
  private final Optional<String> proxyBackend;
  private final Optional<String> authMethod;
  private final Optional<Path> configFile;
  private final boolean helpRequested;
  private final List<String> warnings;

  Config(
      Map<String, Object> values,
      Map<String, String> sources,
      Path dir,
      ListenAddress httpAddress,
      Optional<ListenAddress> grpcAddress,
      Optional<ListenAddress> profileAddress,
      Optional<String> proxyBackend,
      Optional<String> authMethod,
      Optional<Path> configFile,
      boolean helpRequested,
      List<String> warnings) {
    this.values = Collections.unmodifiableMap(values);
    this.sources = Collections.unmodifiableMap(sources);
    this.dir = dir;
    this.httpAddress = httpAddress;
    this.grpcAddress = grpcAddress;
    this.profileAddress = profileAddress;
    this.proxyBackend = proxyBackend;
    this.authMethod = authMethod;
    this.configFile = configFile;
    this.helpRequested = helpRequested;
    this.warnings = List.copyOf(warnings);
  }

  /**
   * Things worth logging at startup that did not stop loading, for example an ignored Kubernetes
   * service-link variable.
   */
  public List<String> warnings() {
    return warnings;
  }

  /**
   * True when {@code --help} was given. Nothing else was read or validated then: print {@link
   * ConfigLoader#helpText()} and exit 0.
   */
  public boolean helpRequested() {
    return helpRequested;
  }

  // ---- generic access ------------------------------------------------------------------------

  /** The typed value of any option by YAML key (null when unset and without default). */
  public Object get(String key) {
    Options.require(key);
    return values.get(key);
  }

  /**
   * Where the value of {@code key} came from: {@code --flag}, an environment variable name, the
   * config file path, or {@code default}.
   */
  public String source(String key) {
    Options.require(key);
    return sources.getOrDefault(key, "default");
  }

  /** Whether {@code key} was given explicitly (by flag, environment or YAML). */
  public boolean isSet(String key) {
    return !source(key).equals("default");
  }

  private String str(String key) {
    Object v = get(key);
    return v == null ? "" : (String) v;
  }

  private boolean bool(String key) {
    return (Boolean) get(key);
  }

  private int integer(String key) {
    return (Integer) get(key);
  }

  private long lng(String key) {
    return (Long) get(key);
  }

  private Duration duration(String key) {
    return (Duration) get(key);
  }

  private <E> E enumValue(String key, Class<E> c) {
    return c.cast(get(key));
  }

  // ---- core ------------------------------------------------------------------------------------

  /** The YAML file that was read, if any. */
  public Optional<Path> configFile() {
    return configFile;
  }

  /** The cache directory (not yet created or resolved). */
  public Path dir() {
    return dir;
  }

  /** {@code max_size} in GiB. */
  public long maxSizeGiB() {
    return lng("max_size");
  }

  /** {@code max_size} in bytes. */
  public long maxSizeBytes() {
    return Math.multiplyExact(maxSizeGiB(), GIB);
  }

  /** {@code max_size_hard_limit} in GiB; 0 means off. */
  public long maxSizeHardLimitGiB() {
    return lng("max_size_hard_limit");
  }

  /** {@code max_size_hard_limit} in bytes, or empty when off. */
  public Optional<Long> maxSizeHardLimitBytes() {
    long g = maxSizeHardLimitGiB();
    return g == 0 ? Optional.empty() : Optional.of(Math.multiplyExact(g, GIB));
  }

  public StorageMode storageMode() {
    return enumValue("storage_mode", StorageMode.class);
  }

  public ZstdImplementation zstdImplementation() {
    return enumValue("zstd_implementation", ZstdImplementation.class);
  }

  // ---- listeners ---------------------------------------------------------------------------------

  /** The HTTP listener (after folding in the deprecated host/port). */
  public ListenAddress httpAddress() {
    return httpAddress;
  }

  /** The gRPC listener, or empty when gRPC is disabled. */
  public Optional<ListenAddress> grpcAddress() {
    return grpcAddress;
  }

  /** The profiling listener, or empty when off. */
  public Optional<ListenAddress> profileAddress() {
    return profileAddress;
  }

  public Duration httpReadTimeout() {
    return duration("http_read_timeout");
  }

  public Duration httpWriteTimeout() {
    return duration("http_write_timeout");
  }

  public Duration idleTimeout() {
    return duration("idle_timeout");
  }

  /** How long to keep serving, reported as not ready, between SIGTERM and closing the listeners. */
  public Duration shutdownDelay() {
    return duration("shutdown_delay");
  }

  // ---- auth and TLS --------------------------------------------------------------------------------

  public String htpasswdFile() {
    return str("htpasswd_file");
  }

  public TlsVersion minTlsVersion() {
    return enumValue("min_tls_version", TlsVersion.class);
  }

  public String tlsCaFile() {
    return str("tls_ca_file");
  }

  public String tlsCertFile() {
    return str("tls_cert_file");
  }

  public String tlsKeyFile() {
    return str("tls_key_file");
  }

  /** Whether TLS (HTTPS and gRPCs) is configured. */
  public boolean tlsEnabled() {
    return !tlsCertFile().isEmpty();
  }

  public boolean allowUnauthenticatedReads() {
    return bool("allow_unauthenticated_reads");
  }

  /** The configured authentication method: {@code htpasswd}, {@code mtls} or {@code ldap}. */
  public Optional<String> authMethod() {
    return authMethod;
  }

  // ---- limits ------------------------------------------------------------------------------------

  public long maxBlobSize() {
    return lng("max_blob_size");
  }

  public long maxProxyBlobSize() {
    return lng("max_proxy_blob_size");
  }

  public int maxQueuedUploads() {
    return integer("max_queued_uploads");
  }

  public int numUploaders() {
    return integer("num_uploaders");
  }

  // ---- action cache ------------------------------------------------------------------------------

  public boolean disableHttpAcValidation() {
    return bool("disable_http_ac_validation");
  }

  public boolean disableGrpcAcDepsCheck() {
    return bool("disable_grpc_ac_deps_check");
  }

  public boolean enableAcKeyInstanceMangling() {
    return bool("enable_ac_key_instance_mangling");
  }

  // ---- metrics, logging, remote asset --------------------------------------------------------------

  public boolean enableEndpointMetrics() {
    return bool("enable_endpoint_metrics");
  }

  /** Histogram buckets in seconds, strictly increasing. */
  @SuppressWarnings("unchecked")
  public List<Double> endpointMetricsDurationBuckets() {
    return (List<Double>) get("endpoint_metrics_duration_buckets");
  }

  public boolean httpMetricsPrefix() {
    return bool("http_metrics_prefix");
  }

  public boolean experimentalRemoteAssetApi() {
    return bool("experimental_remote_asset_api");
  }

  public AccessLogLevel accessLogLevel() {
    return enumValue("access_log_level", AccessLogLevel.class);
  }

  public LogTimezone logTimezone() {
    return enumValue("log_timezone", LogTimezone.class);
  }

  // ---- proxies -------------------------------------------------------------------------------------

  /**
   * The enabled proxy backend's YAML block name ({@code s3_proxy}, {@code gcs_proxy}, {@code
   * http_proxy}, {@code grpc_proxy} or {@code azblob_proxy}), or empty. At most one is enabled.
   */
  public Optional<String> proxyBackend() {
    return proxyBackend;
  }

  /** The S3 backend settings, when it is the enabled proxy. */
  public Optional<S3Proxy> s3Proxy() {
    if (!proxyBackend.equals(Optional.of("s3_proxy"))) {
      return Optional.empty();
    }
    return Optional.of(
        new S3Proxy(
            str("s3_proxy.endpoint"),
            str("s3_proxy.bucket"),
            enumValue("s3_proxy.bucket_lookup_type", BucketLookupType.class),
            str("s3_proxy.prefix"),
            enumValue("s3_proxy.auth_method", S3AuthMethod.class),
            str("s3_proxy.access_key_id"),
            str("s3_proxy.secret_access_key"),
            str("s3_proxy.session_token"),
            enumValue("s3_proxy.signature_type", SignatureType.class),
            str("s3_proxy.aws_shared_credentials_file"),
            str("s3_proxy.aws_profile"),
            bool("s3_proxy.disable_ssl"),
            bool("s3_proxy.update_timestamps"),
            str("s3_proxy.iam_role_endpoint"),
            str("s3_proxy.region"),
            integer("s3_proxy.max_idle_conns")));
  }

  /** The GCS backend settings, when it is the enabled proxy. */
  public Optional<GcsProxy> gcsProxy() {
    if (!proxyBackend.equals(Optional.of("gcs_proxy"))) {
      return Optional.empty();
    }
    return Optional.of(
        new GcsProxy(
            str("gcs_proxy.bucket"),
            bool("gcs_proxy.use_default_credentials"),
            str("gcs_proxy.json_credentials_file")));
  }

  /** The HTTP backend settings, when it is the enabled proxy. */
  public Optional<RemoteProxy> httpProxy() {
    return remote("http_proxy");
  }

  /** The gRPC backend settings, when it is the enabled proxy. */
  public Optional<RemoteProxy> grpcProxy() {
    return remote("grpc_proxy");
  }

  private Optional<RemoteProxy> remote(String block) {
    if (!proxyBackend.equals(Optional.of(block))) {
      return Optional.empty();
    }
    return Optional.of(
        new RemoteProxy(
            str(block + ".url"),
            str(block + ".key_file"),
            str(block + ".cert_file"),
            str(block + ".ca_file")));
  }

  /** The Azure blob backend settings, when it is the enabled proxy. */
  public Optional<AzblobProxy> azblobProxy() {
    if (!proxyBackend.equals(Optional.of("azblob_proxy"))) {
      return Optional.empty();
    }
    return Optional.of(
        new AzblobProxy(
            str("azblob_proxy.tenant_id"),
            str("azblob_proxy.storage_account"),
            str("azblob_proxy.container_name"),
            str("azblob_proxy.prefix"),
            bool("azblob_proxy.update_timestamps"),
            enumValue("azblob_proxy.auth_method", AzblobAuthMethod.class),
            str("azblob_proxy.shared_key"),
            str("azblob_proxy.client_id"),
            str("azblob_proxy.client_secret"),
            str("azblob_proxy.cert_path")));
  }

  /** The LDAP settings, when LDAP authentication is enabled. */
  public Optional<Ldap> ldap() {
    if (!authMethod.equals(Optional.of("ldap"))) {
      return Optional.empty();
    }
    return Optional.of(
        new Ldap(
            str("ldap.url"),
            str("ldap.base_dn"),
            str("ldap.bind_user"),
            str("ldap.bind_password"),
            str("ldap.username_attribute"),
            str("ldap.groups_query"),
            Duration.ofSeconds(integer("ldap.cache_time"))));
  }

  @Override
  public String toString() {
    StringBuilder sb = new StringBuilder("Config{");
    for (Option o : Options.ALL) {
      if (isSet(o.key())) {
        boolean secret = o.key().contains("secret") || o.key().contains("password")
            || o.key().endsWith("session_token") || o.key().endsWith("shared_key")
            || o.key().endsWith("access_key_id");
        sb.append(o.key()).append('=').append(secret ? "***" : o.format(values.get(o.key())))
            .append(" (").append(source(o.key())).append("), ");
      }
    }
    return sb.append("dir=").append(dir).append(", http=").append(httpAddress).append(", grpc=")
        .append(grpcAddress.map(Object::toString).orElse("none")).append('}').toString();
  }

  // ---- value types -----------------------------------------------------------------------------------

  public record S3Proxy(
      String endpoint,
      String bucket,
      BucketLookupType bucketLookupType,
      String prefix,
      S3AuthMethod authMethod,
      String accessKeyId,
      String secretAccessKey,
      String sessionToken,
      SignatureType signatureType,
      String awsSharedCredentialsFile,
      String awsProfile,
      boolean disableSsl,
      boolean updateTimestamps,
      String iamRoleEndpoint,
      String region,
      int maxIdleConns) {
    @Override
    public String toString() {
      return "S3Proxy[endpoint=" + endpoint + ", bucket=" + bucket + ", prefix=" + prefix
          + ", authMethod=" + authMethod + "]";
    }
  }

  public record GcsProxy(String bucket, boolean useDefaultCredentials, String jsonCredentialsFile) {}

  public record RemoteProxy(String url, String keyFile, String certFile, String caFile) {}

  public record AzblobProxy(
      String tenantId,
      String storageAccount,
      String containerName,
      String prefix,
      boolean updateTimestamps,
      AzblobAuthMethod authMethod,
      String sharedKey,
      String clientId,
      String clientSecret,
      String certPath) {
    @Override
    public String toString() {
      return "AzblobProxy[storageAccount=" + storageAccount + ", container=" + containerName + "]";
    }
  }

  public record Ldap(
      String url,
      String baseDn,
      String bindUser,
      String bindPassword,
      String usernameAttribute,
      String groupsQuery,
      Duration cacheTime) {
    @Override
    public String toString() {
      return "Ldap[url=" + url + ", baseDn=" + baseDn + "]";
    }
  }

  // ---- enums -------------------------------------------------------------------------------------------

  public enum StorageMode implements ConfigEnum {
    ZSTD("zstd"),
    UNCOMPRESSED("uncompressed");

    private final String name;

    StorageMode(String name) {
      this.name = name;
    }

    @Override
    public String configName() {
      return name;
    }
  }

  public enum ZstdImplementation implements ConfigEnum {
    GO("go"),
    CGO("cgo");

    private final String name;

    ZstdImplementation(String name) {
      this.name = name;
    }

    @Override
    public String configName() {
      return name;
    }
  }

  public enum AccessLogLevel implements ConfigEnum {
    NONE("none"),
    ALL("all");

    private final String name;

    AccessLogLevel(String name) {
      this.name = name;
    }

    @Override
    public String configName() {
      return name;
    }
  }

  public enum LogTimezone implements ConfigEnum {
    UTC("UTC"),
    LOCAL("local"),
    NONE("none");

    private final String name;

    LogTimezone(String name) {
      this.name = name;
    }

    @Override
    public String configName() {
      return name;
    }
  }

  public enum TlsVersion implements ConfigEnum {
    TLS_1_0("1.0", "TLSv1"),
    TLS_1_1("1.1", "TLSv1.1"),
    TLS_1_2("1.2", "TLSv1.2"),
    TLS_1_3("1.3", "TLSv1.3");

    private final String name;
    private final String jsseName;

    TlsVersion(String name, String jsseName) {
      this.name = name;
      this.jsseName = jsseName;
    }

    @Override
    public String configName() {
      return name;
    }

    /** The JSSE protocol name, for example {@code TLSv1.2}. */
    public String jsseName() {
      return jsseName;
    }
  }

  public enum S3AuthMethod implements ConfigEnum {
    ACCESS_KEY("access_key"),
    IAM_ROLE("iam_role"),
    AWS_CREDENTIALS_FILE("aws_credentials_file");

    private final String name;

    S3AuthMethod(String name) {
      this.name = name;
    }

    @Override
    public String configName() {
      return name;
    }
  }

  public enum BucketLookupType implements ConfigEnum {
    AUTO("auto"),
    DNS("dns"),
    PATH("path");

    private final String name;

    BucketLookupType(String name) {
      this.name = name;
    }

    @Override
    public String configName() {
      return name;
    }
  }

  public enum SignatureType implements ConfigEnum {
    V2("v2"),
    V4("v4"),
    V4_STREAMING("v4streaming"),
    ANONYMOUS("anonymous");

    private final String name;

    SignatureType(String name) {
      this.name = name;
    }

    @Override
    public String configName() {
      return name;
    }
  }

  public enum AzblobAuthMethod implements ConfigEnum {
    CLIENT_CERTIFICATE("client_certificate"),
    CLIENT_SECRET("client_secret"),
    ENVIRONMENT_CREDENTIAL("environment_credential"),
    SHARED_KEY("shared_key"),
    DEFAULT("default");

    private final String name;

    AzblobAuthMethod(String name) {
      this.name = name;
    }

    @Override
    public String configName() {
      return name;
    }
  }
}
