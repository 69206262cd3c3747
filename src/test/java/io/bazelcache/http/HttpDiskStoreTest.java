package io.bazelcache.http;

import static org.assertj.core.api.Assertions.assertThat;

import build.bazel.remote.execution.v2.ActionResult;
import build.bazel.remote.execution.v2.OutputFile;
import io.bazelcache.ac.CompletenessCheckingStore;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.disk.DiskStore;
import io.bazelcache.storage.disk.StorageMode;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpRequest.BodyPublishers;
import java.net.http.HttpResponse;
import java.net.http.HttpResponse.BodyHandlers;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The HTTP endpoint over the real disk store, in both storage modes: sendfile of raw files and of casblob files. */
class HttpDiskStoreTest {
  @TempDir Path dir;

  @ParameterizedTest
  @EnumSource(StorageMode.class)
  void roundTripsThroughTheDiskStore(StorageMode mode) throws Exception {
    try (DiskStore disk = DiskStore.open(dir, 1L << 30, 0, mode, 64L << 20);
        HttpCacheServer server = new HttpCacheServer(new InetSocketAddress("127.0.0.1", 0), disk,
            new CompletenessCheckingStore(disk), HttpCacheOptions.builder().ioThreads(1).accessLog(false).build(),
            disk::stats).start()) {
      HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
      URI base = URI.create("http://127.0.0.1:" + server.port());
      // Compressible but not trivial, > 1 MiB so the casblob has several chunks.
      byte[] data = new byte[3_500_000];
      java.util.Random r = new java.util.Random(5);
      for (int i = 0; i < data.length; i++) {
        data[i] = (byte) (r.nextInt(16) + 'a');
      }
      String h = DigestFunction.SHA256.hexOf(data);

      HttpResponse<byte[]> wrong = client.send(HttpRequest.newBuilder(base.resolve("/cas/" + h))
          .PUT(BodyPublishers.ofByteArray(java.util.Arrays.copyOf(data, data.length - 1))).build(),
          BodyHandlers.ofByteArray());
      assertThat(wrong.statusCode()).isEqualTo(400);
      assertThat(disk.stats().numFiles()).isZero();

      HttpResponse<byte[]> put = client.send(HttpRequest.newBuilder(base.resolve("/cas/" + h))
          .PUT(BodyPublishers.ofByteArray(data)).build(), BodyHandlers.ofByteArray());
      assertThat(put.statusCode()).as(new String(put.body())).isEqualTo(200);

      HttpResponse<byte[]> raw = client.send(HttpRequest.newBuilder(base.resolve("/cas/" + h)).build(),
          BodyHandlers.ofByteArray());
      assertThat(raw.statusCode()).isEqualTo(200);
      assertThat(raw.body()).isEqualTo(data);

      HttpResponse<byte[]> z = client.send(HttpRequest.newBuilder(base.resolve("/cas/" + h))
          .header("Accept-Encoding", "zstd").build(), BodyHandlers.ofByteArray());
      assertThat(z.statusCode()).isEqualTo(200);
      assertThat(z.headers().firstValue("content-encoding")).hasValue("zstd");
      assertThat(z.body().length).isLessThan(data.length);
      assertThat(HttpCacheServerTest.decompress(z.body())).isEqualTo(data);

      HttpResponse<Void> head = client.send(HttpRequest.newBuilder(base.resolve("/cas/" + h))
          .method("HEAD", BodyPublishers.noBody()).build(), BodyHandlers.discarding());
      assertThat(head.headers().firstValueAsLong("content-length")).hasValue(data.length);

      ActionResult ar = ActionResult.newBuilder().addOutputFiles(OutputFile.newBuilder().setPath("out")
          .setDigest(build.bazel.remote.execution.v2.Digest.newBuilder().setHash(h).setSizeBytes(data.length)))
          .build();
      String action = DigestFunction.SHA256.hexOf("action".getBytes());
      assertThat(client.send(HttpRequest.newBuilder(base.resolve("/ac/" + action))
          .PUT(BodyPublishers.ofByteArray(ar.toByteArray())).build(), BodyHandlers.ofByteArray()).statusCode())
          .isEqualTo(200);
      HttpResponse<byte[]> acGet = client.send(HttpRequest.newBuilder(base.resolve("/ac/" + action)).build(),
          BodyHandlers.ofByteArray());
      assertThat(acGet.statusCode()).isEqualTo(200);
      assertThat(ActionResult.parseFrom(acGet.body()).getOutputFiles(0).getPath()).isEqualTo("out");
    }
  }
}
