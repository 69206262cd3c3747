package io.bazelcache.config;

import static org.assertj.core.api.Assertions.assertThat;

import io.bazelcache.config.Config.AccessLogLevel;
import io.bazelcache.config.Config.BucketLookupType;
import io.bazelcache.config.Config.LogTimezone;
import io.bazelcache.config.Config.S3AuthMethod;
import io.bazelcache.config.Config.StorageMode;
import io.bazelcache.config.Config.TlsVersion;
import io.bazelcache.config.ListenAddress.Tcp;
import io.bazelcache.config.ListenAddress.Unix;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine.Model.CommandSpec;

class ConfigLoaderTest {
  private static final Map<String, String> HOME = Map.of("HOME", "/home/builder");

  @TempDir Path tmp;

  private Path yaml(String text) throws IOException {
    Path p = Files.createTempFile(tmp, "config", ".yaml");
    Files.writeString(p, text);
    return p;
  }

  private static Map<String, String> env(String... kv) {
    Map<String, String> m = new HashMap<>(HOME);
    for (int i = 0; i < kv.length; i += 2) {
      m.put(kv[i], kv[i + 1]);
    }
    return m;
  }

  private static Config load(Map<String, String> env, String... args) throws ConfigException {
    return ConfigLoader.load(args, env);
  }

  private static Config loadAll(Map<String, String> env, String... args) throws ConfigException {
    return ConfigLoader.load(args, env, false);
  }

  private static ConfigException error(Map<String, String> env, String... args) {
    try {
      ConfigLoader.load(args, env);
    } catch (ConfigException e) {
      assertThat(e.getMessage()).doesNotContain("\n").doesNotContain("\r");
      assertThat(e.getMessage()).doesNotContain("Exception");
      return e;
    }
    throw new AssertionError("expected a ConfigException for " + List.of(args) + " " + env);
  }

  // ---- defaults ------------------------------------------------------------------------------

  @Test
  void noArgumentsGivesEmbeddedDefaults() throws Exception {
    Config c = load(HOME);
    assertThat(c.helpRequested()).isFalse();
    assertThat(c.configFile()).isEmpty();
    assertThat(c.dir()).isEqualTo(Path.of("/home/builder/.cache/bazel-cache"));
    assertThat(c.maxSizeGiB()).isEqualTo(5);
    assertThat(c.maxSizeBytes()).isEqualTo(5L * 1024 * 1024 * 1024);
    assertThat(c.maxSizeHardLimitGiB()).isZero();
    assertThat(c.maxSizeHardLimitBytes()).isEmpty();
    assertThat(c.storageMode()).isEqualTo(StorageMode.ZSTD);
    assertThat(c.httpAddress()).isEqualTo(new Tcp("", 8080));
    assertThat(c.grpcAddress()).contains(new Tcp("", 9092));
    assertThat(c.profileAddress()).isEmpty();
    assertThat(c.maxQueuedUploads()).isEqualTo(1_000_000);
    assertThat(c.numUploaders()).isEqualTo(100);
    assertThat(c.maxBlobSize()).isEqualTo(Long.MAX_VALUE);
    assertThat(c.maxProxyBlobSize()).isEqualTo(Long.MAX_VALUE);
    assertThat(c.get("s3_proxy.max_idle_conns")).isEqualTo(1024);
    assertThat(c.accessLogLevel()).isEqualTo(AccessLogLevel.ALL);
    assertThat(c.logTimezone()).isEqualTo(LogTimezone.UTC);
    assertThat(c.minTlsVersion()).isEqualTo(TlsVersion.TLS_1_0);
    assertThat(c.endpointMetricsDurationBuckets())
        .containsExactly(0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0);
    assertThat(c.httpReadTimeout()).isEqualTo(Duration.ZERO);
    assertThat(c.disableHttpAcValidation()).isFalse();
    assertThat(c.disableGrpcAcDepsCheck()).isFalse();
    assertThat(c.enableAcKeyInstanceMangling()).isFalse();
    assertThat(c.proxyBackend()).isEmpty();
    assertThat(c.s3Proxy()).isEmpty();
    assertThat(c.authMethod()).isEmpty();
    assertThat(c.source("max_size")).isEqualTo("default");
  }

