package io.bazelcache.server;

import io.bazelcache.config.Config;
import io.bazelcache.config.ConfigException;
import io.bazelcache.config.ConfigLoader;
import java.util.concurrent.CountDownLatch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** {@code bazel-cache [bazel-remote flags]}: loads the configuration and runs the server until SIGTERM/SIGINT. */
public final class Main {
  private static final Logger log = LoggerFactory.getLogger(Main.class);

  private Main() {}

  public static void main(String[] args) {
    Logging.configure();
    Config config;
    try {
      config = ConfigLoader.load(args, System.getenv());
    } catch (ConfigException e) {
      System.err.println("bazel-cache: " + e.getMessage());
      System.exit(2);
      return;
    }
    if (config.helpRequested()) {
      System.out.print(ConfigLoader.helpText());
      System.exit(0);
      return;
    }
    config.warnings().forEach(w -> log.warn("{}", w));

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
