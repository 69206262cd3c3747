package io.bazelcache.metrics;

import static org.assertj.core.api.Assertions.assertThat;

import build.bazel.remote.execution.v2.ContentAddressableStorageGrpc;
import build.bazel.remote.execution.v2.Digest;
import build.bazel.remote.execution.v2.FindMissingBlobsRequest;
import io.bazelcache.config.ConfigLoader;
import io.bazelcache.server.CacheServer;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse.BodyHandlers;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * docs/METRICS.md stays true: every family a real server exports (with and without http_metrics_prefix, after
 * HTTP and gRPC traffic) has a row in its tables, or for JVM and process collectors is named in the text, and
 * every table row is a family some server exports.
 */
class MetricsDocsTest {
  private static final Path DOC = Path.of("docs/METRICS.md");

  @TempDir
  Path tmp;

  @Test
  void everyExportedFamilyIsDocumentedAndEveryDocumentedOneIsExported() throws Exception {
    Set<String> exported = new TreeSet<>();
    exported.addAll(families(false));
    exported.addAll(families(true));

    String doc = Files.readString(DOC);
    Set<String> rows = new LinkedHashSet<>();
    Matcher m = Pattern.compile("(?m)^\\| `([a-z0-9_]+)` \\|").matcher(doc);
    while (m.find()) {
      rows.add(m.group(1));
    }
    Set<String> runtime = new TreeSet<>();
    for (String f : exported) {
      if (f.startsWith("jvm_") || f.startsWith("process_")) {
        runtime.add(f);
      }
    }
    Set<String> ours = new TreeSet<>(exported);
    ours.removeAll(runtime);

    assertThat(rows).as("table rows of docs/METRICS.md").containsExactlyInAnyOrderElementsOf(ours);
    for (String f : runtime) {
      assertThat(doc).as("JVM/process family " + f + " in docs/METRICS.md").contains("`" + f + "`");
    }
    assertThat(runtime).contains("process_cpu_seconds_total", "jvm_memory_used_bytes");
  }

  /** The families ({@code # TYPE} names) of a server's /metrics after one HTTP and one gRPC request. */
  private Set<String> families(boolean prefix) throws Exception {
    Path dir = tmp.resolve(prefix ? "p" : "n");
    try (CacheServer s = CacheServer.start(ConfigLoader.load(new String[] {"--dir=" + dir, "--max_size=1",
        "--http_address=127.0.0.1:0", "--grpc_address=127.0.0.1:0", "--enable_endpoint_metrics",
        "--http_metrics_prefix=" + prefix}, Map.of()))) {
      ManagedChannel ch = NettyChannelBuilder.forAddress("127.0.0.1", s.grpcPort()).usePlaintext().build();
      try {
        ContentAddressableStorageGrpc.newBlockingStub(ch).findMissingBlobs(FindMissingBlobsRequest.newBuilder()
            .addBlobDigests(Digest.newBuilder().setHash("a".repeat(64)).setSizeBytes(1)).build());
      } finally {
        ch.shutdownNow();
        ch.awaitTermination(5, TimeUnit.SECONDS);
      }
      HttpClient http = HttpClient.newHttpClient();
      URI base = URI.create("http://127.0.0.1:" + s.httpPort());
      http.send(HttpRequest.newBuilder(base.resolve("/status")).build(), BodyHandlers.discarding());
      String text = http.send(HttpRequest.newBuilder(base.resolve("/metrics")).build(), BodyHandlers.ofString())
          .body();
      return new Scrape(text).types.keySet();
    }
  }
}