  @Test
  void defaultDirFollowsXdgCacheHome() throws Exception {
    assertThat(load(env("XDG_CACHE_HOME", "/var/cache/me")).dir())
        .isEqualTo(Path.of("/var/cache/me/bazel-cache"));
  }

  // ---- precedence ------------------------------------------------------------------------------

  private Path s3Yaml() throws IOException {
    return yaml("""
        dir: /from-yaml
        max_size: 10
        storage_mode: uncompressed
        disable_http_ac_validation: true
        s3_proxy:
          endpoint: minio:9000
          bucket: b
          auth_method: access_key
          access_key_id: yaml-key
          secret_access_key: yaml-secret
        """);
  }

  @Test
  void yamlAloneIsUsed() throws Exception {
    Path file = s3Yaml();
    Config c = loadAll(HOME, "--config_file=" + file);
    assertThat(c.dir()).isEqualTo(Path.of("/from-yaml"));
    assertThat(c.maxSizeGiB()).isEqualTo(10);
    assertThat(c.storageMode()).isEqualTo(StorageMode.UNCOMPRESSED);
    assertThat(c.disableHttpAcValidation()).isTrue();
    assertThat(c.s3Proxy().orElseThrow().accessKeyId()).isEqualTo("yaml-key");
    assertThat(c.source("dir")).isEqualTo(file.toString());
    assertThat(c.configFile()).contains(file);
  }

  @Test
  void environmentOverridesYaml() throws Exception {
    Path file = s3Yaml();
    Config c = loadAll(env(
        "BAZEL_REMOTE_CONFIG_FILE", file.toString(),
        "BAZEL_REMOTE_DIR", "/from-env",
        "BAZEL_REMOTE_MAX_SIZE", "20",
        "BAZEL_REMOTE_DISABLE_HTTP_AC_VALIDATION", "false",
        "BAZEL_REMOTE_S3_ACCESS_KEY_ID", "env-key"));
    assertThat(c.dir()).isEqualTo(Path.of("/from-env"));
    assertThat(c.maxSizeGiB()).isEqualTo(20);
    assertThat(c.disableHttpAcValidation()).isFalse();
    assertThat(c.s3Proxy().orElseThrow().accessKeyId()).isEqualTo("env-key");
    assertThat(c.s3Proxy().orElseThrow().secretAccessKey()).isEqualTo("yaml-secret");
    assertThat(c.storageMode()).isEqualTo(StorageMode.UNCOMPRESSED);
    assertThat(c.source("s3_proxy.access_key_id")).isEqualTo("BAZEL_REMOTE_S3_ACCESS_KEY_ID");
  }

  @Test
  void flagsOverrideEnvironmentAndYaml() throws Exception {
    Path file = s3Yaml();
    Config c = loadAll(
        env("BAZEL_REMOTE_DIR", "/from-env", "BAZEL_REMOTE_MAX_SIZE", "20",
            "BAZEL_REMOTE_S3_ACCESS_KEY_ID", "env-key", "BAZEL_REMOTE_STORAGE_MODE", "zstd"),
        "--config_file", file.toString(), "--dir=/from-flag", "-max_size", "30",
        "--s3.access_key_id=flag-key", "--disable_http_ac_validation=false");
    assertThat(c.dir()).isEqualTo(Path.of("/from-flag"));
    assertThat(c.maxSizeGiB()).isEqualTo(30);
    assertThat(c.s3Proxy().orElseThrow().accessKeyId()).isEqualTo("flag-key");
    assertThat(c.storageMode()).isEqualTo(StorageMode.ZSTD);
    assertThat(c.disableHttpAcValidation()).isFalse();
    assertThat(c.source("dir")).isEqualTo("--dir");
    assertThat(c.source("max_size")).isEqualTo("--max_size");
    assertThat(c.source("storage_mode")).isEqualTo("BAZEL_REMOTE_STORAGE_MODE");
  }

  @Test
  void configFileFlagOverridesConfigFileEnvironmentVariable() throws Exception {
    Path a = yaml("max_size: 11\n");
    Path b = yaml("max_size: 12\n");
    Config c = load(env("BAZEL_REMOTE_CONFIG_FILE", a.toString()), "--config_file=" + b);
    assertThat(c.maxSizeGiB()).isEqualTo(12);
  }

