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
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      log.info("shutting down");
      server.close();
      stopped.countDown();
    }, "shutdown"));
    try {
      stopped.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
