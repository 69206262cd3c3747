package io.bazelcache.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Each bad configuration fails with one line that starts with the offending key. */
class ConfigValidationTest {
  @TempDir Path tmp;

  private static final String S3 = """
      s3_proxy:
        endpoint: minio:9000
        bucket: b
        auth_method: access_key
        access_key_id: k
        secret_access_key: s
      """;

  /** name, YAML (or null), env (k=v pairs), args, expected key, expected message start. */
  static Stream<Arguments> cases() {
    return Stream.of(
        // sizes
        c("zero max_size flag", null, env(), args("--max_size=0"), "max_size",
            "max_size: must be a whole number of GiB of at least 1, got 0 (from --max_size)"),
        c("negative max_size env", null, env("BAZEL_REMOTE_MAX_SIZE", "-3"), args(), "max_size",
            "max_size: must be a whole number of GiB of at least 1, got -3 (from BAZEL_REMOTE_MAX_SIZE)"),
        c("max_size text", null, env(), args("--max_size=lots"), "max_size",
            "max_size: must be a whole number of GiB, got 'lots'"),
        c("max_size too large", null, env(), args("--max_size=9000000000"), "max_size",
            "max_size: must be a whole number of GiB of at most 8589934591, got 9000000000"),
        c("negative hard limit", null, env(), args("--max_size_hard_limit=-1"), "max_size_hard_limit",
            "max_size_hard_limit: must be a whole number of GiB of at least 0, got -1"),
        c("zero max_blob_size", null, env(), args("--max_blob_size=0"), "max_blob_size",
            "max_blob_size: must be an integer of at least 1, got 0"),
        c("zero max_proxy_blob_size", "max_proxy_blob_size: 0\n", env(), args(), "max_proxy_blob_size",
            "max_proxy_blob_size: must be an integer of at least 1, got 0 (in "),
        c("hard limit below max_size", null, env(), args("--max_size=10", "--max_size_hard_limit=5"),
            "max_size_hard_limit", "max_size_hard_limit: 5 GiB is below max_size (10 GiB)"),
        c("port out of range", null, env(), args("--port=70000"), "port",
            "port: must be an integer from 0 to 65535, got 70000"),
        // wrong YAML types
        c("max_size string in YAML", "max_size: ten\n", env(), args(), "max_size",
            "max_size: expected a whole number of GiB, got the string \"ten\" (in "),
        c("max_size float in YAML", "max_size: 1.5\n", env(), args(), "max_size",
            "max_size: expected a whole number of GiB, got the number 1.5"),
        c("bool as string in YAML", "disable_http_ac_validation: \"yes\"\n", env(), args(),
            "disable_http_ac_validation", "disable_http_ac_validation: expected true or false, got the string"),
        c("string as list in YAML", "dir: [a, b]\n", env(), args(), "dir",
            "dir: expected a string, got a list"),
        c("block as scalar in YAML", "s3_proxy: 5\n", env(), args(), "s3_proxy",
            "s3_proxy: expected a mapping of s3_proxy settings, got the number 5"),
        c("nested wrong type", "s3_proxy:\n  disable_ssl: maybe\n", env(), args(), "s3_proxy.disable_ssl",
            "s3_proxy.disable_ssl: expected true or false, got the string \"maybe\""),
        c("bool env", null, env("BAZEL_REMOTE_DISABLE_HTTP_AC_VALIDATION", "yes"), args(),
            "disable_http_ac_validation",
            "disable_http_ac_validation: must be true or false, got 'yes' (from BAZEL_REMOTE_DISABLE_HTTP_AC_VALIDATION)"),
        c("duration as number", "idle_timeout: 45\n", env(), args(), "idle_timeout",
            "idle_timeout: expected a duration such as 15s, 1m30s or 100ms, got the number 45"),
        c("not a mapping", "- dir\n", env(), args(), "config_file",
            "config_file: "),
        // unknown keys
        c("unknown top-level key", "max_sise: 5\n", env(), args(), "max_sise",
            "max_sise: unknown key (in "),
        c("unknown nested key", "s3_proxy:\n  acces_key_id: x\n", env(), args(), "s3_proxy.acces_key_id",
            "s3_proxy.acces_key_id: unknown key (in "),
        c("flag-style block name", "s3:\n  bucket: x\n", env(), args(), "s3",
            "s3: unknown key (in "),
        c("config_file inside YAML", "config_file: other.yaml\n", env(), args(), "config_file",
            "config_file: can only be given as a flag or environment variable, not in the YAML file"),
        c("dotted key at top level", "s3_proxy.bucket: x\n", env(), args(), "s3_proxy.bucket",
            "s3_proxy.bucket: unknown key"),
        c("duplicate YAML key", "max_size: 5\nmax_size: 6\n", env(), args(), "config_file",
            "config_file: invalid YAML in "),
        c("misspelt flag", null, env(), args("--s3.buckt=x"), "--s3.buckt",
            "--s3.buckt: unknown option (did you mean --s3.bucket?)"),
        c("YAML syntax error", "max_size: [5\n", env(), args(), "config_file",
            "config_file: invalid YAML in "),
        // addresses and durations
        c("address without port", null, env(), args("--http_address=localhost"), "http_address",
            "http_address: invalid address 'localhost': expected [host]:port or unix://path"),
        c("address port range", null, env(), args("--http_address=:99999"), "http_address",
            "http_address: invalid address ':99999': port 99999 is out of range 0-65535"),
        c("address bad port", "grpc_address: \"host:http\"\n", env(), args(), "grpc_address",
            "grpc_address: invalid address 'host:http': invalid port 'http'"),
        c("unix without path", null, env(), args("--grpc_address=unix://"), "grpc_address",
            "grpc_address: invalid address 'unix://': unix:// needs a socket path"),
        c("IPv6 without brackets", null, env(), args("--http_address=::1:8080"), "http_address",
            "http_address: invalid address '::1:8080': IPv6 hosts must be written in brackets"),
        c("none for http", null, env(), args("--http_address=none"), "http_address",
            "http_address: invalid address 'none'"),
        c("duration without unit", null, env(), args("--http_read_timeout=15"), "http_read_timeout",
            "http_read_timeout: invalid duration '15': missing unit after '15'"),
        c("duration bad unit", null, env("BAZEL_REMOTE_IDLE_TIMEOUT", "1x"), args(), "idle_timeout",
            "idle_timeout: invalid duration '1x': unknown unit 'x'"),
        c("negative duration", "http_write_timeout: -5s\n", env(), args(), "http_write_timeout",
            "http_write_timeout: must not be negative"),
        // enums
        c("storage_mode", null, env(), args("--storage_mode=gzip"), "storage_mode",
            "storage_mode: unknown value 'gzip', must be one of zstd, uncompressed (from --storage_mode)"),
        c("zstd_implementation", null, env(), args("--zstd_implementation=rust"), "zstd_implementation",
            "zstd_implementation: unknown value 'rust', must be one of go, cgo"),
        c("access_log_level", "access_log_level: some\n", env(), args(), "access_log_level",
            "access_log_level: unknown value 'some', must be one of none, all"),
        c("log_timezone", null, env("BAZEL_REMOTE_LOG_TIMEZONE", "utc"), args(), "log_timezone",
            "log_timezone: unknown value 'utc', must be one of UTC, local, none"),
        c("min_tls_version", null, env(), args("--min_tls_version=1.4"), "min_tls_version",
            "min_tls_version: unknown value '1.4', must be one of 1.0, 1.1, 1.2, 1.3"),
        c("s3 auth_method", "s3_proxy:\n  auth_method: credentials_file\n", env(), args(),
            "s3_proxy.auth_method",
            "s3_proxy.auth_method: unknown value 'credentials_file', must be one of access_key, iam_role, aws_credentials_file"),
        c("s3 bucket_lookup_type", null, env(), args("--s3.bucket_lookup_type=virtual"),
            "s3_proxy.bucket_lookup_type",
            "s3_proxy.bucket_lookup_type: unknown value 'virtual', must be one of auto, dns, path"),
        c("s3 signature_type", null, env(), args("--s3.signature_type=v3"), "s3_proxy.signature_type",
            "s3_proxy.signature_type: unknown value 'v3', must be one of v2, v4, v4streaming, anonymous"),
        c("azblob auth_method", null, env(), args("--azblob.auth_method=password"), "azblob_proxy.auth_method",
            "azblob_proxy.auth_method: unknown value 'password'"),
        c("s3 key_version", null, env(), args("--s3.key_version=1"), "s3_proxy.key_version",
            "s3_proxy.key_version: must be an integer from 2 to 2, got 1"),
        // conflicts
        c("same http and grpc port", null, env(), args("--http_address=:9000", "--grpc_address=0.0.0.0:9000"),
            "grpc_address", "grpc_address: the gRPC listener 0.0.0.0:9000 uses the same port as the HTTP listener :9000"),
        c("grpc_port equals default http port", null, env(), args("--grpc_port=8080"), "grpc_port",
            "grpc_port: the gRPC listener :8080 uses the same port as the HTTP listener :8080"),
        c("same unix socket", null, env(), args("--http_address=unix:///s", "--grpc_address=unix:///s"),
            "grpc_address", "grpc_address: the gRPC listener unix:///s uses the same socket path"),
        c("two proxy backends", S3, env(), args("--http_proxy.url=http://cache:8080"), "http_proxy",
            "http_proxy: at most one proxy backend can be configured, but both s3_proxy and http_proxy are"),
        c("tls cert without key", null, env(), args("--tls_cert_file=/c.pem"), "tls_key_file",
            "tls_key_file: required when tls_cert_file is set"),
        c("tls key without cert", null, env("BAZEL_REMOTE_TLS_KEY_FILE", "/k.pem"), args(), "tls_cert_file",
            "tls_cert_file: required when tls_key_file is set (from BAZEL_REMOTE_TLS_KEY_FILE)"),
        c("mtls without cert", null, env(), args("--tls_ca_file=/ca.pem"), "tls_cert_file",
            "tls_cert_file: tls_cert_file and tls_key_file are required when tls_ca_file (mTLS) is set"),
        c("two auth methods", null, env(),
            args("--htpasswd_file=/h", "--ldap.url=ldap://l", "--ldap.base_dn=dc=x"), "ldap.url",
            "ldap.url: at most one authentication method can be configured, but both htpasswd_file and ldap.url are set"),
        c("unauthenticated reads without auth", null, env(), args("--allow_unauthenticated_reads"),
            "allow_unauthenticated_reads",
            "allow_unauthenticated_reads: needs an authentication method (htpasswd_file, tls_ca_file or ldap.url) (from --allow_unauthenticated_reads)"),
        c("remote asset without grpc", "grpc_address: none\nexperimental_remote_asset_api: true\n", env(),
            args(), "experimental_remote_asset_api",
            "experimental_remote_asset_api: needs the gRPC listener, but gRPC is disabled"),
        c("remote asset with grpc_port 0", null, env(),
            args("--grpc_port=0", "--experimental_remote_asset_api"), "experimental_remote_asset_api",
            "experimental_remote_asset_api: needs the gRPC listener"),
        c("duplicate buckets", "endpoint_metrics_duration_buckets: [1, 2, 2, 3]\n", env(), args(),
            "endpoint_metrics_duration_buckets", "endpoint_metrics_duration_buckets: duplicate bucket 2"),
        c("unsorted buckets", "endpoint_metrics_duration_buckets: [1, 5, 2.5]\n", env(), args(),
            "endpoint_metrics_duration_buckets",
            "endpoint_metrics_duration_buckets: buckets must be sorted in increasing order, but 2.5 follows 5"),
        c("empty buckets", "endpoint_metrics_duration_buckets: []\n", env(), args(),
            "endpoint_metrics_duration_buckets", "endpoint_metrics_duration_buckets: must list at least one bucket"),
        c("bucket not a number", "endpoint_metrics_duration_buckets: [1, fast]\n", env(), args(),
            "endpoint_metrics_duration_buckets",
            "endpoint_metrics_duration_buckets: expected a list of numbers, but item 2 is the string \"fast\""),
        c("buckets from env are impossible", "endpoint_metrics_duration_buckets: 5\n", env(), args(),
            "endpoint_metrics_duration_buckets", "endpoint_metrics_duration_buckets: expected a list of numbers"),
        // proxies
        c("s3 access_key without keys", "s3_proxy:\n  endpoint: m:9000\n  bucket: b\n  auth_method: access_key\n",
            env(), args(), "s3_proxy.access_key_id",
            "s3_proxy.access_key_id: required with auth_method access_key (set it in the YAML file, with --s3.access_key_id or BAZEL_REMOTE_S3_ACCESS_KEY_ID)"),
        c("s3 access_key without secret", null, env("BAZEL_REMOTE_S3_ACCESS_KEY_ID", "k"),
            args("--s3.bucket=b", "--s3.endpoint=m:9000", "--s3.auth_method=access_key"),
            "s3_proxy.secret_access_key", "s3_proxy.secret_access_key: required with auth_method access_key"),
        c("s3 without auth_method", null, env(), args("--s3.bucket=b", "--s3.endpoint=m:9000"),
            "s3_proxy.auth_method",
            "s3_proxy.auth_method: required when the S3 proxy is configured; one of access_key, iam_role, aws_credentials_file"),
        c("s3 block without bucket", "s3_proxy:\n  endpoint: m:9000\n", env(), args(), "s3_proxy.bucket",
            "s3_proxy.bucket: required when the S3 proxy is configured"),
        c("s3 endpoint with scheme", null, env(),
            args("--s3.bucket=b", "--s3.endpoint=https://m:9000", "--s3.auth_method=iam_role"),
            "s3_proxy.endpoint", "s3_proxy.endpoint: must be host[:port] without a scheme, got 'https://m:9000'"),
        c("http proxy scheme", null, env(), args("--http_proxy.url=ftp://x"), "http_proxy.url",
            "http_proxy.url: must be a http:// or https:// URL, got 'ftp://x'"),
        c("grpc proxy key without cert", null, env(),
            args("--grpc_proxy.url=grpc://x:1", "--grpc_proxy.key_file=/k"), "grpc_proxy.cert_file",
            "grpc_proxy.cert_file: required when grpc_proxy.key_file is set"),
        c("azblob without method", null, env("BAZEL_REMOTE_AZBLOB_TENANT_ID", "t"),
            args("--azblob.storage_account=a", "--azblob.container_name=c"), "azblob_proxy.auth_method",
            "azblob_proxy.auth_method: required when the Azure blob proxy is configured"),
        c("ldap without base_dn", "ldap:\n  url: ldaps://l:636\n", env(), args(), "ldap.base_dn",
            "ldap.base_dn: required when LDAP authentication is configured"),
        // command line
        c("unknown flag", null, env(), args("--max-size=5"), "--max-size",
            "--max-size: unknown option (did you mean --max_size?)"),
        c("stray argument", null, env(), args("serve"), "serve", "serve: unexpected argument"),
        c("missing flag value", null, env(), args("--dir"), "dir",
            "dir: missing required parameter for option '--dir'"),
        c("missing config file", null, env("BAZEL_REMOTE_CONFIG_FILE", "/no/such/config.yaml"), args(),
            "config_file", "config_file: cannot read /no/such/config.yaml: no such file"),
        c("empty dir", null, env(), args("--dir="), "dir", "dir: must not be empty (from --dir)"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void failsWithOneLineNamingTheKey(
      String name, String yaml, Map<String, String> env, List<String> args, String key, String message)
      throws IOException {
    List<String> all = new ArrayList<>(args);
    if (yaml != null) {
      Path file = tmp.resolve("config.yaml");
      Files.writeString(file, yaml);
      all.add("--config_file=" + file);
    }
    Map<String, String> environment = new HashMap<>(env);
    environment.put("HOME", "/home/builder");
    assertThatThrownBy(() -> ConfigLoader.load(all.toArray(String[]::new), environment, false))
        .isInstanceOfSatisfying(ConfigException.class, e -> {
          assertThat(e.getMessage()).startsWith(message);
          assertThat(e.getMessage()).doesNotContain("\n").doesNotContain("\tat ");
          assertThat(e.key()).isEqualTo(key);
          assertThat(e.getMessage()).startsWith(key + ": ");
        });
  }

  private static Arguments c(String name, String yaml, Map<String, String> env, List<String> args,
      String key, String message) {
    return Arguments.of(name, yaml, env, args, key, message);
  }

  private static Map<String, String> env(String... kv) {
    Map<String, String> m = new HashMap<>();
    for (int i = 0; i < kv.length; i += 2) {
      m.put(kv[i], kv[i + 1]);
    }
    return m;
  }

  private static List<String> args(String... a) {
    return List.of(a);
  }
}