  @Test
  void firstListedEnvironmentVariableWins() throws Exception {
    Config c = loadAll(env("AWS_PROFILE", "generic", "BAZEL_REMOTE_S3_AWS_PROFILE", "specific"));
    assertThat(c.get("s3_proxy.aws_profile")).isEqualTo("specific");
    c = loadAll(env("AWS_PROFILE", "generic"));
    assertThat(c.get("s3_proxy.aws_profile")).isEqualTo("generic");
    assertThat(c.proxyBackend()).isEmpty();
  }

  @Test
  void emptyEnvironmentVariableCountsAsUnset() throws Exception {
    assertThat(load(env("BAZEL_REMOTE_MAX_SIZE", "")).maxSizeGiB()).isEqualTo(5);
  }

  @Test
  void oddBazelRemoteEnvironmentNamesAreRead() throws Exception {
    assertThat(load(env("BAZEL_REMOTE_DISABLE_GRPS_AC_DEPS_CHECK", "true")).disableGrpcAcDepsCheck()).isTrue();
    assertThat(load(env("BAZEL_REMOTE_DISABLE_GRPC_AC_DEPS_CHECK", "1")).disableGrpcAcDepsCheck()).isTrue();
    Config c = loadAll(env("BAZEL_REMOTE_UNAUTHENTICATED_READS", "true", "BAZEL_REMOTE_HTPASSWD_FILE", "/h"));
    assertThat(c.allowUnauthenticatedReads()).isTrue();
    assertThat(c.authMethod()).contains("htpasswd");
    c = loadAll(env("AWS_SHARED_CREDENTIALS_FILE", "/creds"));
    assertThat(c.get("s3_proxy.aws_shared_credentials_file")).isEqualTo("/creds");
  }

  // ---- the target deployment --------------------------------------------------------------------

  private static Path deploymentYaml() throws Exception {
    return Path.of(ConfigLoaderTest.class.getResource("/config/deployment-config.yaml").toURI());
  }

  @Test
  void deploymentConfigPlusEnvironmentSecretsLoads() throws Exception {
    Config c = loadAll(
        env("BAZEL_REMOTE_S3_ACCESS_KEY_ID", "AKIA-from-secret",
            "BAZEL_REMOTE_S3_SECRET_ACCESS_KEY", "secret-from-secret"),
        "--config_file=" + deploymentYaml());
    assertThat(c.dir()).isEqualTo(Path.of("/data"));
    assertThat(c.maxSizeGiB()).isEqualTo(100);
    assertThat(c.httpAddress()).isEqualTo(new Tcp("0.0.0.0", 8080));
    assertThat(c.grpcAddress()).contains(new Tcp("", 9092));
    assertThat(c.numUploaders()).isEqualTo(100);
    assertThat(c.maxQueuedUploads()).isEqualTo(1_000_000);
    assertThat(c.enableEndpointMetrics()).isTrue();
    assertThat(c.accessLogLevel()).isEqualTo(AccessLogLevel.NONE);
    assertThat(c.proxyBackend()).contains("s3_proxy");
    Config.S3Proxy s3 = c.s3Proxy().orElseThrow();
    assertThat(s3.endpoint()).isEqualTo("minio.attic-cache.svc.cluster.local:9000");
    assertThat(s3.bucket()).isEqualTo("bazel-cache");
    assertThat(s3.prefix()).isEmpty();
    assertThat(s3.authMethod()).isEqualTo(S3AuthMethod.ACCESS_KEY);
    assertThat(s3.accessKeyId()).isEqualTo("AKIA-from-secret");
    assertThat(s3.secretAccessKey()).isEqualTo("secret-from-secret");
    assertThat(s3.disableSsl()).isTrue();
    assertThat(s3.bucketLookupType()).isEqualTo(BucketLookupType.PATH);
    assertThat(s3.maxIdleConns()).isEqualTo(1024);
    assertThat(s3.updateTimestamps()).isTrue();
    assertThat(c.toString()).doesNotContain("secret-from-secret").doesNotContain("AKIA-from-secret");
  }

  @Test
  void deploymentConfigWithoutSecretsNamesTheMissingKey() throws Exception {
    ConfigException e = error(HOME, "--config_file=" + deploymentYaml());
    assertThat(e.key()).isEqualTo("s3_proxy.access_key_id");
    assertThat(e.getMessage()).startsWith("s3_proxy.access_key_id: required with auth_method access_key")
        .contains("BAZEL_REMOTE_S3_ACCESS_KEY_ID");
  }

