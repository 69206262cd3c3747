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
import java.net.http.HttpRequest.BodyPublishers;
import java.net.http.HttpResponse.BodyHandlers;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** access_log_level: one line per HTTP request and per gRPC call with all, nothing with none. */
class AccessLogTest {
  private static final Logger HTTP_ACCESS = Logger.getLogger("io.bazelcache.http.access");
  private static final Logger GRPC_ACCESS = Logger.getLogger("io.bazelcache.grpc.access");

  @TempDir
  Path tmp;

  private final List<String> lines = new CopyOnWriteArrayList<>();
  private final Handler capture = new Handler() {
    @Override
    public void publish(LogRecord r) {
      lines.add(r.getLoggerName() + ": " + java.text.MessageFormat.format(
          r.getMessage().replace("{}", "{%d}").formatted(0, 1, 2, 3, 4, 5, 6), r.getParameters()));
    }

    @Override
    public void flush() {}

    @Override
    public void close() {}
  };

  @BeforeEach
  void attach() {
    HTTP_ACCESS.addHandler(capture);
    GRPC_ACCESS.addHandler(capture);
  }

  @AfterEach
  void detach() {
    HTTP_ACCESS.removeHandler(capture);
    GRPC_ACCESS.removeHandler(capture);
  }

  private void traffic(String level) throws Exception {
    try (CacheServer s = CacheServer.start(ConfigLoader.load(new String[] {"--dir=" + tmp.resolve(level),
        "--max_size=1", "--http_address=127.0.0.1:0", "--grpc_address=127.0.0.1:0", "--access_log_level=" + level},
        Map.of()))) {
      HttpClient http = HttpClient.newHttpClient();
      URI base = URI.create("http://127.0.0.1:" + s.httpPort());
      byte[] data = "hello".getBytes(java.nio.charset.StandardCharsets.UTF_8);
      String hash = io.bazelcache.digest.Digest.of(io.bazelcache.digest.DigestFunction.SHA256, data).hash();
      http.send(HttpRequest.newBuilder(base.resolve("/cas/" + hash)).PUT(BodyPublishers.ofByteArray(data)).build(),
          BodyHandlers.discarding());
      http.send(HttpRequest.newBuilder(base.resolve("/cas/" + hash)).build(), BodyHandlers.discarding());
      ManagedChannel ch = NettyChannelBuilder.forAddress("127.0.0.1", s.grpcPort()).usePlaintext().build();
      try {
        ContentAddressableStorageGrpc.newBlockingStub(ch).findMissingBlobs(FindMissingBlobsRequest.newBuilder()
            .addBlobDigests(Digest.newBuilder().setHash("b".repeat(64)).setSizeBytes(3)).build());
      } finally {
        ch.shutdownNow();
        ch.awaitTermination(5, TimeUnit.SECONDS);
      }
    }
  }

  @Test
  void allLogsEveryHttpRequestAndGrpcCall() throws Exception {
    traffic("all");
    assertThat(lines).hasSize(3);
    assertThat(lines.get(0)).matches("io\\.bazelcache\\.http\\.access: PUT 200 127\\.0\\.0\\.1 /cas/[0-9a-f]{64} "
        + "[0-9]+\\.[0-9]{3}ms 0");
    assertThat(lines.get(1)).matches("io\\.bazelcache\\.http\\.access: GET 200 127\\.0\\.0\\.1 /cas/[0-9a-f]{64} "
        + "[0-9]+\\.[0-9]{3}ms 5");
    // The response lists the one missing digest: 64 hex + size, framed = 70 bytes.
    assertThat(lines.get(2)).matches("io\\.bazelcache\\.grpc\\.access: GRPC OK 127\\.0\\.0\\.1 "
        + "/build\\.bazel\\.remote\\.execution\\.v2\\.ContentAddressableStorage/FindMissingBlobs "
        + "[0-9]+\\.[0-9]{3}ms 70");
  }

  @Test
  void noneLogsNothing() throws Exception {
    traffic("none");
    assertThat(lines).isEmpty();
  }
}
