package io.bazelcache.e2e;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A real Bazel client on a workspace: Debian's Bazel 4.2.3 on the host ({@code /usr/bin/bazel}), or Debian sid's
 * Bazel 7.7.1 in a chroot through shared/tools/bazel7-chroot.sh (which bind-mounts the workspace into the chroot
 * at the same path; the output_user_root is a path inside the chroot). Each instance has its own output_user_root
 * and {@link #close()} shuts its server down and removes it.
 */
final class Bazel implements AutoCloseable {
  static final Duration COMMAND_TIMEOUT = Duration.ofMinutes(10);
  private static final Path HOST_BAZEL = Path.of("/usr/bin/bazel");
  private static final AtomicInteger RUNS = new AtomicInteger();

  enum Version {
    BAZEL_4_2_3("4.2.3"),
    BAZEL_7_7_1("7.7.1");

    final String label;

    Version(String label) {
      this.label = label;
    }

    boolean inChroot() {
      return this == BAZEL_7_7_1;
    }

    /** Null when this Bazel can run here, else why not. */
    String unavailableReason() {
      if (!inChroot()) {
        return Files.isExecutable(HOST_BAZEL) ? null
            : "Bazel 4.2.3 at " + HOST_BAZEL + " (bash ../shared/tools/install-bazel.sh host)";
      }
      if (!Files.isExecutable(chrootRoot().resolve("usr/bin/bazel")) || !Files.isRegularFile(chrootScript())) {
        return "Bazel 7.7.1 in chroot " + chrootRoot() + " and " + chrootScript()
            + " (bash ../shared/tools/install-bazel.sh chroot)";
      }
      if (!"root".equals(System.getProperty("user.name"))) {
        return "root, to run Bazel 7.7.1 through chroot";
      }
      return null;
    }

    @Override
    public String toString() {
      return "Bazel " + label;
    }
  }

  /** What a command printed, and how it exited. */
  record Result(String command, int exitCode, String output, Path log) {
    private static final Pattern PROCESSES = Pattern.compile("(?m)^INFO: (\\d+) process(?:es)?(?:: (.*?))?\\.?$");
    private static final Pattern PART = Pattern.compile("(\\d+) ([^,]+)");

    Result assertSuccess() {
      if (exitCode != 0) {
        fail("`bazel " + command + "` exited with " + exitCode + "; log " + log + ":\n" + E2e.tail(log, 6000));
      }
      return this;
    }

    /** The total from Bazel's last "INFO: N processes: ..." line. */
    int totalProcesses() {
      return Integer.parseInt(lastProcessesLine().group(1));
    }

    /**
     * The breakdown of Bazel's last "INFO: 17 processes: 11 remote cache hit, 6 internal." line, e.g.
     * {remote cache hit=11, internal=6}. The order of the parts differs between Bazel versions.
     */
    Map<String, Integer> processes() {
      Matcher line = lastProcessesLine();
      Map<String, Integer> parts = new LinkedHashMap<>();
      if (line.group(2) != null) {
        for (String part : line.group(2).split(",")) {
          Matcher m = PART.matcher(part.trim());
          if (!m.matches()) {
            fail("unexpected part '" + part + "' in Bazel's line: " + line.group());
          }
          parts.merge(m.group(2).trim(), Integer.parseInt(m.group(1)), Integer::sum);
        }
      }
      return parts;
    }

    private Matcher lastProcessesLine() {
      int lastStart = -1;
      for (Matcher m = PROCESSES.matcher(output); m.find(); ) {
        lastStart = m.start();
      }
      Matcher last = PROCESSES.matcher(output);
      if (lastStart < 0 || !last.find(lastStart)) {
        fail("no 'INFO: N processes' line in the output of `bazel " + command + "`; log " + log);
      }
      return last;
    }
  }

  private final Version version;
  private final Path workspace;
  private final Path logDir;
  private final String outputUserRoot;
  private final List<String> repositoryFlags;
  private final List<String> startupOptions;

  private Bazel(Version version, Path workspace, Path logDir, List<String> repositoryFlags,
      List<String> startupOptions) {
    this.version = version;
    this.workspace = workspace;
    this.logDir = logDir;
    this.outputUserRoot = "/tmp/bce2e-" + UUID.randomUUID().toString().substring(0, 8);
    this.repositoryFlags = repositoryFlags;
    this.startupOptions = startupOptions;
  }

  /** Skips the test if this Bazel is not installed (fails instead when bazelcache.requireE2e=true). */
  static Bazel open(Version version, TestWorkspace workspace, Path logDir) {
    return open(version, workspace, logDir, List.of());
  }

  /** As {@link #open(Version, TestWorkspace, Path)}, with startup options such as {@code --digest_function=blake3}. */
  static Bazel open(Version version, TestWorkspace workspace, Path logDir, List<String> startupOptions) {
    E2e.assumePrerequisite(version.unavailableReason() == null, version.unavailableReason());
    List<String> flags = new ArrayList<>();
    if (version.inChroot()) {
      // Debian's Bazel 7.7.1 offline: WORKSPACE mode, rule repositories from the Debian packages.
      flags.add("--noenable_bzlmod");
      flags.add("--enable_workspace");
      for (String rules : List.of("java", "cc", "python", "proto", "license")) {
        flags.add("--override_repository=rules_" + rules + "=/usr/share/bazel/rules/" + rules);
      }
      flags.add("--override_repository=platforms=/usr/share/bazel/tools/platforms");
      flags.add("--override_repository=bazel_skylib=/usr/share/bazel/tools/skylib");
      flags.add("--override_repository=bazel_features=/usr/share/bazel/tools/features");
    } else {
      // Debian's Bazel 4.2.3 ships no rules_cc/rules_java; the workspace brings stand-ins.
      flags.addAll(workspace.bazel4RepositoryOverrides());
    }
    return new Bazel(version, workspace.root(), logDir, List.copyOf(flags), List.copyOf(startupOptions));
  }

  /** {@code bazel build <flags> <args>} without convenience symlinks and with local (unsandboxed) execution. */
  Result build(String... args) {
    List<String> all = new ArrayList<>(List.of("--spawn_strategy=local", "--symlink_prefix=/"));
    all.addAll(List.of(args));
    return run("build", all);
  }

  Result clean() {
    return run("clean", List.of());
  }

  /** {@code bazel info <key>} as a host path (mapped out of the chroot for Bazel 7). */
  Path infoPath(String key) {
    Result result = run("info", List.of(key)).assertSuccess();
    String value = result.output().lines()
        .filter(l -> l.startsWith("/"))
        .reduce((a, b) -> b)
        .orElseThrow(() -> new AssertionError("no path in `bazel info " + key + "`: " + result.output()));
    return hostPath(value.trim());
  }

  /** A path Bazel printed, as seen from the host. */
  Path hostPath(String bazelPath) {
    if (!version.inChroot()) {
      return Path.of(bazelPath);
    }
    return chrootRoot().resolve(bazelPath.substring(1));
  }

  Result run(String command, List<String> args) {
    List<String> cmd = new ArrayList<>();
    if (version.inChroot()) {
      cmd.addAll(List.of("bash", chrootScript().toString()));
    } else {
      cmd.add(HOST_BAZEL.toString());
    }
    cmd.add("--output_user_root=" + outputUserRoot);
    cmd.add("--max_idle_secs=600"); // a server left behind by an aborted test goes away by itself
    cmd.addAll(startupOptions);
    cmd.add(command);
    if (!command.equals("shutdown")) {
      cmd.addAll(repositoryFlags);
    }
    cmd.addAll(args);
    Path log = logDir.resolve(String.format("bazel-%s-%02d-%s.log",
        version.label, RUNS.incrementAndGet(), command));
    ProcessBuilder pb = new ProcessBuilder(cmd)
        .directory(workspace.toFile())
        .redirectErrorStream(true)
        .redirectOutput(log.toFile())
        .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
    if (version.inChroot()) {
      pb.environment().put("BAZEL7_ROOT", chrootRoot().toString());
    } else {
      // Debian's Bazel 4.2.3 runs its server on JAVA_HOME; ./mvnw exports a JDK 25 that it does not support.
      pb.environment().remove("JAVA_HOME");
    }
    String shown = command + " " + String.join(" ", args);
    long start = System.nanoTime();
    try {
      Files.createDirectories(logDir);
      Process p = pb.start();
      if (!p.waitFor(COMMAND_TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
        p.destroyForcibly();
        p.waitFor(30, TimeUnit.SECONDS);
        fail("`bazel " + shown + "` did not finish within " + COMMAND_TIMEOUT + "; log " + log + ":\n"
            + E2e.tail(log, 4000));
      }
      String output = Files.readString(log);
      System.out.printf("[e2e] %s: bazel %s -> exit %d in %.1f s (log %s)%n", version, command,
          p.exitValue(), (System.nanoTime() - start) / 1e9, log);
      return new Result(shown, p.exitValue(), output, log);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot run " + cmd, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /** Shuts the Bazel server down, undoes the chroot's bind mount of the workspace, deletes the output root. */
  @Override
  public void close() {
    run("shutdown", List.of());
    if (version.inChroot()) {
      Path mountPoint = null;
      try {
        // bazel7-chroot.sh bind-mounts `pwd -P`, the workspace's path with symbolic links resolved.
        mountPoint = chrootRoot().resolve(workspace.toRealPath().toString().substring(1));
        new ProcessBuilder("umount", "-l", mountPoint.toString()).inheritIO().start().waitFor(60, TimeUnit.SECONDS);
        // Remove the now empty mount point and its empty parents that bazel7-chroot.sh created in the chroot.
        for (Path dir = mountPoint; dir.startsWith(chrootRoot()) && dir.getNameCount() > chrootRoot().getNameCount() + 1;
            dir = dir.getParent()) {
          try (var entries = Files.list(dir)) {
            if (entries.findAny().isPresent()) {
              break;
            }
          }
          Files.delete(dir);
        }
      } catch (IOException e) {
        System.out.println("[e2e] could not remove bind mount " + mountPoint + ": " + e);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    E2e.deleteTree(hostPath(outputUserRoot));
  }

  static Path chrootRoot() {
    String root = System.getenv("BAZEL7_ROOT");
    return Path.of(root == null || root.isEmpty() ? "/opt/bazel7-sid" : root);
  }

  static Path chrootScript() {
    return E2e.sharedTools().resolve("bazel7-chroot.sh");
  }
}