  @Test
  void deploymentConfigLoads() throws Exception {
    Config c = load(env("BAZEL_REMOTE_S3_ACCESS_KEY_ID", "k", "BAZEL_REMOTE_S3_SECRET_ACCESS_KEY", "s"),
        "--config_file=" + deploymentYaml());
    assertThat(c.enableEndpointMetrics()).isTrue();
    assertThat(c.accessLogLevel()).isEqualTo(Config.AccessLogLevel.NONE);
    assertThat(c.httpMetricsPrefix()).isFalse();
    assertThat(c.s3Proxy()).isPresent();
    assertThat(c.s3Proxy().get().bucket()).isEqualTo("bazel-cache");
  }

  // ---- deprecated listeners -------------------------------------------------------------------

  @Test
  void deprecatedHostAndPortBuildTheHttpAddress() throws Exception {
    assertThat(load(HOME, "--host=127.0.0.1", "--port=9000").httpAddress())
        .isEqualTo(new Tcp("127.0.0.1", 9000));
    assertThat(load(HOME, "--port=9000").httpAddress()).isEqualTo(new Tcp("", 9000));
    assertThat(load(env("BAZEL_REMOTE_HOST", "10.1.2.3")).httpAddress()).isEqualTo(new Tcp("10.1.2.3", 8080));
    assertThat(load(HOME, "--host=127.0.0.1", "--port=9000", "--http_address=:7000").httpAddress())
        .isEqualTo(new Tcp("", 7000));
  }

  @Test
  void deprecatedGrpcPort() throws Exception {
    assertThat(load(HOME, "--grpc_port=9999").grpcAddress()).contains(new Tcp("", 9999));
    assertThat(load(HOME, "--grpc_port=0").grpcAddress()).isEmpty();
    assertThat(load(HOME, "--host=::1", "--grpc_port=9999").grpcAddress()).contains(new Tcp("::1", 9999));
    assertThat(load(HOME, "--grpc_port=9999", "--grpc_address=:7777").grpcAddress())
        .contains(new Tcp("", 7777));
  }

  @Test
  void grpcAddressNoneDisablesGrpc() throws Exception {
    assertThat(load(HOME, "--config_file=" + yaml("grpc_address: none\n")).grpcAddress()).isEmpty();
    assertThat(load(env("BAZEL_REMOTE_GRPC_ADDRESS", "none")).grpcAddress()).isEmpty();
    assertThat(load(HOME, "--grpc_address=unix:///run/cache.sock").grpcAddress())
        .contains(new Unix("/run/cache.sock"));
    assertThat(load(HOME, "--http_address=[::1]:8081").httpAddress()).isEqualTo(new Tcp("::1", 8081));
  }

  // ---- flag syntax -----------------------------------------------------------------------------

  @Test
  void flagSyntaxVariants() throws Exception {
    assertThat(load(HOME, "-dir", "/a").dir()).isEqualTo(Path.of("/a"));
    assertThat(load(HOME, "--dir", "/b").dir()).isEqualTo(Path.of("/b"));
    assertThat(load(HOME, "-dir=/c").dir()).isEqualTo(Path.of("/c"));
    assertThat(load(HOME, "--dir=/d", "--dir=/e").dir()).isEqualTo(Path.of("/e"));
    assertThat(load(HOME, "--disable_http_ac_validation").disableHttpAcValidation()).isTrue();
    assertThat(load(HOME, "--enable_ac_key_instance_mangling=true").enableAcKeyInstanceMangling()).isTrue();
    assertThat(load(env("BAZEL_REMOTE_ENABLE_AC_KEY_INSTANCE_MANGLING", "true"),
        "--enable_ac_key_instance_mangling=false").enableAcKeyInstanceMangling()).isFalse();
    assertThat(load(HOME, "--max_blob_size=1048576").maxBlobSize()).isEqualTo(1_048_576);
    assertThat(load(HOME, "--max_size=2", "--max_size_hard_limit=3").maxSizeHardLimitBytes())
        .contains(3L << 30);
  }

