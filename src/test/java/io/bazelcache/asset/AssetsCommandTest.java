package io.bazelcache.asset;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.bazelcache.config.ConfigLoader;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.disk.DiskStore;
import io.bazelcache.storage.disk.StorageMode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine.Model.CommandSpec;

/** {@code assets import} / {@code assets export} on a real disk store and real directories. */
class AssetsCommandTest {
  @TempDir Path tmp;
  final ByteArrayOutputStream output = new ByteArrayOutputStream();
  final PrintStream out = new PrintStream(output, true, StandardCharsets.UTF_8);

  static byte[] random(int n, long seed) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    return b;
  }

  static String sha256(byte[] b) {
    return DigestFunction.SHA256.hexOf(b);
  }

  /** Every regular file under {@code root}, by relative path, with its bytes (hex of the content). */
  static Map<String, String> tree(Path root) throws IOException {
    Map<String, String> m = new TreeMap<>();
    try (Stream<Path> s = Files.walk(root)) {
      for (Path p : s.filter(Files::isRegularFile).toList()) {
        m.put(root.relativize(p).toString(), java.util.HexFormat.of().formatHex(Files.readAllBytes(p)));
      }
    }
    return m;
  }

  static Path repoEntry(Path repoCache, byte[] content) throws IOException {
    Path f = repoCache.resolve("content_addressable/sha256").resolve(sha256(content)).resolve("file");
    Files.createDirectories(f.getParent());
    Files.write(f, content);
    return f;
  }

  DiskStore open(Path dir) throws IOException {
    return DiskStore.open(dir, 100L << 20, 0, StorageMode.ZSTD, 10L << 20);
  }

  int run(BlobStore store, String... args) throws Exception {
    CommandSpec spec = ConfigLoader.commandSpec();
    AssetsCommand.addTo(spec);
    ConfigLoader.Loaded loaded = ConfigLoader.parse(spec, args, Map.of("HOME", tmp.toString()), true);
    return new AssetsCommand(store, out, 2, Long.MAX_VALUE).run(AssetsCommand.matched(loaded.parseResult()));
  }

  @Test
  void importRepositoryCacheAndDistdirThenExportTheSameTree() throws Exception {
    Path repo = tmp.resolve("repo");
    byte[] a = random(10_000, 1);
    byte[] b = random(20_000, 2);
    byte[] c = "tiny".getBytes(StandardCharsets.UTF_8);
    repoEntry(repo, a);
    repoEntry(repo, b);
    repoEntry(repo, c);
    // Bazel's canonical id marker (id-<sha256 of the id>) travels with the entry; a malformed one does not
    String idHash = AssetIndex.canonicalIdHash("https://example.com/a.tar.gz");
    Files.writeString(repo.resolve("content_addressable/sha256").resolve(sha256(a)).resolve("id-" + idHash), "");
    Files.writeString(repo.resolve("content_addressable/sha256").resolve(sha256(a)).resolve("id-123"), "");
    // a corrupt entry: its content does not hash to its directory name
    Path corrupt = repo.resolve("content_addressable/sha256").resolve(sha256(random(5, 3))).resolve("file");
    Files.createDirectories(corrupt.getParent());
    Files.write(corrupt, random(5, 4));
    Path distdir = tmp.resolve("distdir");
    Files.createDirectories(distdir);
    byte[] d = random(30_000, 5);
    Files.write(distdir.resolve("zlib-1.3.tar.gz"), d);
    Files.write(distdir.resolve("dup-of-a.zip"), a);

    Path cacheDir = tmp.resolve("cache");
    try (DiskStore store = open(cacheDir)) {
      assertThat(run(store, "--dir=" + cacheDir, "assets", "import", repo.toString())).isEqualTo(1);
      String log = output.toString(StandardCharsets.UTF_8);
      assertThat(log).contains("as a repository cache", "imported 2 files", "skipped " + corrupt, "corrupt",
          "imported 3 files", "1 skipped");
      output.reset();
      assertThat(run(store, "assets", "import", distdir.toString())).isZero();
      assertThat(output.toString(StandardCharsets.UTF_8)).contains("as a distdir", "imported 2 files");
      assertThat(new AssetIndex(store).list()).extracting(AssetIndex.Entry::name)
          .contains("zlib-1.3.tar.gz", "dup-of-a.zip");
    }
    // after a restart of the store, export: the good repository cache entries plus the distdir files
    Path exported = tmp.resolve("exported");
    try (DiskStore store = open(cacheDir)) {
      output.reset();
      assertThat(run(store, "assets", "export", "--repository-cache", exported.toString())).isZero();
      assertThat(output.toString(StandardCharsets.UTF_8)).contains("exported 4 files");
    }
    Path expected = tmp.resolve("expected");
    for (byte[] x : new byte[][] {a, b, c, d}) {
      repoEntry(expected, x);
    }
    Files.writeString(expected.resolve("content_addressable/sha256").resolve(sha256(a)).resolve("id-" + idHash), "");
    assertThat(tree(exported)).isEqualTo(tree(expected));
    // exporting again over it changes nothing and leaves no temporary files
    try (DiskStore store = open(cacheDir)) {
      assertThat(run(store, "assets", "export", "--repository_cache=" + exported)).isZero();
    }
    assertThat(tree(exported)).isEqualTo(tree(expected));
  }

  @Test
  void exportSkipsArchivesNoLongerInTheCache() throws Exception {
    Path repo = tmp.resolve("repo");
    byte[] a = random(1000, 6);
    repoEntry(repo, a);
    Path cacheDir = tmp.resolve("cache");
    try (DiskStore store = open(cacheDir)) {
      run(store, "assets", "import", repo.toString());
      new AssetIndex(store).add(new io.bazelcache.digest.Digest(DigestFunction.SHA256, sha256(random(9, 7)), 9), "gone");
      output.reset();
      assertThat(run(store, "assets", "export", "--repository-cache", tmp.resolve("out").toString())).isEqualTo(1);
    }
    assertThat(output.toString(StandardCharsets.UTF_8)).contains("no longer in the cache", "exported 1 files");
    assertThat(tree(tmp.resolve("out"))).containsOnlyKeys("content_addressable/sha256/" + sha256(a) + "/file");
  }

  @Test
  void badArgumentsAreClearErrors() throws Exception {
    try (DiskStore store = open(tmp.resolve("cache"))) {
      assertThatThrownBy(() -> run(store, "assets", "import", tmp.resolve("nope").toString()))
          .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("is not a directory");
      assertThatThrownBy(() -> run(store, "assets", "export"))
          .hasMessageContaining("--repository-cache");
      assertThatThrownBy(() -> run(store, "assets"))
          .hasMessageContaining("import DIR or export");
    }
  }
}
