package io.bazelcache.config;

import static io.bazelcache.config.Status.NOT_YET;
import static io.bazelcache.config.Status.SUPPORTED;

import io.bazelcache.config.Config.AccessLogLevel;
import io.bazelcache.config.Config.AzblobAuthMethod;
import io.bazelcache.config.Config.BucketLookupType;
import io.bazelcache.config.Config.LogTimezone;
import io.bazelcache.config.Config.S3AuthMethod;
import io.bazelcache.config.Config.SignatureType;
import io.bazelcache.config.Config.StorageMode;
import io.bazelcache.config.Config.TlsVersion;
import io.bazelcache.config.Config.ZstdImplementation;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The option table: every bazel-remote flag, YAML key and environment variable, with its type,
 * default, help text and whether this build supports it. This is the only place options are
 * declared; to mark a feature as implemented, change its {@code NOT_YET} to {@code SUPPORTED}.
 */
public final class Options {
  private Options() {}

  /** Every option, in documentation order. */
  public static final List<Option> ALL;

  /** Options by YAML key. */
  private static final Map<String, Option> BY_KEY;

  /** The nested YAML blocks ({@code s3_proxy}, {@code ldap}, ...), in documentation order. */
  public static final Set<String> BLOCKS;

  /** The largest size in GiB whose byte count fits in a long. */
  static final long MAX_GIB = Long.MAX_VALUE >> 30;

  /** The key of the option naming the YAML file. */
  public static final String CONFIG_FILE = "config_file";