  @Test
  void goDurationsAreParsed() throws Exception {
    Config c = loadAll(HOME, "--http_read_timeout=1m30s", "--http_write_timeout=100ms", "--idle_timeout=1.5h");
    assertThat(c.httpReadTimeout()).isEqualTo(Duration.ofSeconds(90));
    assertThat(c.httpWriteTimeout()).isEqualTo(Duration.ofMillis(100));
    assertThat(c.idleTimeout()).isEqualTo(Duration.ofMinutes(90));
    c = loadAll(HOME, "--config_file=" + yaml("http_read_timeout: 15s\nidle_timeout: 0\n"));
    assertThat(c.httpReadTimeout()).isEqualTo(Duration.ofSeconds(15));
  }

  @Test
  void helpIsFlaggedNotValidated() throws Exception {
    Config c = load(HOME, "--help", "--max_size=-1");
    assertThat(c.helpRequested()).isTrue();
    assertThat(load(HOME, "-h").helpRequested()).isTrue();
    assertThat(load(HOME, "-help").helpRequested()).isTrue();
  }

  @Test
  void subcommandsCanBeAddedToTheSpec() throws Exception {
    CommandSpec spec = ConfigLoader.commandSpec();
    CommandSpec assets = CommandSpec.create().name("assets");
    assets.addSubcommand("import", CommandSpec.create().name("import")
        .addPositional(picocli.CommandLine.Model.PositionalParamSpec.builder().paramLabel("DIR")
            .type(String.class).build()));
    spec.addSubcommand("assets", assets);
    ConfigLoader.Loaded loaded = ConfigLoader.parse(spec,
        new String[] {"--dir=/cache", "--max_size=7", "assets", "import", "/in"}, HOME, true);
    assertThat(loaded.config().dir()).isEqualTo(Path.of("/cache"));
    assertThat(loaded.config().maxSizeGiB()).isEqualTo(7);
    assertThat(loaded.parseResult().subcommand().commandSpec().name()).isEqualTo("assets");
    assertThat(loaded.parseResult().subcommand().subcommand().matchedPositionalValue(0, ""))
        .isEqualTo("/in");
  }

  // ---- Kubernetes service links ---------------------------------------------------------------

  @Test
  void kubernetesServiceLinkForAServiceNamedBazelRemote() {
    ConfigException e = error(env(
        "BAZEL_REMOTE_PORT", "tcp://10.0.0.1:8080",
        "BAZEL_REMOTE_PORT_8080_TCP", "tcp://10.0.0.1:8080",
        "BAZEL_REMOTE_PORT_8080_TCP_ADDR", "10.0.0.1",
        "BAZEL_REMOTE_SERVICE_HOST", "10.0.0.1",
        "BAZEL_REMOTE_SERVICE_PORT", "8080"));
    assertThat(e.key()).isEqualTo("port");
    assertThat(e.getMessage())
        .startsWith("port: environment variable BAZEL_REMOTE_PORT=tcp://10.0.0.1:8080")
        .contains("Kubernetes", "Service named \"bazel-remote\"", "enableServiceLinks: false",
            "set http_address explicitly");
  }

  @Test
  void kubernetesServiceLinkForAServiceNamedBazelRemoteGrpc() {
    ConfigException e = error(env("BAZEL_REMOTE_GRPC_PORT", "tcp://10.0.0.2:9092"));
    assertThat(e.key()).isEqualTo("grpc_port");
    assertThat(e.getMessage()).contains("Service named \"bazel-remote-grpc\"");
  }

  @Test
  void kubernetesServiceLinkIsOnlyAWarningWhenTheAddressIsGivenAnyway() throws Exception {
    Map<String, String> k8s = env("BAZEL_REMOTE_PORT", "tcp://10.0.0.1:8080",
        "BAZEL_REMOTE_PORT_8080_TCP", "tcp://10.0.0.1:8080",
        "BAZEL_REMOTE_S3_ACCESS_KEY_ID", "k", "BAZEL_REMOTE_S3_SECRET_ACCESS_KEY", "s");
    Config c = loadAll(k8s, "--config_file=" + deploymentYaml());
    assertThat(c.httpAddress()).isEqualTo(new Tcp("0.0.0.0", 8080));
    assertThat(c.warnings()).singleElement().asString()
        .contains("ignoring environment variable BAZEL_REMOTE_PORT=tcp://10.0.0.1:8080",
            "Service named \"bazel-remote\"", "http_address is set");
    c = load(k8s, "--port=9000");
    assertThat(c.httpAddress()).isEqualTo(new Tcp("", 9000));
    assertThat(c.warnings()).singleElement().asString().contains("set by a flag");
    assertThat(load(HOME).warnings()).isEmpty();
  }

