package io.bazelcache.deploy;

import static org.assertj.core.api.Assertions.assertThat;

import io.bazelcache.config.Config;
import io.bazelcache.config.ConfigException;
import io.bazelcache.config.ConfigLoader;
import io.bazelcache.config.ListenAddress;
import io.bazelcache.server.CacheServer;
import io.bazelcache.storage.s3.S3Testing;
import io.bazelcache.testing.S3ProxyProcess;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Base64;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * The {@code config.yaml} the OpenTofu module puts into its ConfigMap ({@code deploy/tofu/modules/bazel-cache/
 * config.yaml.tftpl}, rendered with the module's defaults), loaded through {@link ConfigLoader} with the
 * Secret's environment variables, and a server started with it against a real S3Proxy. Only the listen
 * addresses, the directory and the S3 endpoint differ from a pod, given as flags (which take precedence),
 * as a pod would override them.
 */
class DeploymentConfigTest {
  private static final Path MODULE = Path.of(System.getProperty("bazelcache.projectDir", "."))
      .resolve("deploy/tofu/modules/bazel-cache");
  private static final Pattern PLACEHOLDER = Pattern.compile("\\$\\{([a-z0-9_]+)}");

  /** The module's templatefile() arguments with the variable defaults (JSON-encoded, as main.tf does). */
  private static Map<String, String> moduleDefaults(String s3Endpoint) {
    Map<String, String> v = new LinkedHashMap<>();
    v.put("dir", "\"/data\"");
    v.put("max_size", "8");
    v.put("http_address", "\"0.0.0.0:8080\"");
    v.put("grpc_address", "\"0.0.0.0:9092\"");
    v.put("s3_endpoint", "\"" + s3Endpoint + "\"");
    v.put("s3_bucket", "\"bazel-cache\"");
    v.put("s3_prefix", "\"\"");
    v.put("s3_disable_ssl", "true");
    v.put("s3_bucket_lookup_type", "\"path\"");
    v.put("s3_max_idle_conns", "1024");
    v.put("s3_update_timestamps", "true");
    v.put("num_uploaders", "100");
    v.put("max_queued_uploads", "1000000");
    v.put("enable_metrics", "true");
    v.put("access_log_level", "\"none\"");
    v.put("shutdown_delay", "\"5s\"");
    return v;
  }

  private static String template() throws IOException {
    return Files.readString(MODULE.resolve("config.yaml.tftpl"));
  }

  /** Terraform's ${name} interpolation, the only template syntax the file uses (checked here). */
  static String render(String template, Map<String, String> values) {
    assertThat(template).as("template directives").doesNotContain("%{");
    Matcher m = PLACEHOLDER.matcher(template);
    StringBuilder out = new StringBuilder();
    while (m.find()) {
      String value = values.get(m.group(1));
      assertThat(value).as("value for ${%s}", m.group(1)).isNotNull();
      m.appendReplacement(out, Matcher.quoteReplacement(value));
    }
    m.appendTail(out);
    assertThat(out.toString()).as("rendered config").doesNotContain("${");
    return out.toString();
  }

  @Test
  void templatePlaceholdersAreExactlyTheArgumentsMainTfPasses() throws IOException {
    Set<String> inTemplate = new TreeSet<>();
    Matcher m = PLACEHOLDER.matcher(template());
    while (m.find()) {
      inTemplate.add(m.group(1));
    }
    String mainTf = Files.readString(MODULE.resolve("main.tf"));
    int start = mainTf.indexOf("templatefile(\"${path.module}/config.yaml.tftpl\", {");
    assertThat(start).as("main.tf renders config.yaml.tftpl").isPositive();
    String args = mainTf.substring(start, mainTf.indexOf("})", start));
    Set<String> passed = new TreeSet<>();
    Matcher a = Pattern.compile("(?m)^\\s*([a-z0-9_]+)\\s*=\\s*jsonencode\\(").matcher(args);
    while (a.find()) {
      passed.add(a.group(1));
    }
    assertThat(passed).isEqualTo(inTemplate).isEqualTo(new TreeSet<>(moduleDefaults("x").keySet()));
    assertThat(mainTf).contains("\"config.yaml\" = local.config_yaml");
  }

  /** Where terraform (or tofu) is installed, it renders the template itself and must agree byte for byte. */
  @Test
  void terraformRendersTheSameBytes(@TempDir Path tmp) throws Exception {
    String tool = onPath("tofu") != null ? "tofu" : onPath("terraform") != null ? "terraform" : null;
    org.junit.jupiter.api.Assumptions.assumeTrue(tool != null, "neither tofu nor terraform installed");
    Map<String, String> values = moduleDefaults("minio.attic-cache.svc.cluster.local:9000");
    StringBuilder expr = new StringBuilder("base64encode(templatefile(\"")
        .append(MODULE.toAbsolutePath().resolve("config.yaml.tftpl")).append("\", {");
    values.forEach((k, v) -> expr.append(k).append(" = ").append(hclString(v)).append(", "));
    expr.append("}))\n");
    ProcessBuilder pb = new ProcessBuilder(tool, "console").directory(tmp.toFile()).redirectErrorStream(false);
    pb.environment().put("TF_CLI_CONFIG_FILE", "/dev/null");
    pb.redirectError(ProcessBuilder.Redirect.DISCARD);
    Process p = pb.start();
    p.getOutputStream().write(expr.toString().getBytes(StandardCharsets.UTF_8));
    p.getOutputStream().close();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).as("%s console: %s", tool, out).isZero();
    assertThat(out).startsWith("\"").endsWith("\"");
    String rendered = new String(Base64.getDecoder().decode(out.substring(1, out.length() - 1)), StandardCharsets.UTF_8);
    assertThat(rendered).isEqualTo(render(template(), values));
  }

  /** Where terraform (or tofu) is installed: the module's HCL parses and is formatted (no provider needed). */
  @Test
  void terraformFmtAcceptsTheModule() throws Exception {
    String tool = onPath("tofu") != null ? "tofu" : onPath("terraform") != null ? "terraform" : null;
    org.junit.jupiter.api.Assumptions.assumeTrue(tool != null, "neither tofu nor terraform installed");
    ProcessBuilder pb = new ProcessBuilder(tool, "fmt", "-check", "-diff", "-no-color", "-recursive",
        MODULE.toAbsolutePath().toString()).redirectErrorStream(true);
    pb.environment().put("TF_CLI_CONFIG_FILE", "/dev/null");
    Process p = pb.start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).as("%s fmt -check: %s", tool, out).isZero();
  }

  @Test
  void theRenderedConfigLoadsAndServesAgainstRealS3(@TempDir Path tmp) throws Exception {
    S3ProxyProcess s3 = S3ProxyProcess.shared();
    try (S3Client raw = S3Testing.rawClient(s3)) {
      S3Testing.createBucket(raw, "bazel-cache");
    } catch (software.amazon.awssdk.services.s3.model.S3Exception e) {
      // Already there from an earlier run on the shared server.
    }
    Path yaml = tmp.resolve("config.yaml");
    Files.writeString(yaml, render(template(), moduleDefaults(s3.endpoint())));
    Map<String, String> env = Map.of(
        "BAZEL_REMOTE_S3_ACCESS_KEY_ID", S3ProxyProcess.ACCESS_KEY,
        "BAZEL_REMOTE_S3_SECRET_ACCESS_KEY", S3ProxyProcess.SECRET_KEY);
    String[] args = {"--config_file=" + yaml, "--dir=" + tmp.resolve("data"),
        "--http_address=127.0.0.1:0", "--grpc_address=127.0.0.1:0"};

    Config c = ConfigLoader.load(args, env);
    assertThat(c.maxSizeGiB()).isEqualTo(8);
    assertThat(c.shutdownDelay()).isEqualTo(Duration.ofSeconds(5));
    assertThat(c.numUploaders()).isEqualTo(100);
    assertThat(c.maxQueuedUploads()).isEqualTo(1_000_000);
    assertThat(c.enableEndpointMetrics()).isTrue();
    assertThat(c.accessLogLevel()).isEqualTo(Config.AccessLogLevel.NONE);
    assertThat(c.httpAddress()).isEqualTo(new ListenAddress.Tcp("127.0.0.1", 0));
    Config.S3Proxy s = c.s3Proxy().orElseThrow();
    assertThat(s.endpoint()).isEqualTo(s3.endpoint());
    assertThat(s.bucket()).isEqualTo("bazel-cache");
    assertThat(s.accessKeyId()).isEqualTo(S3ProxyProcess.ACCESS_KEY);
    assertThat(s.disableSsl()).isTrue();

    byte[] blob = ("deployment config test " + System.nanoTime()).getBytes(StandardCharsets.UTF_8);
    String hash = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(blob));
    HttpClient client = HttpClient.newHttpClient();
    CacheServer server = CacheServer.start(c);
    try {
      URI cas = URI.create("http://127.0.0.1:" + server.httpPort() + "/cas/" + hash);
      assertThat(client.send(HttpRequest.newBuilder(cas).PUT(HttpRequest.BodyPublishers.ofByteArray(blob)).build(),
          HttpResponse.BodyHandlers.discarding()).statusCode()).isEqualTo(200);
      assertThat(client.send(HttpRequest.newBuilder(cas).GET().build(), HttpResponse.BodyHandlers.ofByteArray())
          .body()).isEqualTo(blob);
      assertThat(server.grpcPort()).isPositive();
    } finally {
      server.close(); // drains the upload queue
    }
    assertThat(server.s3Stats().uploadsDone.get()).as("uploads to the bucket").isEqualTo(1);

    // A second replica on an empty directory with the same config reads the blob back from the bucket.
    String[] args2 = {"--config_file=" + yaml, "--dir=" + tmp.resolve("data2"),
        "--http_address=127.0.0.1:0", "--grpc_address=127.0.0.1:0"};
    try (CacheServer replica = CacheServer.start(ConfigLoader.load(args2, env))) {
      URI cas = URI.create("http://127.0.0.1:" + replica.httpPort() + "/cas/" + hash);
      HttpResponse<byte[]> r = client.send(HttpRequest.newBuilder(cas).GET().build(),
          HttpResponse.BodyHandlers.ofByteArray());
      assertThat(r.statusCode()).isEqualTo(200);
      assertThat(r.body()).isEqualTo(blob);
    }
  }

  /**
   * Every metric the Grafana dashboard and the module's alerts query is exposed by a server running the module's
   * config, after some HTTP and gRPC traffic. Skipped while {@code /metrics} is not wired (answers 404).
   */
  @Test
  void dashboardAndAlertMetricsAreExposed(@TempDir Path tmp) throws Exception {
    S3ProxyProcess s3 = S3ProxyProcess.shared();
    try (S3Client raw = S3Testing.rawClient(s3)) {
      S3Testing.createBucket(raw, "bazel-cache");
    } catch (software.amazon.awssdk.services.s3.model.S3Exception e) {
      // Already there.
    }
    Path yaml = tmp.resolve("config.yaml");
    Files.writeString(yaml, render(template(), moduleDefaults(s3.endpoint())));
    Map<String, String> env = Map.of(
        "BAZEL_REMOTE_S3_ACCESS_KEY_ID", S3ProxyProcess.ACCESS_KEY,
        "BAZEL_REMOTE_S3_SECRET_ACCESS_KEY", S3ProxyProcess.SECRET_KEY);
    String[] args = {"--config_file=" + yaml, "--dir=" + tmp.resolve("data"),
        "--http_address=127.0.0.1:0", "--grpc_address=127.0.0.1:0"};
    HttpClient client = HttpClient.newHttpClient();
    try (CacheServer server = CacheServer.start(ConfigLoader.load(args, env))) {
      String base = "http://127.0.0.1:" + server.httpPort();
      byte[] blob = ("metrics " + System.nanoTime()).getBytes(StandardCharsets.UTF_8);
      String hash = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(blob));
      client.send(HttpRequest.newBuilder(URI.create(base + "/cas/" + hash))
          .PUT(HttpRequest.BodyPublishers.ofByteArray(blob)).build(), HttpResponse.BodyHandlers.discarding());
      client.send(HttpRequest.newBuilder(URI.create(base + "/cas/" + hash)).GET().build(),
          HttpResponse.BodyHandlers.discarding());
      client.send(HttpRequest.newBuilder(URI.create(base + "/ac/" + "0".repeat(64))).GET().build(),
          HttpResponse.BodyHandlers.discarding());
      io.grpc.ManagedChannel channel = io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder
          .forAddress("127.0.0.1", server.grpcPort()).usePlaintext().build();
      try {
        build.bazel.remote.execution.v2.CapabilitiesGrpc.newBlockingStub(channel)
            .getCapabilities(build.bazel.remote.execution.v2.GetCapabilitiesRequest.getDefaultInstance());
      } finally {
        channel.shutdownNow();
      }
      HttpResponse<String> metrics = client.send(HttpRequest.newBuilder(URI.create(base + "/metrics")).GET().build(),
          HttpResponse.BodyHandlers.ofString());
      assertThat(metrics.statusCode()).isEqualTo(200);
      Set<String> exposed = new TreeSet<>();
      metrics.body().lines().filter(l -> !l.startsWith("#") && !l.isBlank())
          .forEach(l -> exposed.add(l.split("[{ ]", 2)[0]));
      Set<String> queried = new TreeSet<>(metricNames(Files.readString(
          MODULE.resolve("../../../grafana/bazel-cache.json").normalize())));
      queried.addAll(metricNames(Files.readString(MODULE.resolve("monitoring.tf"))));
      queried.remove("up"); // Prometheus' own
      assertThat(queried).as("metrics the dashboard and alerts query").isNotEmpty();
      assertThat(exposed).as("/metrics of a server running the module's config").containsAll(queried);
    }
  }

  /** Metric names in PromQL expressions: bazel_remote_*, grpc_server_*, and the inflight regex's name. */
  private static Set<String> metricNames(String text) {
    Set<String> names = new TreeSet<>();
    Matcher m = Pattern.compile("\\b((?:bazel_remote|grpc_server)_[a-z0-9_]+)").matcher(text);
    while (m.find()) {
      names.add(m.group(1));
    }
    if (text.contains("(bazel_remote_)?http_requests_inflight")) {
      names.remove("bazel_remote_");
      names.add("http_requests_inflight");
    }
    return names;
  }

  private static String hclString(String jsonScalar) {
    // The value passed to templatefile() is the JSON text itself, as a string.
    return "\"" + jsonScalar.replace("\\", "\\\\").replace("\"", "\\\"").replace("${", "$${") + "\"";
  }

  private static Path onPath(String tool) {
    for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
      Path p = Path.of(dir, tool);
      if (Files.isExecutable(p)) {
        return p;
      }
    }
    return null;
  }
}
