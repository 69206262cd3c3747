package io.bazelcache.e2e;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * bazel-cache started as a child process from the shaded jar, the way a user runs it:
 * {@code java -jar bazel-cache-*-all.jar --dir D --max_size N --http_address 127.0.0.1:P --grpc_address none}.
 * Its stdout and stderr go to a log file; {@link #start} returns once {@code GET /status} answers 200.
 */
final class ServerProcess implements AutoCloseable {
  static final Duration READY_TIMEOUT = Duration.ofSeconds(90);
  private static final AtomicInteger STARTS = new AtomicInteger();

  private final Process process;
  private final int port;
  private final Path log;

  private ServerProcess(Process process, int port, Path log) {
    this.process = process;
    this.port = port;
    this.log = log;
  }

  /** The shaded jar built by {@code package} (failsafe passes its path as bazelcache.jar). */
  static Path jar() {
    String configured = System.getProperty("bazelcache.jar");
    if (configured != null) {
      return Path.of(configured);
    }
    Path target = E2e.projectDir().resolve("target");
    try (var files = Files.list(target)) {
      return files.filter(p -> p.getFileName().toString().matches("bazel-cache-.*-all\\.jar"))
          .findFirst()
          .orElse(target.resolve("bazel-cache-all.jar"));
    } catch (IOException e) {
      return target.resolve("bazel-cache-all.jar");
    }
  }

  /**
   * Starts the server on {@code dir} with a {@code maxSizeGib} GiB cache on a free loopback port, logs to
   * {@code logDir}, and waits until it is ready. {@code extraArgs} are appended (e.g. --max_blob_size 1024); gRPC is
   * off unless they contain --grpc_address.
   */
  static ServerProcess start(Path dir, int maxSizeGib, Path logDir, String... extraArgs) {
    Path jar = jar();
    E2e.assumePrerequisite(Files.isRegularFile(jar), "server jar " + jar + " (run `./mvnw verify`, not just the IT)");
    for (int attempt = 1; ; attempt++) {
      try {
        return startOnce(jar, dir, maxSizeGib, logDir, extraArgs);
      } catch (PortTakenException e) {
        if (attempt == 3) {
          throw e;
        }
        // Another process took the free port between our probe and the server's bind: try another one.
      }
    }
  }

  private static ServerProcess startOnce(Path jar, Path dir, int maxSizeGib, Path logDir, String... extraArgs) {
    int port = E2e.freePort();
    Path java = Path.of(System.getProperty("java.home"), "bin", "java");
    List<String> command = new ArrayList<>(List.of(
        java.toString(), "-Xmx1g", "-jar", jar.toString(),
        "--dir", dir.toString(),
        "--max_size", Integer.toString(maxSizeGib),
        "--http_address", "127.0.0.1:" + port));
    if (!List.of(extraArgs).contains("--grpc_address")) {
      command.addAll(List.of("--grpc_address", "none"));
    }
    command.addAll(List.of(extraArgs));
    try {
      Files.createDirectories(logDir);
      Path log = logDir.resolve("server-" + STARTS.incrementAndGet() + "-port" + port + ".log");
      Files.writeString(log, String.join(" ", command) + System.lineSeparator());
      Process process = new ProcessBuilder(command)
          .redirectErrorStream(true)
          .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
          .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
          .start();
      ServerProcess server = new ServerProcess(process, port, log);
      server.awaitReady(READY_TIMEOUT);
      return server;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot start " + command, e);
    }
  }

  /** The server exited at start-up because its port was in use. */
  private static final class PortTakenException extends IllegalStateException {
    PortTakenException(String message) {
      super(message);
    }
  }

  private void awaitReady(Duration timeout) {
    HttpClient client = HttpClient.newBuilder()
        .version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(2))
        .build();
    HttpRequest status = HttpRequest.newBuilder(baseUri().resolve("/status"))
        .timeout(Duration.ofSeconds(5))
        .GET()
        .build();
    long deadline = System.nanoTime() + timeout.toNanos();
    int lastCode = -1;
    while (System.nanoTime() < deadline) {
      if (!process.isAlive()) {
        String message = "server exited with code " + process.exitValue() + " before it was ready; log " + log
            + ":\n" + E2e.tail(log, 4000);
        throw E2e.tail(log, 100_000).contains("Address already in use")
            ? new PortTakenException(message) : new IllegalStateException(message);
      }
      try {
        lastCode = client.send(status, HttpResponse.BodyHandlers.discarding()).statusCode();
        if (lastCode == 200) {
          return;
        }
      } catch (IOException e) {
        // Not listening yet.
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        kill9();
        throw new IllegalStateException("interrupted while waiting for the server", e);
      }
      sleep(100);
    }
    kill9();
    throw new IllegalStateException("server not ready within " + timeout + " (last GET /status: " + lastCode
        + "); log " + log + ":\n" + E2e.tail(log, 4000));
  }

  /** For example {@code http://127.0.0.1:18080}: what Bazel gets as {@code --remote_cache}. */
  URI baseUri() {
    return URI.create("http://127.0.0.1:" + port);
  }

  int port() {
    return port;
  }

  Path log() {
    return log;
  }

  /** SIGTERM, then SIGKILL if it has not exited within 20 s. Returns the exit code. */
  int stop() {
    return stop(Duration.ofSeconds(20));
  }

  /** SIGTERM, then SIGKILL if it has not exited within {@code patience}. Returns the exit code. */
  int stop(Duration patience) {
    process.destroy();
    try {
      if (!process.waitFor(patience.toMillis(), TimeUnit.MILLISECONDS)) {
        process.destroyForcibly();
        process.waitFor(20, TimeUnit.SECONDS);
      }
      return process.exitValue();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      process.destroyForcibly();
      return -1;
    }
  }

  /** Waits up to {@code timeout} for the server to exit on its own; its exit code, or null if it is still running. */
  Integer awaitExit(Duration timeout) throws InterruptedException {
    return process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS) ? process.exitValue() : null;
  }

  /** SIGKILL (Process.destroyForcibly sends SIGKILL on Linux): no shutdown hook, no flush, no cleanup. */
  void kill9() {
    process.destroyForcibly();
    try {
      if (!process.waitFor(20, TimeUnit.SECONDS)) {
        throw new IllegalStateException("server pid " + process.pid() + " survived SIGKILL");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public void close() {
    if (process.isAlive()) {
      stop();
    }
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public String toString() {
    return "bazel-cache pid " + process.pid() + " at " + baseUri();
  }
}
