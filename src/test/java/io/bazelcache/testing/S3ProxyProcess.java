package io.bazelcache.testing;

import java.io.IOException;
import java.net.HttpURLConnection;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * A real S3 server for tests: S3Proxy 4.1.0 (copied to {@code target/s3proxy/s3proxy.jar} by the build)
 * as a separate process on 127.0.0.1, with SigV2/V4 authentication and the filesystem backend, so data
 * survives a kill and restart. Stopped by its PID (through its {@link Process}).
 */
public final class S3ProxyProcess implements AutoCloseable {
  public static final String ACCESS_KEY = "test-access-key";
  public static final String SECRET_KEY = "test-secret-key";

  private static S3ProxyProcess shared;

  private final Path dir;
  private final int port;
  private int metricsPort; // 0: S3Proxy's Prometheus endpoint is off
  private Process process;

  public S3ProxyProcess(Path dir, int port) {
    this.dir = dir;
    this.port = port;
  }

  /** Starts a server with its data under {@code dir}, on a free port. */
  public static S3ProxyProcess start(Path dir) throws IOException {
    S3ProxyProcess p = new S3ProxyProcess(dir, freePort());
    p.start();
    return p;
  }

  /** One server shared by the test classes of this JVM, stopped when the JVM exits. */
  public static synchronized S3ProxyProcess shared() throws IOException {
    if (shared == null || !shared.isAlive()) {
      Path dir = Files.createTempDirectory("s3proxy-shared-");
      shared = start(dir);
      S3ProxyProcess s = shared;
      Runtime.getRuntime().addShutdownHook(new Thread(s::stop));
    }
    return shared;
  }

  /**
   * Turns on S3Proxy's own Prometheus endpoint (a request counter per S3 operation and status code) on a free
   * port, from the next {@link #start()} on: the tests count requests on the server's side with it.
   */
  public synchronized S3ProxyProcess withMetrics() throws IOException {
    if (metricsPort == 0) {
      metricsPort = freePort();
    }
    return this;
  }

  /** {@code http://127.0.0.1:P/metrics}, after {@link #withMetrics()}. */
  public URI metricsUri() {
    if (metricsPort == 0) {
      throw new IllegalStateException("metrics are off: call withMetrics() before start()");
    }
    return URI.create("http://127.0.0.1:" + metricsPort + "/metrics");
  }

  /** Where the filesystem backend keeps the objects of {@code bucket}, one file per key. */
  public Path bucketDir(String bucket) {
    return dir.resolve("data").resolve(bucket);
  }

  public static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  static Path jar() {
    String base = System.getProperty("bazelcache.projectDir", ".");
    Path jar = Path.of(base, "target", "s3proxy", "s3proxy.jar");
    if (!Files.isRegularFile(jar)) {
      throw new IllegalStateException(jar + " is missing: run the build through Maven "
          + "(process-test-resources copies S3Proxy there)");
    }
    return jar;
  }

  /** Starts (or restarts) the server and waits until it answers HTTP. */
  public synchronized void start() throws IOException {
    if (isAlive()) {
      return;
    }
    Path data = dir.resolve("data");
    Files.createDirectories(data);
    Path props = dir.resolve("s3proxy.properties");
    Files.writeString(props, String.join("\n",
        "s3proxy.endpoint=http://127.0.0.1:" + port,
        "s3proxy.authorization=aws-v2-or-v4",
        "s3proxy.identity=" + ACCESS_KEY,
        "s3proxy.credential=" + SECRET_KEY,
        "jclouds.provider=filesystem",
        "jclouds.filesystem.basedir=" + data.toAbsolutePath(),
        metricsPort == 0 ? "" : "s3proxy.metrics.enabled=true\ns3proxy.metrics.host=127.0.0.1\n"
            + "s3proxy.metrics.port=" + metricsPort + "\n"));
    String java = ProcessHandle.current().info().command().orElse("java");
    ProcessBuilder pb = new ProcessBuilder(List.of(java, "-Xmx256m", "-XX:TieredStopAtLevel=1",
        "-Dlogback.statusListenerClass=ch.qos.logback.core.status.NopStatusListener",
        "-jar", jar().toString(), "--properties", props.toString()));
    pb.redirectErrorStream(true);
    pb.redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("s3proxy.log").toFile()));
    process = pb.start();
    long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
    while (true) {
      if (!process.isAlive()) {
        throw new IOException("S3Proxy exited with " + process.exitValue() + "; log: "
            + Files.readString(dir.resolve("s3proxy.log")));
      }
      if (answers()) {
        return;
      }
      if (System.nanoTime() - deadline > 0) {
        stop();
        throw new IOException("S3Proxy did not answer on port " + port + " within 90 s");
      }
      try {
        Thread.sleep(50);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException("interrupted", e);
      }
    }
  }

  private boolean answers() {
    try {
      HttpURLConnection c = (HttpURLConnection) URI.create("http://127.0.0.1:" + port + "/").toURL().openConnection();
      c.setConnectTimeout(500);
      c.setReadTimeout(2000);
      try {
        return c.getResponseCode() > 0;
      } finally {
        c.disconnect();
      }
    } catch (IOException e) {
      return false;
    }
  }

  public boolean isAlive() {
    return process != null && process.isAlive();
  }

  public long pid() {
    return process.pid();
  }

  /** {@code host:port}, as in {@code s3_proxy.endpoint}. */
  public String endpoint() {
    return "127.0.0.1:" + port;
  }

  public int port() {
    return port;
  }

  /** Kills the process abruptly (SIGKILL), as a crash or network loss would. */
  public synchronized void kill() {
    if (process != null) {
      process.destroyForcibly();
      try {
        process.waitFor();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /** Stops the process (SIGTERM, then SIGKILL after 10 s). */
  public synchronized void stop() {
    if (process == null) {
      return;
    }
    process.destroy();
    try {
      if (!process.waitFor(10, java.util.concurrent.TimeUnit.SECONDS)) {
        process.destroyForcibly();
        process.waitFor();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      process.destroyForcibly();
    }
  }

  @Override
  public void close() {
    stop();
  }
}