  @Test
  void unrelatedBazelRemoteVariablesAreIgnored() throws Exception {
    Config c = load(env(
        "BAZEL_REMOTE_PORT_8080_TCP", "tcp://10.0.0.1:8080",
        "BAZEL_REMOTE_PORT_8080_TCP_PROTO", "tcp",
        "BAZEL_REMOTE_SERVICE_HOST", "10.0.0.1",
        "BAZEL_REMOTE_SERVICE_PORT_HTTP", "8080",
        "BAZEL_REMOTE_SOMETHING_ELSE", "whatever"));
    assertThat(c.httpAddress()).isEqualTo(new Tcp("", 8080));
  }

  // ---- support status --------------------------------------------------------------------------

  @Test
  void notSupportedYetKeysAreRefusedWhenSet() {
    ConfigException e = error(HOME, "--ldap.url=ldaps://ldap:636", "--ldap.base_dn=dc=x");
    assertThat(e.key()).isEqualTo("ldap.url");
    assertThat(e.getMessage()).startsWith("not supported yet: ldap.url");
    assertThat(error(env("BAZEL_REMOTE_PROFILE_ADDRESS", "127.0.0.1:7070")).getMessage())
        .startsWith("not supported yet: profile_address");
  }

  @Test
  void notSupportedYetKeysAtTheirDefaultAreAccepted() throws Exception {
    Config c = load(env("AWS_PROFILE", "dev", "BAZEL_REMOTE_S3_ACCESS_KEY_ID", "unused"),
        "--num_uploaders=100", "--access_log_level=all", "--log_timezone=UTC");
    assertThat(c.numUploaders()).isEqualTo(100);
    assertThat(c.proxyBackend()).isEmpty();
  }

  @Test
  void supportStatusIsInTheTable() {
    List<String> supported = new ArrayList<>();
    for (Option o : Options.ALL) {
      if (o.status() == Status.SUPPORTED) {
        supported.add(o.key());
      }
    }
    assertThat(supported).containsExactlyInAnyOrder("config_file", "dir", "max_size",
        "max_size_hard_limit", "storage_mode", "zstd_implementation", "http_address", "host", "port",
        "grpc_address", "grpc_port", "shutdown_delay", "max_blob_size", "disable_http_ac_validation",
        "disable_grpc_ac_deps_check", "enable_ac_key_instance_mangling",
        "max_proxy_blob_size", "max_queued_uploads", "num_uploaders",
        "s3_proxy.endpoint", "s3_proxy.bucket", "s3_proxy.bucket_lookup_type", "s3_proxy.prefix",
        "s3_proxy.auth_method", "s3_proxy.access_key_id", "s3_proxy.secret_access_key",
        "s3_proxy.session_token", "s3_proxy.signature_type", "s3_proxy.aws_shared_credentials_file",
        "s3_proxy.aws_profile", "s3_proxy.disable_ssl", "s3_proxy.update_timestamps",
        "s3_proxy.iam_role_endpoint", "s3_proxy.region", "s3_proxy.key_version", "s3_proxy.max_idle_conns",
        "http_read_timeout", "http_write_timeout", "idle_timeout", "htpasswd_file", "min_tls_version",
        "tls_ca_file", "tls_cert_file", "tls_key_file", "allow_unauthenticated_reads",
        "experimental_remote_asset_api", "enable_endpoint_metrics", "endpoint_metrics_duration_buckets",
        "http_metrics_prefix", "access_log_level", "log_timezone");
  }

  // ---- every row is reachable ----------------------------------------------------------------------

  /** A valid non-default text value for each option type. */
  private static String sample(Option o) {
    return switch (o.type()) {
      case STRING -> "value-of-" + o.key();
      case BOOL -> "true";
      case INT, LONG, GIB -> String.valueOf(o.max() != null ? o.max() : (o.min() != null ? o.min() + 7 : 7));
      case DURATION -> "2m";
      case ADDRESS, ADDRESS_OR_NONE -> "127.0.0.1:1234";
      case ENUM -> o.choices().stream().filter(c -> !o.parseText(c).equals(o.defaultValue())).findFirst()
          .orElseThrow();
      case NUMBER_LIST -> "[1, 2, 3]";
    };
  }

