package io.bazelcache.asset;

import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.digest.Hasher;
import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.BlobTooLargeException;
import io.bazelcache.storage.DigestMismatchException;
import io.bazelcache.storage.StorageException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.Set;
import java.util.UUID;
import java.util.regex.Pattern;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Model.PositionalParamSpec;
import picocli.CommandLine.ParseResult;

/**
 * {@code bazel-cache [cache flags] assets import DIR} and {@code bazel-cache [cache flags] assets export
 * --repository-cache DIR}: move downloaded archives between Bazel's on-disk formats and the cache.
 *
 * <ul>
 *   <li>import reads a {@code --repository_cache} directory ({@code content_addressable/sha256/<hash>/file},
 *       each file checked against its hash) or a {@code --distdir} (the regular files directly in DIR),
 *       stores the files in the CAS (SHA-256) and adds them to the asset list.
 *   <li>export writes every blob of the asset list that is still in the cache into Bazel's repository
 *       cache layout, each file written under a temporary name and renamed, so a file is never seen half
 *       written.
 * </ul>
 *
 * Files that cannot be used are reported and skipped; the exit code is then 1 (0 when all went well).
 */
public final class AssetsCommand {
  private static final Pattern SHA256_HEX = Pattern.compile("[0-9a-f]{64}");
  private static final int LIST_BATCH = 500;

  private final BlobStore store;
  private final AssetIndex index;
  private final PrintStream out;
  private final int progressEveryFiles;
  private final long progressEveryNanos;

  public AssetsCommand(BlobStore store, PrintStream out) {
    this(store, out, 1000, 5_000_000_000L);
  }

  AssetsCommand(BlobStore store, PrintStream out, int progressEveryFiles, long progressEveryNanos) {
    this.store = store;
    this.index = new AssetIndex(store);
    this.out = out;
    this.progressEveryFiles = progressEveryFiles;
    this.progressEveryNanos = progressEveryNanos;
  }

  /** Adds the {@code assets} subcommand (with {@code import} and {@code export}) to {@code spec}. */
  public static void addTo(CommandSpec spec) {
    CommandSpec assets = CommandSpec.create().name("assets");
    assets.usageMessage().description("Import or export downloaded archives (Remote Asset API entries).");
    CommandSpec imp = CommandSpec.create().name("import");
    imp.usageMessage().description("Load a Bazel --repository_cache or --distdir directory into the cache.");
    imp.addPositional(PositionalParamSpec.builder().paramLabel("DIR").type(String.class).arity("1")
        .description("a repository cache (with content_addressable/sha256) or a distdir").build());
    CommandSpec exp = CommandSpec.create().name("export");
    exp.usageMessage().description("Write the cached archives in Bazel's repository cache layout.");
    exp.addOption(OptionSpec.builder("--repository-cache", "--repository_cache").paramLabel("DIR")
        .type(String.class).arity("1").required(true)
        .description("target directory (created); use it as --repository_cache").build());
    assets.addSubcommand("import", imp);
    assets.addSubcommand("export", exp);
    spec.addSubcommand("assets", assets);
  }

  /** The {@code assets} parse result under the root's, or null when another command was given. */
  public static ParseResult matched(ParseResult root) {
    ParseResult sub = root.subcommand();
    return sub != null && sub.commandSpec().name().equals("assets") ? sub : null;
  }

  /** Runs the matched {@code assets} subcommand; returns the exit code. */
  public int run(ParseResult assets) throws IOException {
    ParseResult sub = assets.subcommand();
    if (sub == null) {
      throw new IllegalArgumentException("assets: say import DIR or export --repository-cache DIR");
    }
    return switch (sub.commandSpec().name()) {
      case "import" -> importDir(Path.of((String) sub.matchedPositionalValue(0, "")));
      case "export" -> exportRepositoryCache(Path.of((String) sub.matchedOptionValue("--repository-cache", "")));
      default -> throw new IllegalArgumentException("assets: unknown command " + sub.commandSpec().name());
    };
  }

  // ---- import -------------------------------------------------------------------------------------

  private final class Progress {
    final String verb;
    final long start = System.nanoTime();
    long lastLine = start;
    long files;
    long bytes;
    long skipped;

    Progress(String verb) {
      this.verb = verb;
    }

    void tick(long size) {
      files++;
      bytes += size;
      long now = System.nanoTime();
      if (files % progressEveryFiles == 0 || now - lastLine >= progressEveryNanos) {
        lastLine = now;
        out.printf("%s %d files (%d bytes) so far, %d skipped%n", verb, files, bytes, skipped);
        out.flush();
      }
    }

    void skip(Path p, String why) {
      skipped++;
      out.printf("skipped %s: %s%n", p, why);
      out.flush();
    }

    int done() {
      out.printf("%s %d files (%d bytes) in %.1f s, %d skipped%n", verb, files, bytes,
          (System.nanoTime() - start) / 1e9, skipped);
      out.flush();
      return skipped == 0 ? 0 : 1;
    }
  }