  static {
    List<Option> t = new ArrayList<>();

    // ---- Core -------------------------------------------------------------------------------
    t.add(opt(SUPPORTED, CONFIG_FILE, OptionType.STRING).env("BAZEL_REMOTE_CONFIG_FILE").notInYaml()
        .def(null, "").help("Path to a YAML configuration file. Unlike bazel-remote, the file does not"
            + " switch off flags and environment variables: flags override environment variables,"
            + " which override the file, which overrides the defaults.").build());
    t.add(opt(SUPPORTED, "dir", OptionType.STRING).env("BAZEL_REMOTE_DIR")
        .def(null, "$XDG_CACHE_HOME/bazel-cache, else ~/.cache/bazel-cache")
        .help("Directory where the cache contents are stored. bazel-remote requires it; bazel-cache"
            + " defaults it.").build());
    t.add(opt(SUPPORTED, "max_size", OptionType.GIB).env("BAZEL_REMOTE_MAX_SIZE").min(1).max(MAX_GIB)
        .def(5L, "5").help("Maximum size of the disk cache in GiB. bazel-remote requires it;"
            + " bazel-cache defaults to 5.").build());
    t.add(opt(SUPPORTED, "max_size_hard_limit", OptionType.GIB).env("BAZEL_REMOTE_MAX_SIZE_HARD_LIMIT")
        .min(0).max(MAX_GIB).def(0L, "0 (off)")
        .help("If above 0, writes are rejected (HTTP 507) once the cache reaches this many GiB. Must"
            + " not be below max_size.").build());
    t.add(opt(SUPPORTED, "storage_mode", OptionType.ENUM).env("BAZEL_REMOTE_STORAGE_MODE")
        .enumOf(StorageMode.class).def(StorageMode.ZSTD)
        .help("Format to store CAS blobs in.").build());
    t.add(opt(SUPPORTED, "zstd_implementation", OptionType.ENUM).env("BAZEL_REMOTE_ZSTD_IMPLEMENTATION")
        .enumOf(ZstdImplementation.class).def(ZstdImplementation.GO)
        .help("Accepted for compatibility; bazel-cache has one zstd implementation and uses it for"
            + " either value.").build());

    // ---- Listeners ----------------------------------------------------------------------------
    t.add(opt(SUPPORTED, "http_address", OptionType.ADDRESS).env("BAZEL_REMOTE_HTTP_ADDRESS")
        .def(new ListenAddress.Tcp("", 8080), ":8080")
        .help("HTTP listener: [host]:port or unix://path.sock. When unset, host and port are used"
            + " if given. bazel-remote's YAML mode defaults to a random port; bazel-cache always"
            + " defaults to :8080.").build());
    t.add(opt(SUPPORTED, "host", OptionType.STRING).env("BAZEL_REMOTE_HOST").deprecated()
        .def("", "").help("DEPRECATED, use http_address. Host part of the HTTP (and, with"
            + " grpc_port, the gRPC) listener.").build());
    t.add(opt(SUPPORTED, "port", OptionType.INT).env("BAZEL_REMOTE_PORT").deprecated().min(0).max(65535)
        .def(8080, "8080").help("DEPRECATED, use http_address. HTTP port, used only when"
            + " http_address is unset.").build());
    t.add(opt(SUPPORTED, "grpc_address", OptionType.ADDRESS_OR_NONE).env("BAZEL_REMOTE_GRPC_ADDRESS")
        .def(Optional.of(new ListenAddress.Tcp("", 9092)), ":9092")
        .help("gRPC listener: [host]:port or unix://path.sock, or none to disable gRPC. When unset,"
            + " grpc_port is used if given. bazel-remote's YAML mode defaults to a random port;"
            + " bazel-cache always defaults to :9092.").build());
    t.add(opt(SUPPORTED, "grpc_port", OptionType.INT).env("BAZEL_REMOTE_GRPC_PORT").deprecated().min(0)
        .max(65535).def(9092, "9092").help("DEPRECATED, use grpc_address. gRPC port (with host), used"
            + " only when grpc_address is unset; 0 disables gRPC.").build());
    t.add(opt(NOT_YET, "profile_address", OptionType.ADDRESS_OR_NONE).env("BAZEL_REMOTE_PROFILE_ADDRESS")
        .def(Optional.empty(), "none (off)").help("Listener serving /debug/pprof-style profiling"
            + " endpoints: [host]:port, unix://path.sock or none.").build());
    t.add(opt(NOT_YET, "profile_host", OptionType.STRING).env("BAZEL_REMOTE_PROFILE_HOST").deprecated()
        .def("127.0.0.1", "127.0.0.1").help("DEPRECATED, use profile_address. Host for the profiling"
            + " listener when profile_port is above 0.").build());
    t.add(opt(NOT_YET, "profile_port", OptionType.INT).env("BAZEL_REMOTE_PROFILE_PORT").deprecated()
        .min(0).max(65535).def(0, "0 (off)").help("DEPRECATED, use profile_address. If above 0, serve"
            + " profiling on profile_host:profile_port.").build());

    // ---- Timeouts -----------------------------------------------------------------------------
    t.add(opt(SUPPORTED, "http_read_timeout", OptionType.DURATION).env("BAZEL_REMOTE_HTTP_READ_TIMEOUT")
        .def(Duration.ZERO, "0s (off)").help("HTTP read timeout for a client request, Go duration"
            + " syntax (15s, 1m30s).").build());
    t.add(opt(SUPPORTED, "http_write_timeout", OptionType.DURATION).env("BAZEL_REMOTE_HTTP_WRITE_TIMEOUT")
        .def(Duration.ZERO, "0s (off)").help("HTTP write timeout for a server response, Go duration"
            + " syntax.").build());
    t.add(opt(SUPPORTED, "idle_timeout", OptionType.DURATION).env("BAZEL_REMOTE_IDLE_TIMEOUT")
        .def(Duration.ZERO, "0s (off)").help("Shut the server down after receiving no request for"
            + " this long.").build());

    t.add(opt(SUPPORTED, "shutdown_delay", OptionType.DURATION).env("BAZEL_REMOTE_SHUTDOWN_DELAY")
        .def(Duration.ZERO, "0s").help("bazel-cache only. On SIGTERM, keep serving this long while /status"
            + " answers 503 and gRPC health NOT_SERVING, before the listeners close (then requests in"
            + " flight finish and queued S3 uploads drain). Lets a Kubernetes Service drop the pod first;"
            + " the deployment module sets 5s.").build());

    // ---- Authentication and TLS -----------------------------------------------------------------
    t.add(opt(SUPPORTED, "htpasswd_file", OptionType.STRING).env("BAZEL_REMOTE_HTPASSWD_FILE")
        .def("", "").help("Path to an .htpasswd file enabling basic authentication for HTTP and"
            + " gRPC.").build());
    t.add(opt(SUPPORTED, "min_tls_version", OptionType.ENUM).env("BAZEL_REMOTE_MIN_TLS_VERSION")
        .enumOf(TlsVersion.class).def(TlsVersion.TLS_1_0)
        .help("Minimum TLS version accepted from clients.").build());
    t.add(opt(SUPPORTED, "tls_ca_file", OptionType.STRING).env("BAZEL_REMOTE_TLS_CA_FILE")
        .def("", "").help("CA certificate that signed client certificates; enables mTLS. Needs"
            + " tls_cert_file and tls_key_file.").build());
    t.add(opt(SUPPORTED, "tls_cert_file", OptionType.STRING).env("BAZEL_REMOTE_TLS_CERT_FILE")
        .def("", "").help("PEM server certificate; enables HTTPS and gRPCs. Needs tls_key_file.")
        .build());
    t.add(opt(SUPPORTED, "tls_key_file", OptionType.STRING).env("BAZEL_REMOTE_TLS_KEY_FILE")
        .def("", "").help("PEM server private key. Needs tls_cert_file.").build());
    t.add(opt(SUPPORTED, "allow_unauthenticated_reads", OptionType.BOOL)
        .env("BAZEL_REMOTE_UNAUTHENTICATED_READS").def(false)
        .help("With an authentication method configured, let unauthenticated clients read.").build());

    // ---- Limits and uploads --------------------------------------------------------------------
    t.add(opt(SUPPORTED, "max_blob_size", OptionType.LONG).env("BAZEL_REMOTE_MAX_BLOB_SIZE").min(1)
        .def(Long.MAX_VALUE, Long.toString(Long.MAX_VALUE)).help("Largest logical (uncompressed)"
            + " blob size in bytes accepted from clients; also advertised as"
            + " max_cas_blob_size_bytes.").build());
    t.add(opt(SUPPORTED, "max_proxy_blob_size", OptionType.LONG).env("BAZEL_REMOTE_MAX_PROXY_BLOB_SIZE")
        .min(1).def(Long.MAX_VALUE, Long.toString(Long.MAX_VALUE)).help("Largest logical blob size in"
            + " bytes fetched from a proxy backend; larger objects are treated as misses.").build());
    t.add(opt(SUPPORTED, "max_queued_uploads", OptionType.INT).env("BAZEL_REMOTE_MAX_QUEUED_UPLOADS")
        .min(0).def(1_000_000, "1000000").help("Maximum proxy uploads waiting in the queue; further"
            + " uploads are dropped while it is full.").build());
    t.add(opt(SUPPORTED, "num_uploaders", OptionType.INT).env("BAZEL_REMOTE_NUM_UPLOADERS").min(0)
        .def(100, "100").help("Number of parallel proxy uploaders; 0 disables proxy uploads.").build());

    // ---- Action cache behaviour ---------------------------------------------------------------
    t.add(opt(SUPPORTED, "disable_http_ac_validation", OptionType.BOOL)
        .env("BAZEL_REMOTE_DISABLE_HTTP_AC_VALIDATION").def(false)
        .help("Do not check that HTTP action cache uploads are valid ActionResult messages; also"
            + " stores them in the raw namespace instead of ac.").build());
    t.add(opt(SUPPORTED, "disable_grpc_ac_deps_check", OptionType.BOOL)
        .env("BAZEL_REMOTE_DISABLE_GRPS_AC_DEPS_CHECK", "BAZEL_REMOTE_DISABLE_GRPC_AC_DEPS_CHECK")
        .def(false).help("Do not check that the CAS blobs an ActionResult refers to exist on gRPC"
            + " GetActionResult. The first variable name is bazel-remote's (sic).").build());
    t.add(opt(SUPPORTED, "enable_ac_key_instance_mangling", OptionType.BOOL)
        .env("BAZEL_REMOTE_ENABLE_AC_KEY_INSTANCE_MANGLING").def(false)
        .help("Mix non-empty instance names into action cache keys.").build());

    // ---- Metrics, logging, remote asset ----------------------------------------------------------
    t.add(opt(SUPPORTED, "enable_endpoint_metrics", OptionType.BOOL)
        .env("BAZEL_REMOTE_ENABLE_ENDPOINT_METRICS").def(false)
        .help("Export per-endpoint HTTP/gRPC metrics and serve /metrics.").build());
    t.add(opt(SUPPORTED, "endpoint_metrics_duration_buckets", OptionType.NUMBER_LIST).noFlag()
        .def(List.of(0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0), "[.5, 1, 2.5, 5, 10, 20,"
            + " 40, 80, 160, 320]").help("Histogram buckets in seconds for endpoint request durations;"
            + " strictly increasing, positive. YAML only.").build());
    t.add(opt(SUPPORTED, "http_metrics_prefix", OptionType.BOOL).env("BAZEL_REMOTE_HTTP_METRICS_PREFIX")
        .def(false).help("Prefix HTTP metric names with bazel_remote_.").build());
    t.add(opt(SUPPORTED, "experimental_remote_asset_api", OptionType.BOOL)
        .env("BAZEL_REMOTE_EXPERIMENTAL_REMOTE_ASSET_API").def(false)
        .help("Enable the Remote Asset API (Fetch and Push) over gRPC. Needs gRPC.").build());
    t.add(opt(SUPPORTED, "access_log_level", OptionType.ENUM).env("BAZEL_REMOTE_ACCESS_LOG_LEVEL")
        .enumOf(AccessLogLevel.class).def(AccessLogLevel.ALL).help("Access log verbosity.").build());
    t.add(opt(SUPPORTED, "log_timezone", OptionType.ENUM).env("BAZEL_REMOTE_LOG_TIMEZONE")
        .enumOf(LogTimezone.class).def(LogTimezone.UTC)
        .help("Timezone of log timestamps; none omits timestamps.").build());

    // ---- S3 proxy -------------------------------------------------------------------------------
    t.add(opt(SUPPORTED, "s3_proxy.endpoint", OptionType.STRING).flag("--s3.endpoint")
        .env("BAZEL_REMOTE_S3_ENDPOINT").def("", "").help("S3/MinIO endpoint, host[:port] without a"
            + " scheme.").build());
    t.add(opt(SUPPORTED, "s3_proxy.bucket", OptionType.STRING).flag("--s3.bucket")
        .env("BAZEL_REMOTE_S3_BUCKET").def("", "").help("Bucket; a non-empty bucket (or an s3_proxy"
            + " block in the YAML file) enables the S3 proxy backend.").build());
    t.add(opt(SUPPORTED, "s3_proxy.bucket_lookup_type", OptionType.ENUM).flag("--s3.bucket_lookup_type")
        .env("BAZEL_REMOTE_S3_BUCKET_LOOKUP_TYPE").enumOf(BucketLookupType.class)
        .def(BucketLookupType.AUTO).help("Bucket addressing style.").build());
    t.add(opt(SUPPORTED, "s3_proxy.prefix", OptionType.STRING).flag("--s3.prefix")
        .env("BAZEL_REMOTE_S3_PREFIX").def("", "").help("Object key prefix within the bucket.")
        .build());
    t.add(opt(SUPPORTED, "s3_proxy.auth_method", OptionType.ENUM).flag("--s3.auth_method")
        .env("BAZEL_REMOTE_S3_AUTH_METHOD").enumOf(S3AuthMethod.class).def(null, "")
        .help("How to authenticate; required when the S3 backend is enabled.").build());
    t.add(opt(SUPPORTED, "s3_proxy.access_key_id", OptionType.STRING).flag("--s3.access_key_id")
        .env("BAZEL_REMOTE_S3_ACCESS_KEY_ID").def("", "").help("Access key id; required for"
            + " auth_method access_key.").build());
    t.add(opt(SUPPORTED, "s3_proxy.secret_access_key", OptionType.STRING).flag("--s3.secret_access_key")
        .env("BAZEL_REMOTE_S3_SECRET_ACCESS_KEY").def("", "").help("Secret access key; required for"
            + " auth_method access_key.").build());
    t.add(opt(SUPPORTED, "s3_proxy.session_token", OptionType.STRING).flag("--s3.session_token")
        .env("BAZEL_REMOTE_S3_SESSION_TOKEN").def("", "").help("Optional session token for"
            + " auth_method access_key.").build());
    t.add(opt(SUPPORTED, "s3_proxy.signature_type", OptionType.ENUM).flag("--s3.signature_type")
        .env("BAZEL_REMOTE_S3_SIGNATURE_TYPE").enumOf(SignatureType.class).def(SignatureType.V4)
        .help("Request signature type for auth_method access_key.").build());
    t.add(opt(SUPPORTED, "s3_proxy.aws_shared_credentials_file", OptionType.STRING)
        .flag("--s3.aws_shared_credentials_file")
        .env("BAZEL_REMOTE_S3_AWS_SHARED_CREDENTIALS_FILE", "AWS_SHARED_CREDENTIALS_FILE")
        .def("", "~/.aws/credentials").help("AWS credentials file for auth_method"
            + " aws_credentials_file.").build());
    t.add(opt(SUPPORTED, "s3_proxy.aws_profile", OptionType.STRING).flag("--s3.aws_profile")
        .env("BAZEL_REMOTE_S3_AWS_PROFILE", "AWS_PROFILE").def("default", "default")
        .help("Profile within the AWS credentials file.").build());
    t.add(opt(SUPPORTED, "s3_proxy.disable_ssl", OptionType.BOOL).flag("--s3.disable_ssl")
        .env("BAZEL_REMOTE_S3_DISABLE_SSL").def(false).help("Talk plain HTTP to the endpoint.").build());
    t.add(opt(SUPPORTED, "s3_proxy.update_timestamps", OptionType.BOOL).flag("--s3.update_timestamps")
        .env("BAZEL_REMOTE_S3_UPDATE_TIMESTAMPS").def(false).help("Refresh an object's modification"
            + " time (server-side copy) on every cache hit, for lifecycle rules.").build());
    t.add(opt(SUPPORTED, "s3_proxy.iam_role_endpoint", OptionType.STRING).flag("--s3.iam_role_endpoint")
        .env("BAZEL_REMOTE_S3_IAM_ROLE_ENDPOINT").def("", "").help("IAM credentials endpoint for"
            + " auth_method iam_role.").build());
    t.add(opt(SUPPORTED, "s3_proxy.region", OptionType.STRING).flag("--s3.region")
        .env("BAZEL_REMOTE_S3_REGION").def("", "").help("AWS region.").build());
    t.add(opt(SUPPORTED, "s3_proxy.key_version", OptionType.INT).flag("--s3.key_version")
        .env("BAZEL_REMOTE_S3_KEY_VERSION").deprecated().min(2).max(2).def(2, "2")
        .help("DEPRECATED. Object key layout version; only 2 is accepted.").build());
    t.add(opt(SUPPORTED, "s3_proxy.max_idle_conns", OptionType.INT).flag("--s3.max_idle_conns")
        .env("BAZEL_REMOTE_S3_MAX_IDLE_CONNS").min(0).def(1024, "1024")
        .help("Maximum idle connections to the endpoint. bazel-remote documents 1024 but really"
            + " uses 0 (2 per host); bazel-cache really uses 1024.").build());

    // ---- GCS proxy ------------------------------------------------------------------------------
    t.add(opt(NOT_YET, "gcs_proxy.bucket", OptionType.STRING).env("BAZEL_REMOTE_GCS_BUCKET")
        .def("", "").help("Google Cloud Storage bucket; non-empty enables the GCS proxy backend.")
        .build());
    t.add(opt(NOT_YET, "gcs_proxy.use_default_credentials", OptionType.BOOL)
        .env("BAZEL_REMOTE_GCS_USE_DEFAULT_CREDENTIALS").def(false)
        .help("Authenticate with Google application default credentials.").build());
    t.add(opt(NOT_YET, "gcs_proxy.json_credentials_file", OptionType.STRING)
        .env("BAZEL_REMOTE_GCS_JSON_CREDENTIALS_FILE").def("", "")
        .help("Path to a Google JSON credentials file.").build());

    // ---- HTTP proxy -----------------------------------------------------------------------------
    t.add(opt(NOT_YET, "http_proxy.url", OptionType.STRING).env("BAZEL_REMOTE_HTTP_PROXY_URL")
        .def("", "").help("Base URL (http:// or https://) of an HTTP cache backend; non-empty"
            + " enables it.").build());
    t.add(opt(NOT_YET, "http_proxy.key_file", OptionType.STRING).env("BAZEL_REMOTE_HTTP_PROXY_KEY_FILE")
        .def("", "").help("Client key for mTLS to the backend; needs http_proxy.cert_file.").build());
    t.add(opt(NOT_YET, "http_proxy.cert_file", OptionType.STRING).env("BAZEL_REMOTE_HTTP_PROXY_CERT_FILE")
        .def("", "").help("Client certificate for mTLS to the backend; needs http_proxy.key_file.")
        .build());
    t.add(opt(NOT_YET, "http_proxy.ca_file", OptionType.STRING).env("BAZEL_REMOTE_HTTP_PROXY_CA_FILE")
        .def("", "").help("CA certificate to verify the backend.").build());

    // ---- gRPC proxy -----------------------------------------------------------------------------
    t.add(opt(NOT_YET, "grpc_proxy.url", OptionType.STRING).env("BAZEL_REMOTE_GRPC_PROXY_URL")
        .def("", "").help("URL (grpc:// or grpcs://) of a REAPI backend; non-empty enables it.")
        .build());
    t.add(opt(NOT_YET, "grpc_proxy.key_file", OptionType.STRING).env("BAZEL_REMOTE_GRPC_PROXY_KEY_FILE")
        .def("", "").help("Client key for mTLS to the backend; needs grpc_proxy.cert_file.").build());
    t.add(opt(NOT_YET, "grpc_proxy.cert_file", OptionType.STRING).env("BAZEL_REMOTE_GRPC_PROXY_CERT_FILE")
        .def("", "").help("Client certificate for mTLS to the backend; needs grpc_proxy.key_file.")
        .build());
    t.add(opt(NOT_YET, "grpc_proxy.ca_file", OptionType.STRING).env("BAZEL_REMOTE_GRPC_PROXY_CA_FILE")
        .def("", "").help("CA certificate to verify the backend.").build());

    // ---- Azure blob proxy -----------------------------------------------------------------------
    t.add(opt(NOT_YET, "azblob_proxy.tenant_id", OptionType.STRING).flag("--azblob.tenant_id")
        .env("BAZEL_REMOTE_AZBLOB_TENANT_ID", "AZURE_TENANT_ID").def("", "")
        .help("Azure tenant id; a non-empty value set by flag or BAZEL_REMOTE_AZBLOB_TENANT_ID (or an"
            + " azblob_proxy block in the YAML file) enables the Azure blob backend.").build());
    t.add(opt(NOT_YET, "azblob_proxy.storage_account", OptionType.STRING).flag("--azblob.storage_account")
        .env("BAZEL_REMOTE_AZBLOB_STORAGE_ACCOUNT").def("", "").help("Storage account.").build());
    t.add(opt(NOT_YET, "azblob_proxy.container_name", OptionType.STRING).flag("--azblob.container_name")
        .env("BAZEL_REMOTE_AZBLOB_CONTAINER_NAME").def("", "").help("Container name.").build());
    t.add(opt(NOT_YET, "azblob_proxy.prefix", OptionType.STRING).flag("--azblob.prefix")
        .env("BAZEL_REMOTE_AZBLOB_PREFIX").def("", "").help("Object prefix.").build());
    t.add(opt(NOT_YET, "azblob_proxy.update_timestamps", OptionType.BOOL).flag("--azblob.update_timestamps")
        .env("BAZEL_REMOTE_AZBLOB_UPDATE_TIMESTAMPS").def(false)
        .help("Refresh an object's timestamp on every cache hit.").build());
    t.add(opt(NOT_YET, "azblob_proxy.auth_method", OptionType.ENUM).flag("--azblob.auth_method")
        .env("BAZEL_REMOTE_AZBLOB_AUTH_METHOD").enumOf(AzblobAuthMethod.class).def(null, "")
        .help("How to authenticate; required when the Azure blob backend is enabled.").build());
    t.add(opt(NOT_YET, "azblob_proxy.shared_key", OptionType.STRING).flag("--azblob.shared_key")
        .env("BAZEL_REMOTE_AZBLOB_SHARED_KEY", "AZURE_STORAGE_ACCOUNT_KEY").def("", "")
        .help("Storage account key for auth_method shared_key.").build());
    t.add(opt(NOT_YET, "azblob_proxy.client_id", OptionType.STRING).flag("--azblob.client_id")
        .env("BAZEL_REMOTE_AZBLOB_CLIENT_ID", "AZURE_CLIENT_ID").def("", "")
        .help("Client id for auth_method client_secret or client_certificate.").build());
    t.add(opt(NOT_YET, "azblob_proxy.client_secret", OptionType.STRING).flag("--azblob.client_secret")
        .env("BAZEL_REMOTE_AZBLOB_SECRET_CLIENT_SECRET", "AZURE_CLIENT_SECRET").def("", "")
        .help("Client secret for auth_method client_secret. The first variable name is"
            + " bazel-remote's (sic).").build());
    t.add(opt(NOT_YET, "azblob_proxy.cert_path", OptionType.STRING).flag("--azblob.cert_path")
        .env("BAZEL_REMOTE_AZBLOB_CERT_PATH", "AZURE_CLIENT_CERTIFICATE_PATH").def("", "")
        .help("Certificate file for auth_method client_certificate.").build());

    // ---- LDAP -----------------------------------------------------------------------------------
    t.add(opt(NOT_YET, "ldap.url", OptionType.STRING).env("BAZEL_REMOTE_LDAP_URL").def("", "")
        .help("LDAP or LDAPS URL; non-empty enables LDAP authentication (experimental).").build());
    t.add(opt(NOT_YET, "ldap.base_dn", OptionType.STRING).env("BAZEL_REMOTE_LDAP_BASE_DN").def("", "")
        .help("Distinguished name of the search base.").build());
    t.add(opt(NOT_YET, "ldap.bind_user", OptionType.STRING).env("BAZEL_REMOTE_LDAP_BIND_USER")
        .def("", "").help("User that performs the search; empty searches anonymously.").build());
    t.add(opt(NOT_YET, "ldap.bind_password", OptionType.STRING).env("BAZEL_REMOTE_LDAP_BIND_PASSWORD")
        .def("", "").help("Password of the bind user.").build());
    t.add(opt(NOT_YET, "ldap.username_attribute", OptionType.STRING).env("BAZEL_REMOTE_LDAP_USER_ATTRIBUTE")
        .def("uid", "uid").help("Attribute holding the user name.").build());
    t.add(opt(NOT_YET, "ldap.groups_query", OptionType.STRING).env("BAZEL_REMOTE_LDAP_GROUPS_QUERY")
        .def("", "").help("Filter clause for searching groups.").build());
    t.add(opt(NOT_YET, "ldap.cache_time", OptionType.INT).env("BAZEL_REMOTE_LDAP_CACHE_TIME").min(0)
        .def(3600, "3600").help("Seconds to cache a successful authentication.").build());

    ALL = List.copyOf(t);
    Map<String, Option> byKey = new LinkedHashMap<>();
    Set<String> blocks = new LinkedHashSet<>();
    Set<String> names = new LinkedHashSet<>();
    for (Option o : ALL) {
      if (byKey.put(o.key(), o) != null) {
        throw new IllegalStateException("duplicate option key " + o.key());
      }
      if (o.block() != null) {
        blocks.add(o.block());
      }
      for (String n : o.flags()) {
        if (!names.add(n)) {
          throw new IllegalStateException("duplicate flag " + n);
        }
      }
      for (String n : o.envVars()) {
        if (!names.add(n)) {
          throw new IllegalStateException("duplicate environment variable " + n);
        }
      }
    }
    BY_KEY = Map.copyOf(byKey);
    BLOCKS = java.util.Collections.unmodifiableSet(blocks);
  }