  @Test
  void everyOptionIsReadFromEachOfItsSources() throws Exception {
    CommandSpec spec = ConfigLoader.commandSpec();
    for (Option o : Options.ALL) {
      for (String flag : o.flags()) {
        assertThat(spec.findOption(flag)).as(flag).isNotNull();
        assertThat(spec.findOption(flag.substring(1))).as(flag).isNotNull();
      }
      if (o.key().equals(Options.CONFIG_FILE)) {
        continue;
      }
      String text = sample(o);
      Object expected = o.type() == OptionType.NUMBER_LIST ? List.of(1.0, 2.0, 3.0) : o.parseText(text);
      if (!o.key().equals("s3_proxy.key_version")) { // the only accepted value is the default
        assertThat(expected).as(o.key()).isNotEqualTo(o.defaultValue());
      }
      for (String name : o.envVars()) {
        ConfigLoader.Merged m = ConfigLoader.merge(new String[0], env(name, text));
        assertThat(m.values().get(o.key())).as(name).isEqualTo(expected);
        assertThat(m.sources().get(o.key())).as(name).isEqualTo(name);
      }
      if (!o.flags().isEmpty()) {
        ConfigLoader.Merged m = ConfigLoader.merge(new String[] {o.flag() + "=" + text}, HOME);
        assertThat(m.values().get(o.key())).as(o.flag()).isEqualTo(expected);
      }
      if (o.inYaml()) {
        String value = switch (o.type()) {
          case BOOL, INT, LONG, GIB, NUMBER_LIST -> text;
          default -> "\"" + text + "\"";
        };
        String yaml = o.block() == null
            ? o.key() + ": " + value + "\n"
            : "# block\n" + o.block() + ":\n  " + o.leafName() + ": " + value + "\n";
        ConfigLoader.Merged m = ConfigLoader.merge(new String[] {"--config_file=" + yaml(yaml)}, HOME);
        assertThat(m.values().get(o.key())).as(o.key()).isEqualTo(expected);
      }
    }
  }

  @Test
  void everyBazelRemoteFlagIsPresent() {
    List<String> expected = List.of("--config_file", "--dir", "--max_size", "--max_size_hard_limit",
        "--storage_mode", "--zstd_implementation", "--http_address", "--host", "--port", "--grpc_address",
        "--grpc_port", "--profile_address", "--profile_host", "--profile_port", "--http_read_timeout",
        "--http_write_timeout", "--htpasswd_file", "--min_tls_version", "--tls_ca_file", "--tls_cert_file",
        "--tls_key_file", "--allow_unauthenticated_reads", "--idle_timeout", "--max_queued_uploads",
        "--num_uploaders", "--max_blob_size", "--max_proxy_blob_size", "--grpc_proxy.url",
        "--grpc_proxy.key_file", "--grpc_proxy.cert_file", "--grpc_proxy.ca_file", "--http_proxy.url",
        "--http_proxy.key_file", "--http_proxy.cert_file", "--http_proxy.ca_file", "--gcs_proxy.bucket",
        "--gcs_proxy.use_default_credentials", "--gcs_proxy.json_credentials_file", "--ldap.url",
        "--ldap.base_dn", "--ldap.bind_user", "--ldap.bind_password", "--ldap.username_attribute",
        "--ldap.groups_query", "--ldap.cache_time", "--s3.endpoint", "--s3.bucket",
        "--s3.bucket_lookup_type", "--s3.prefix", "--s3.auth_method", "--s3.access_key_id",
        "--s3.secret_access_key", "--s3.session_token", "--s3.signature_type",
        "--s3.aws_shared_credentials_file", "--s3.aws_profile", "--s3.disable_ssl",
        "--s3.update_timestamps", "--s3.iam_role_endpoint", "--s3.region", "--s3.key_version",
        "--s3.max_idle_conns", "--azblob.tenant_id", "--azblob.storage_account", "--azblob.container_name",
        "--azblob.prefix", "--azblob.update_timestamps", "--azblob.auth_method", "--azblob.shared_key",
        "--azblob.client_id", "--azblob.client_secret", "--azblob.cert_path",
        "--disable_http_ac_validation", "--disable_grpc_ac_deps_check",
        "--enable_ac_key_instance_mangling", "--enable_endpoint_metrics", "--http_metrics_prefix",
        "--experimental_remote_asset_api", "--access_log_level", "--log_timezone",
        "--shutdown_delay"); // bazel-cache's own, for the Kubernetes readiness drain
    List<String> actual = Options.ALL.stream().flatMap(o -> o.flags().stream()).toList();
    assertThat(actual).containsExactlyInAnyOrderElementsOf(expected);
    assertThat(Options.byKey("endpoint_metrics_duration_buckets").flags()).isEmpty();
    assertThat(Options.BLOCKS).containsExactly("s3_proxy", "gcs_proxy", "http_proxy", "grpc_proxy",
        "azblob_proxy", "ldap");
  }

