package io.bazelcache.server;

import io.bazelcache.asset.AssetsCommand;
import io.bazelcache.config.Config;
import io.bazelcache.config.ConfigException;
import io.bazelcache.config.ConfigLoader;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.s3.S3Stats;
import java.util.concurrent.CountDownLatch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code bazel-cache [bazel-remote flags]}: loads the configuration and runs the server until SIGTERM/SIGINT.
 * {@code bazel-cache [flags] assets import DIR | assets export --repository-cache DIR} runs the asset
 * command on the configured store instead (see {@link AssetsCommand}).
 *
 * <p>On SIGTERM or SIGINT: readiness goes false ({@code /status} 503, gRPC health NOT_SERVING) for
 * {@code shutdown_delay}, then the listeners close, requests in flight finish (bounded), queued S3 uploads
 * drain (bounded), the disk store closes, and the process exits with status 0. Exit status 1: could not start;
 * 2: bad configuration.
 */
public final class Main {
  private static final Logger log = LoggerFactory.getLogger(Main.class);

  private Main() {}

  /** {@code bazel-cache [flags] assets import|export ...} on the configured store (disk, plus S3 if set). */
  private static int runAssets(Config config, picocli.CommandLine.ParseResult assets) {
    try (BlobStore store = CacheServer.openStore(config, new S3Stats())) {
      return new AssetsCommand(store, System.out).run(assets);
    } catch (IllegalArgumentException e) {
      System.err.println("bazel-cache: " + e.getMessage());
      return 2;
    } catch (Exception e) {
      System.err.println("bazel-cache: assets: " + e.getMessage());
      log.debug("assets failure", e);
      return 1;
    }
  }

  public static void main(String[] args) {
    Logging.configure();
    Config config;
    picocli.CommandLine.Model.CommandSpec spec = ConfigLoader.commandSpec();
    AssetsCommand.addTo(spec);
    ConfigLoader.Loaded loaded;
    try {
      loaded = ConfigLoader.parse(spec, args, System.getenv(), true);
      config = loaded.config();
    } catch (ConfigException e) {
      System.err.println("bazel-cache: " + e.getMessage());
      System.exit(2);
      return;
    }
    picocli.CommandLine.ParseResult assets = AssetsCommand.matched(loaded.parseResult());
    if (config.helpRequested()) {
      if (assets != null) {
        picocli.CommandLine.ParseResult deepest = assets.subcommand() != null ? assets.subcommand() : assets;
        System.out.print(new picocli.CommandLine(deepest.commandSpec()).getUsageMessage());
      } else {
        System.out.print(ConfigLoader.helpText());
      }
      System.exit(0);
      return;
    }
    Logging.timezone(config.logTimezone());
    config.warnings().forEach(w -> log.warn("{}", w));
    if (assets != null) {
      System.exit(runAssets(config, assets));
      return;
    }

    CacheServer server;
    try {
      server = CacheServer.start(config);
    } catch (Exception e) {
      System.err.println("bazel-cache: cannot start: " + e.getMessage());
      log.debug("start failure", e);
      System.exit(1);
      return;
    }
    CountDownLatch stopRequested = new CountDownLatch(1);
    boolean trapped = trap("TERM", stopRequested) & trap("INT", stopRequested);
    // Any other way the JVM goes down (SIGHUP, System.exit elsewhere, or signals we could not trap) still closes
    // the server; close() is idempotent, so after an orderly stop this returns at once.
    Runtime.getRuntime().addShutdownHook(new Thread(server::close, "shutdown"));
    if (!trapped) {
      log.warn("cannot handle SIGTERM/SIGINT; they stop the server without the readiness drain");
    }
    try {
      stopRequested.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    log.info("shutting down");
    server.shutdown(config.shutdownDelay());
    System.exit(0);
  }

  /**
   * Replaces the JVM's default handler of {@code signal} (which runs the shutdown hooks and exits with
   * 128+signal) with one that asks the main thread for an orderly stop ending in exit status 0.
   */
  @SuppressWarnings("restriction")
  private static boolean trap(String signal, CountDownLatch stop) {
    try {
      sun.misc.Signal.handle(new sun.misc.Signal(signal), s -> {
        log.info("received SIG{}", s.getName());
        stop.countDown();
      });
      return true;
    } catch (IllegalArgumentException | UnsupportedOperationException e) {
      return false; // e.g. -Xrs
    }
  }
}
