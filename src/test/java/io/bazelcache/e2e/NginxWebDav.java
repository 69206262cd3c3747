package io.bazelcache.e2e;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * nginx with WebDAV PUT, started through shared/tools/nginx-webdav-cache.sh: a real HTTP cache that Bazel can use,
 * as a stand-in to check the Bazel harness itself while our server is not involved.
 */
final class NginxWebDav implements AutoCloseable {
  private final Path script;
  private final int port;
  private final Path dir;

  private NginxWebDav(Path script, int port, Path dir) {
    this.script = script;
    this.port = port;
    this.dir = dir;
  }

  static boolean available() {
    return Files.isExecutable(Path.of("/usr/sbin/nginx")) && Files.isRegularFile(script());
  }

  private static Path script() {
    return E2e.sharedTools().resolve("nginx-webdav-cache.sh");
  }

  static NginxWebDav start(Path dir) {
    int port = E2e.freePort();
    NginxWebDav nginx = new NginxWebDav(script(), port, dir);
    nginx.run("start");
    return nginx;
  }

  private void run(String command) {
    try {
      Process p = new ProcessBuilder("bash", script.toString(), command, Integer.toString(port), dir.toString())
          .redirectErrorStream(true)
          .start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
        throw new IllegalStateException("nginx-webdav-cache.sh " + command + " failed: " + out);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  URI baseUri() {
    return URI.create("http://127.0.0.1:" + port);
  }

  @Override
  public void close() {
    run("stop");
    E2e.deleteTree(dir);
  }

  @Override
  public String toString() {
    return "nginx WebDAV at " + baseUri();
  }
}