  @Test
  void proxyBlocksMapToTypedRecords() throws Exception {
    Config c = loadAll(HOME, "--http_proxy.url=https://cache.example:8080/c");
    assertThat(c.httpProxy()).contains(new Config.RemoteProxy("https://cache.example:8080/c", "", "", ""));
    c = loadAll(HOME, "--grpc_proxy.url=grpcs://up:9092", "--grpc_proxy.cert_file=/c", "--grpc_proxy.key_file=/k");
    assertThat(c.grpcProxy().orElseThrow().certFile()).isEqualTo("/c");
    c = loadAll(HOME, "--gcs_proxy.bucket=g", "--gcs_proxy.use_default_credentials");
    assertThat(c.gcsProxy()).contains(new Config.GcsProxy("g", true, ""));
    c = loadAll(env("BAZEL_REMOTE_AZBLOB_TENANT_ID", "t", "AZURE_STORAGE_ACCOUNT_KEY", "key"),
        "--azblob.storage_account=a", "--azblob.container_name=c", "--azblob.auth_method=shared_key");
    assertThat(c.azblobProxy().orElseThrow().sharedKey()).isEqualTo("key");
    c = loadAll(HOME, "--ldap.url=ldaps://ldap:636", "--ldap.base_dn=dc=x", "--ldap.cache_time=60");
    assertThat(c.ldap().orElseThrow().cacheTime()).isEqualTo(Duration.ofMinutes(1));
    assertThat(c.authMethod()).contains("ldap");
    assertThat(c.ldap().orElseThrow().usernameAttribute()).isEqualTo("uid");
  }

  @Test
  void genericCloudVariablesNeverEnableABackend() throws Exception {
    Config c = loadAll(env("AZURE_TENANT_ID", "tenant", "AZURE_CLIENT_ID", "id"));
    assertThat(c.proxyBackend()).isEmpty();
    assertThat(c.get("azblob_proxy.tenant_id")).isEqualTo("tenant");
  }

  @Test
  void yamlBlockWithNullValueIsIgnored() throws Exception {
    Config c = load(HOME, "--config_file=" + yaml("s3_proxy:\nmax_size: 6\n"));
    assertThat(c.proxyBackend()).isEmpty();
    assertThat(c.maxSizeGiB()).isEqualTo(6);
  }

  @Test
  void emptyYamlFileIsAccepted() throws Exception {
    assertThat(load(HOME, "--config_file=" + yaml("# nothing\n")).maxSizeGiB()).isEqualTo(5);
  }

  @Test
  void quotedMinTlsVersionAndUnquotedFloatBothWork() throws Exception {
    assertThat(loadAll(HOME, "--config_file=" + yaml("min_tls_version: \"1.2\"\n")).minTlsVersion())
        .isEqualTo(TlsVersion.TLS_1_2);
    assertThat(loadAll(HOME, "--config_file=" + yaml("min_tls_version: 1.3\n")).minTlsVersion())
        .isEqualTo(TlsVersion.TLS_1_3);
  }

  @Test
  void customMetricsBuckets() throws Exception {
    Config c = loadAll(HOME, "--config_file=" + yaml("endpoint_metrics_duration_buckets: [0.1, 1, 10]\n"));
    assertThat(c.endpointMetricsDurationBuckets()).containsExactly(0.1, 1.0, 10.0);
  }

  @Test
  void optionalValuesAreTyped() throws Exception {
    Config c = loadAll(HOME, "--profile_address=127.0.0.1:6060");
    assertThat(c.profileAddress()).isEqualTo(Optional.of(new Tcp("127.0.0.1", 6060)));
    c = loadAll(HOME, "--profile_port=7070");
    assertThat(c.profileAddress()).contains(new Tcp("127.0.0.1", 7070));
  }
}
