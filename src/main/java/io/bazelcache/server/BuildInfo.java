package io.bazelcache.server;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;

/** The commit and tags the running build came from (for {@code /status}), read from git.properties. */
public record BuildInfo(String version, String gitCommit, String gitTags) {

  public static BuildInfo load() {
    Properties p = new Properties();
    try (InputStream in = BuildInfo.class.getResourceAsStream("/io/bazelcache/git.properties")) {
      if (in != null) {
        p.load(in);
      }
    } catch (IOException e) {
      // An unreadable resource only costs the informational fields.
    }
    return new BuildInfo(
        p.getProperty("git.build.version", "unknown"),
        p.getProperty("git.commit.id", ""),
        p.getProperty("git.tags", ""));
  }
}
