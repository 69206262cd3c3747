package io.bazelcache.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.bazelcache.auth.HtpasswdEntries;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** The server jar as a process: idle_timeout ends it, an unusable htpasswd file stops it at start-up. */
class SecurityProcessIT {
  @Test
  void idleTimeoutEndsTheProcessAfterTheLastRequest() throws Exception {
    Path runDir = E2e.runDir("SecurityProcessIT-idle");
    try (ServerProcess server = ServerProcess.start(runDir.resolve("cache"), 1, runDir.resolve("logs"),
        "--idle_timeout", "4s")) {
      HttpClient client = HttpClient.newHttpClient();
      // Requests keep it up: 3 s apart, each within the 4 s window.
      for (int i = 0; i < 3; i++) {
        Thread.sleep(3000);
        assertThat(client.send(HttpRequest.newBuilder(server.baseUri().resolve("/status")).build(),
            HttpResponse.BodyHandlers.discarding()).statusCode()).isEqualTo(200);
      }
      long lastRequest = System.nanoTime();
      Integer exit = server.awaitExit(Duration.ofSeconds(30));
      Duration after = Duration.ofNanos(System.nanoTime() - lastRequest);
      assertThat(exit).as("exit code; log %s", server.log()).isEqualTo(0);
      assertThat(after).isBetween(Duration.ofSeconds(3), Duration.ofSeconds(15));
      assertThat(E2e.tail(server.log(), 4000)).contains("idle_timeout reached, exiting");
    }
  }

  @Test
  void plainTextHtpasswdEntryStopsTheStartWithOneLine() throws Exception {
    Path runDir = E2e.runDir("SecurityProcessIT-htpasswd");
    Files.createDirectories(runDir);
    Path htpasswd = Files.writeString(runDir.resolve("htpasswd"), "# team\n"
        + HtpasswdEntries.line("ok", "pw", HtpasswdEntries.Format.BCRYPT) + "\nplain:letmein\n");
    assertThatThrownBy(() -> ServerProcess.start(runDir.resolve("cache"), 1, runDir.resolve("logs"),
        "--htpasswd_file", htpasswd.toString()))
        .hasMessageContaining("server exited with code 1")
        .hasMessageContaining("bazel-cache: cannot start: htpasswd_file " + htpasswd
            + " line 3: unsupported password format for user \"plain\" (DES crypt or plain text)");
  }
}
