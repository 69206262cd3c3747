package io.bazelcache.config;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Renders {@code --help} and {@code docs/CONFIG.md} from the option table. Regenerate the document
 * with {@code ./mvnw -B -q test -Dtest=ConfigDocsTest -Dbazelcache.updateDocs=true}, or after
 * compiling with {@code (. scripts/find-jdk.sh; "$JAVA_HOME/bin/java" -cp target/classes
 * io.bazelcache.config.ConfigDocs docs/CONFIG.md)}. Pass {@code --help} instead of a path to print
 * the help text.
 */
public final class ConfigDocs {
  private static final int WIDTH = 100;

  private ConfigDocs() {}

  /** Writes docs/CONFIG.md (or the path given as the first argument). */
  public static void main(String[] args) throws IOException {
    if (args.length > 0 && args[0].equals("--help")) {
      System.out.print(helpText());
      return;
    }
    Path out = Path.of(args.length > 0 ? args[0] : "docs/CONFIG.md");
    if (out.getParent() != null) {
      Files.createDirectories(out.getParent());
    }
    Files.writeString(out, markdown(), StandardCharsets.UTF_8);
  }

  /** The {@code --help} text. */
  public static String helpText() {
    StringBuilder sb = new StringBuilder();
    sb.append("Usage: bazel-cache [OPTIONS]\n\n");
    sb.append("A remote build cache for Bazel, configured like bazel-remote.\n\n");
    wrap(sb, "", "Settings come from flags, environment variables and an optional YAML file"
        + " (--config_file). Flags override environment variables, which override the file, which"
        + " overrides the defaults. Every flag also works with a single dash (-dir) and with a space"
        + " or = before its value. Options marked [not supported yet] are accepted only at their"
        + " default value. See docs/CONFIG.md.");
    sb.append("\nOptions:\n");
    sb.append("  -h, --help\n");
    wrap(sb, "      ", "Show this help and exit.");
    for (Option o : Options.ALL) {
      if (o.flags().isEmpty()) {
        continue;
      }
      sb.append("  ").append(String.join(", ", o.flags()));
      if (o.type() == OptionType.BOOL) {
        sb.append("[=true|false]");
      } else {
        sb.append("=").append(valueLabel(o));
      }
      if (o.status() == Status.NOT_YET) {
        sb.append("  [not supported yet]");
      }
      sb.append('\n');
      wrap(sb, "      ", o.help());
      wrap(sb, "      ", details(o, true));
    }
    sb.append("\nYAML-only keys:\n");
    for (Option o : Options.ALL) {
      if (!o.flags().isEmpty()) {
        continue;
      }
      sb.append("  ").append(o.key()).append(": ").append(valueLabel(o));
      if (o.status() == Status.NOT_YET) {
        sb.append("  [not supported yet]");
      }
      sb.append('\n');
      wrap(sb, "      ", o.help());
      wrap(sb, "      ", details(o, true));
    }
    return sb.toString();
  }

  private static String valueLabel(Option o) {
    return switch (o.type()) {
      case ENUM -> String.join("|", o.choices()).length() <= 40 ? String.join("|", o.choices()) : "VALUE";
      case GIB -> "GIB";
      case INT, LONG -> "INT";
      case DURATION -> "DURATION";
      case ADDRESS -> "ADDRESS";
      case ADDRESS_OR_NONE -> "ADDRESS|none";
      case NUMBER_LIST -> "[NUMBER, ...]";
      default -> "VALUE";
    };
  }

  private static String details(Option o, boolean withYaml) {
    List<String> parts = new ArrayList<>();
    if (o.type() == OptionType.ENUM && valueLabel(o).equals("VALUE")) {
      parts.add("Values: " + String.join(", ", o.choices()) + ".");
    }
    if (!o.envVars().isEmpty()) {
      parts.add("Env: " + String.join(", ", o.envVars()) + ".");
    }
    if (withYaml && o.inYaml() && !o.flags().isEmpty()) {
      parts.add("YAML: " + o.key() + ".");
    }
    String def = o.defaultText() == null || o.defaultText().isEmpty() ? "(empty)" : o.defaultText();
    parts.add("Default: " + def + ".");
    return String.join(" ", parts);
  }

  private static void wrap(StringBuilder sb, String indent, String text) {
    StringBuilder line = new StringBuilder(indent);
    for (String word : text.split(" +")) {
      if (word.isEmpty()) {
        continue;
      }
      if (line.length() > indent.length() && line.length() + 1 + word.length() > WIDTH) {
        sb.append(line).append('\n');
        line = new StringBuilder(indent);
      }
      if (line.length() > indent.length()) {
        line.append(' ');
      }
      line.append(word);
    }
    if (line.length() > indent.length()) {
      sb.append(line).append('\n');
    }
  }