  public int importDir(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      throw new IllegalArgumentException("assets import: " + dir + " is not a directory");
    }
    Path cas = dir.resolve("content_addressable").resolve("sha256");
    boolean repositoryCache = Files.isDirectory(cas);
    out.printf("importing %s as a %s%n", dir, repositoryCache ? "repository cache" : "distdir");
    Progress progress = new Progress("imported");
    List<AssetIndex.Entry> pending = new ArrayList<>();
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(repositoryCache ? cas : dir)) {
      for (Path p : ds) {
        if (repositoryCache) {
          String name = p.getFileName().toString();
          Path file = p.resolve("file");
          if (!Files.isDirectory(p) || !SHA256_HEX.matcher(name).matches()) {
            continue; // not an entry (e.g. a temporary file of Bazel's)
          }
          if (!Files.isRegularFile(file)) {
            progress.skip(p, "no file in the entry");
            continue;
          }
          importFile(file, name, "", idHashes(p), progress, pending);
        } else if (Files.isRegularFile(p)) {
          importFile(p, null, p.getFileName().toString(), List.of(""), progress, pending);
        }
        if (pending.size() >= LIST_BATCH) {
          index.addAll(pending);
          pending.clear();
        }
      }
    }
    index.addAll(pending);
    return progress.done();
  }

  /** Stores {@code file}; {@code expectedSha256} (hex) is checked when given. */
  /** The canonical id markers ({@code id-<hash>}) of a repository cache entry; [""] when there are none. */
  private static List<String> idHashes(Path entry) throws IOException {
    List<String> ids = new ArrayList<>();
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(entry, "id-*")) {
      for (Path p : ds) {
        String h = p.getFileName().toString().substring(3);
        if (SHA256_HEX.matcher(h).matches()) {
          ids.add(h);
        }
      }
    }
    return ids.isEmpty() ? List.of("") : ids;
  }

  private void importFile(Path file, String expectedSha256, String name, List<String> idHashes,
      Progress progress, List<AssetIndex.Entry> pending) throws IOException {
    long size;
    String sha;
    try {
      size = Files.size(file);
      sha = expectedSha256 != null ? expectedSha256 : sha256(file);
    } catch (IOException e) {
      progress.skip(file, "unreadable: " + e.getMessage());
      return;
    }
    Digest d = new Digest(DigestFunction.SHA256, sha, size);
    BlobKey key = BlobKey.cas(d);
    try {
      if (!store.contains(key)) {
        try (InputStream in = Files.newInputStream(file)) {
          store.put(key, size, in); // the store checks the content against the hash
        }
      } else if (expectedSha256 != null && !sha256(file).equals(expectedSha256)) {
        // already cached, but the file itself is corrupt: say so (the cached copy is fine)
        progress.skip(file, "content does not match its name " + expectedSha256 + " (a good copy is cached)");
        return;
      }
    } catch (DigestMismatchException e) {
      progress.skip(file, "corrupt: content does not hash to " + sha);
      return;
    } catch (BlobTooLargeException e) {
      progress.skip(file, "too large: " + e.getMessage());
      return;
    } catch (StorageException e) {
      throw e; // out of space and the like: stop, nothing more can be stored
    } catch (IOException e) {
      progress.skip(file, "unreadable: " + e.getMessage());
      return;
    }
    for (String id : idHashes) {
      pending.add(AssetIndex.Entry.of(d, name, id));
    }
    progress.tick(size);
  }

  private static String sha256(Path file) throws IOException {
    Hasher h = DigestFunction.SHA256.newHasher();
    try (InputStream in = Files.newInputStream(file)) {
      byte[] buf = new byte[256 * 1024];
      int n;
      while ((n = in.read(buf)) > 0) {
        h.update(buf, 0, n);
      }
    }
    return HexFormat.of().formatHex(h.finish());
  }

  // ---- export -------------------------------------------------------------------------------------

  public int exportRepositoryCache(Path dir) throws IOException {
    Path root = dir.resolve("content_addressable").resolve("sha256");
    Files.createDirectories(root);
    Map<Digest, Set<String>> digests = new LinkedHashMap<>();
    for (AssetIndex.Entry e : index.list()) {
      Set<String> ids = digests.computeIfAbsent(e.digest(), k -> new TreeSet<>());
      if (!e.idHash().isEmpty()) {
        ids.add(e.idHash());
      }
    }
    out.printf("exporting %d archives to %s%n", digests.size(), dir);
    Progress progress = new Progress("exported");
    for (Map.Entry<Digest, Set<String>> entry : digests.entrySet()) {
      Digest d = entry.getKey();
      Path tmp = root.resolve(".tmp-" + UUID.randomUUID());
      try (Blob b = store.get(BlobKey.cas(d))) {
        if (b == null && !d.isEmpty()) {
          progress.skip(Path.of(d.toString()), "no longer in the cache");
          continue;
        }
        Hasher h = DigestFunction.SHA256.newHasher();
        try (InputStream in = b == null ? InputStream.nullInputStream() : b.openStream(0);
            OutputStream o = Files.newOutputStream(tmp)) {
          byte[] buf = new byte[256 * 1024];
          int n;
          while ((n = in.read(buf)) > 0) {
            h.update(buf, 0, n);
            o.write(buf, 0, n);
          }
        }
        String sha = HexFormat.of().formatHex(h.finish());
        Path target = root.resolve(sha).resolve("file");
        Files.createDirectories(target.getParent());
        for (String id : entry.getValue()) {
          // Bazel's marker that the entry may serve downloads with this canonical id (an empty file)
          Path marker = target.resolveSibling("id-" + id);
          if (!Files.exists(marker)) {
            Files.createFile(marker);
          }
        }
        if (Files.isRegularFile(target) && Files.size(target) == d.sizeBytes()) {
          Files.delete(tmp); // already exported (same content name, same size)
        } else {
          Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        }
        progress.tick(d.sizeBytes());
      } finally {
        Files.deleteIfExists(tmp);
      }
    }
    return progress.done();
  }
}
