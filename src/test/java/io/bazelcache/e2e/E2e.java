package io.bazelcache.e2e;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Assumptions;

/** Environment of the end-to-end tests: project paths, the prerequisite policy, ports, hashing. */
final class E2e {
  private E2e() {}

  /** The project root (failsafe passes it; a run from an IDE falls back to the working directory). */
  static Path projectDir() {
    return Path.of(System.getProperty("bazelcache.projectDir", System.getProperty("user.dir")))
        .toAbsolutePath()
        .normalize();
  }

  /** True in CI: a missing prerequisite (Bazel, the server jar) fails the test instead of skipping it. */
  static boolean requireE2e() {
    return Boolean.getBoolean("bazelcache.requireE2e");
  }

  /** Skips the test when {@code available} is false, or fails it when {@link #requireE2e()} is set. */
  static void assumePrerequisite(boolean available, String what) {
    if (available) {
      return;
    }
    if (requireE2e()) {
      fail("missing end-to-end prerequisite (bazelcache.requireE2e=true): " + what);
    }
    Assumptions.abort("missing end-to-end prerequisite: " + what);
  }

  /** {@code <project>/../shared/tools}, as in CI, else the machine-wide /work/shared/tools. */
  static Path sharedTools() {
    for (Path candidate : List.of(projectDir().resolveSibling("shared").resolve("tools"), Path.of("/work/shared/tools"))) {
      if (Files.isDirectory(candidate)) {
        return candidate;
      }
    }
    return projectDir().resolveSibling("shared").resolve("tools");
  }

  /** A fresh directory under target/e2e for one test's files (workspaces, logs, cache dirs). */
  static Path runDir(String name) {
    String stamp = LocalDateTime.now().format(DateTimeFormatter.ofPattern("HHmmss-SSS"));
    Path dir = projectDir().resolve("target").resolve("e2e").resolve(name + "-" + stamp);
    try {
      return Files.createDirectories(dir);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** A port that was free on 127.0.0.1 a moment ago. */
  static int freePort() {
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return socket.getLocalPort();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static String sha256Hex(byte[] data) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
    } catch (NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }

  /** The last {@code maxChars} characters of a log file, for failure messages. */
  static String tail(Path file, int maxChars) {
    try {
      String text = Files.readString(file);
      return text.length() <= maxChars ? text : "..." + text.substring(text.length() - maxChars);
    } catch (IOException e) {
      return "(cannot read " + file + ": " + e + ")";
    }
  }

  /** Deletes a tree without following symbolic links (Bazel output bases link to sources elsewhere). */
  static void deleteTree(Path root) {
    if (!Files.exists(root, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    try {
      Files.walkFileTree(root, new SimpleFileVisitor<>() {
        @Override
        public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attrs) {
          dir.toFile().setWritable(true, true); // Bazel makes output directories read-only.
          return FileVisitResult.CONTINUE;
        }

        @Override
        public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
          Files.deleteIfExists(file);
          return FileVisitResult.CONTINUE;
        }

        @Override
        public FileVisitResult visitFileFailed(Path file, IOException e) throws IOException {
          if (e instanceof NoSuchFileException) {
            return FileVisitResult.CONTINUE;
          }
          throw e;
        }

        @Override
        public FileVisitResult postVisitDirectory(Path dir, IOException e) throws IOException {
          Files.deleteIfExists(dir);
          return FileVisitResult.CONTINUE;
        }
      });
    } catch (IOException e) {
      throw new UncheckedIOException("cannot delete " + root, e);
    }
  }
}