  /** The full text of docs/CONFIG.md. */
  public static String markdown() {
    StringBuilder sb = new StringBuilder();
    sb.append("# bazel-cache configuration\n\n");
    sb.append("<!-- Generated from io.bazelcache.config.Options by io.bazelcache.config.ConfigDocs;"
        + " do not edit by hand. ConfigDocsTest fails when this file is stale. -->\n\n");
    sb.append("""
        bazel-cache is configured like [bazel-remote](https://github.com/buchgr/bazel-remote): the
        same command-line flags, the same YAML keys and the same `BAZEL_REMOTE_*` environment
        variables. Every key bazel-remote knows is listed below.

        ## Where settings come from

        1. Command-line flags (`--dir /data`, `--dir=/data`, or Go-style `-dir /data`).
        2. Environment variables (`BAZEL_REMOTE_DIR=/data`). Empty variables count as unset.
        3. The YAML file named by `--config_file` or `BAZEL_REMOTE_CONFIG_FILE`.
        4. Built-in defaults.

        A higher source overrides a lower one key by key, so a `config.yaml` from a ConfigMap plus
        `BAZEL_REMOTE_S3_ACCESS_KEY_ID` / `BAZEL_REMOTE_S3_SECRET_ACCESS_KEY` from a Secret works.
        Durations use Go syntax (`15s`, `1m30s`, `100ms`). `max_size` and `max_size_hard_limit`
        are whole GiB. Listener addresses are `[host]:port` or `unix://path`.

        Any configuration error stops the server with exit status 2 and one line naming the key,
        for example `bazel-cache: max_size: must be a whole number of GiB of at least 1, got 0
        (from --max_size)`. Unknown YAML keys, also inside blocks such as `s3_proxy`, are errors.
        Environment variables are only read under the names listed here; other `BAZEL_REMOTE_*`
        variables are ignored.

        ## Status

        - **supported**: implemented.
        - **not yet**: parsed and validated, but the feature is not built yet. Setting such a key
          to anything but its default stops the server with `not supported yet: KEY`. Keys inside a
          proxy block only count when that backend is enabled.

        ## Where bazel-cache deliberately differs from bazel-remote

        - **The YAML file does not switch off flags and environment variables.** bazel-remote
          ignores every flag and environment variable once `--config_file` is given, so secrets in
          `BAZEL_REMOTE_S3_*` variables are silently dropped. bazel-cache combines them (see above).
        - **Listener defaults do not depend on the mode.** Without `http_address`, bazel-remote's
          YAML mode listens on `host:port` with port 0 (a random port), and without `grpc_address`
          or `grpc_port` it puts gRPC on a random port. bazel-cache always defaults to `:8080` and
          `:9092`. The deprecated `host`/`port` build the HTTP address when `http_address` is not
          given; `grpc_port` (with `host`) builds the gRPC address when `grpc_address` is not
          given, and `grpc_port: 0` or `grpc_address: none` disables gRPC.
        - **`dir` and `max_size` have defaults** (`$XDG_CACHE_HOME/bazel-cache` or
          `~/.cache/bazel-cache`, and 5 GiB), so running with no arguments works.
        - **`s3_proxy.max_idle_conns` really defaults to 1024.** bazel-remote documents 1024 but
          leaves it at 0, which means 2 idle connections per host.
        - **`max_size_hard_limit` is 0 for off**; negative values are rejected.
        - **`disable_grpc_ac_deps_check`** is also read from the correctly spelled
          `BAZEL_REMOTE_DISABLE_GRPC_AC_DEPS_CHECK`, after bazel-remote's `..._GRPS_...` name.
        - **A proxy backend is enabled** by its block in the YAML file, or by its bucket/url/tenant
          set with a flag or a `BAZEL_REMOTE_*` variable. Generic variables such as `AWS_PROFILE`
          or `AZURE_CLIENT_ID` fill in values but never enable a backend on their own.
          `s3_proxy.endpoint` is required and must not contain a scheme.
        - **Kubernetes service links are detected.** A Service named `bazel-remote` makes
          Kubernetes inject `BAZEL_REMOTE_PORT=tcp://10.0.0.1:8080` into pods, which collides with
          the `port` setting (likewise `bazel-remote-grpc` with `grpc_port`). If the value would be
          used, bazel-cache stops with a message that names the Service; rename the Service, set
          `enableServiceLinks: false`, or set `http_address`. If a flag overrides it or
          `http_address` is given anyway, the variable is skipped with a warning.

        """);
    String section = "";
    for (Option o : Options.ALL) {
      String block = o.block() == null ? "" : o.block();
      if (!block.equals(section) || o == Options.ALL.get(0)) {
        section = block;
        sb.append(block.isEmpty() ? "## Top-level keys\n\n" : "## `" + block + "` block\n\n");
        sb.append("| YAML key | Flag | Environment variable | Type | Default | Status | Meaning |\n");
        sb.append("|---|---|---|---|---|---|---|\n");
      }
      sb.append("| ").append(o.inYaml() ? code(o.key()) : "— (not in YAML)");
      sb.append(" | ").append(o.flags().isEmpty() ? "— (YAML only)" : codes(o.flags()));
      sb.append(" | ").append(o.envVars().isEmpty() ? "—" : codes(o.envVars()));
      sb.append(" | ").append(cell(o.typeLabel()));
      sb.append(" | ").append(Objects.toString(o.defaultText(), "").isEmpty() ? "" : code(o.defaultText()));
      sb.append(" | ").append(o.status() == Status.SUPPORTED ? "supported" : "not yet");
      String deprecated = o.deprecated() && !o.help().startsWith("DEPRECATED") ? "Deprecated. " : "";
      sb.append(" | ").append(cell(deprecated + o.help()));
      sb.append(" |\n");
    }
    return sb.toString();
  }

  private static String code(String s) {
    return "`" + s.replace("|", "\\|") + "`";
  }

  private static String codes(List<String> items) {
    return String.join(", ", items.stream().map(ConfigDocs::code).toList());
  }

  private static String cell(String s) {
    return s.replace("|", "\\|");
  }
}