  /** The option with this YAML key, or null. */
  public static Option byKey(String key) {
    return BY_KEY.get(key);
  }

  /** Same as {@link #byKey} but fails for unknown keys (a programming error). */
  static Option require(String key) {
    Option o = BY_KEY.get(key);
    if (o == null) {
      throw new IllegalArgumentException("no option " + key);
    }
    return o;
  }

  private static Builder opt(Status status, String key, OptionType type) {
    return new Builder(status, key, type);
  }

  /** Flag prefixes that differ from the YAML block name. */
  private static String defaultFlag(String key) {
    String flag = key;
    if (key.startsWith("s3_proxy.")) {
      flag = "s3." + key.substring("s3_proxy.".length());
    } else if (key.startsWith("azblob_proxy.")) {
      flag = "azblob." + key.substring("azblob_proxy.".length());
    }
    return "--" + flag;
  }

  private static final class Builder {
    private final Status status;
    private final String key;
    private final OptionType type;
    private List<String> flags;
    private List<String> env = List.of();
    private boolean inYaml = true;
    private Object def;
    private String defText;
    private Class<? extends Enum<?>> enumClass;
    private Long min;
    private Long max;
    private boolean deprecated;
    private String help = "";

    Builder(Status status, String key, OptionType type) {
      this.status = status;
      this.key = key;
      this.type = type;
      this.flags = List.of(defaultFlag(key));
    }

    Builder flag(String... names) {
      flags = List.of(names);
      return this;
    }

    Builder noFlag() {
      flags = List.of();
      return this;
    }

    Builder env(String... names) {
      env = List.of(names);
      return this;
    }

    Builder notInYaml() {
      inYaml = false;
      return this;
    }

    Builder def(Object value) {
      return def(value, null);
    }

    Builder def(Object value, String text) {
      def = value;
      defText = text;
      return this;
    }

    Builder enumOf(Class<? extends Enum<?>> c) {
      enumClass = c;
      return this;
    }

    Builder min(long v) {
      min = v;
      return this;
    }

    Builder max(long v) {
      max = v;
      return this;
    }

    Builder deprecated() {
      deprecated = true;
      return this;
    }

    Builder help(String text) {
      help = text;
      return this;
    }

    Option build() {
      Option o = new Option(key, status, type, flags, env, inYaml, def, defText, enumClass, min, max,
          deprecated, help);
      String text = defText != null ? defText : o.format(def);
      return new Option(key, status, type, flags, env, inYaml, def, text, enumClass, min, max,
          deprecated, help);
    }
  }
}
