package io.bazelcache.e2e;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * A small offline Bazel workspace (WORKSPACE mode): five independent genrules of growing size (the largest a few
 * MiB), one genrule that depends on them, and a C library linked into a cc_binary. Every action's inputs include
 * {@code salt}, so each test run starts from a cold cache even when the cache directory is reused.
 */
final class TestWorkspace {
  /** Top-level outputs, relative to bazel-bin, that every Bazel version downloads after a remote cache hit. */
  static final List<String> OUTPUTS =
      List.of("gen1.txt", "gen2.txt", "gen3.txt", "gen4.txt", "gen5.txt", "joined.txt", "libgreet.a", "hello");

  /** Actions that are not "internal": 6 genrules, 2 compiles, the archive, the shared library and the link. */
  static final int MIN_SPAWNS = 11;

  private final Path root;
  private final Path shims;

  private TestWorkspace(Path root, Path shims) {
    this.root = root;
    this.shims = shims;
  }

  /** A workspace someone else wrote at {@code root} (for Bazel 7, which needs no Bazel 4 stand-ins). */
  static TestWorkspace at(Path root) {
    return new TestWorkspace(root, root.resolveSibling("shims"));
  }

  Path root() {
    return root;
  }

  /** Writes the workspace to {@code dir/ws} (and Bazel 4 stand-ins to {@code dir/shims}). */
  static TestWorkspace write(Path dir, String salt) {
    Path root = dir.resolve("ws");
    Path shims = dir.resolve("shims");
    String build = """
        SALT = "%s"

        [genrule(
            name = "gen%%d" %% i,
            outs = ["gen%%d.txt" %% i],
            cmd = "echo %%s > $@ && seq 1 %%d | sed 's/^/line gen%%d /' >> $@" %% (SALT, lines, i),
        ) for i, lines in [(1, 20), (2, 200), (3, 2000), (4, 20000), (5, 200000)]]

        genrule(
            name = "joined",
            srcs = [":gen%%d" %% i for i in range(1, 6)],
            outs = ["joined.txt"],
            cmd = "cat $(SRCS) | sha256sum > $@ && wc -c $(SRCS) >> $@",
        )

        cc_library(
            name = "greet",
            srcs = ["greet.c"],
            hdrs = ["greet.h"],
            copts = ["-DSALT=\\\\\\"%s\\\\\\""],
        )

        cc_binary(
            name = "hello",
            srcs = ["hello.c"],
            deps = [":greet"],
        )
        """.formatted(salt, salt);
    write(root, Map.of(
        "WORKSPACE", "workspace(name = \"e2e\")\n",
        "BUILD", build,
        "greet.h", "const char *greeting(void);\n",
        "greet.c", """
            #include "greet.h"
            const char *greeting(void) { return "hello from the bazel-cache e2e workspace, salt " SALT; }
            """,
        "hello.c", """
            #include <stdio.h>
            #include "greet.h"
            int main(void) { puts(greeting()); return 0; }
            """));
    // Debian's Bazel 4.2.3 has no rules_cc or rules_java and cannot download them; its @bazel_tools only loads
    // these names from them, which the native rules provide.
    write(shims.resolve("rules_cc"), Map.of(
        "WORKSPACE", "workspace(name = \"rules_cc\")\n",
        "cc/BUILD", """
            package(default_visibility = ["//visibility:public"])
            alias(name = "toolchain_type", actual = "@bazel_tools//tools/cpp:toolchain_type")
            """,
        "cc/defs.bzl", nativeAliases("cc_binary", "cc_import", "cc_library", "cc_proto_library", "cc_test",
            "cc_toolchain", "cc_toolchain_suite", "objc_library")));
    write(shims.resolve("rules_java"), Map.of(
        "WORKSPACE", "workspace(name = \"rules_java\")\n",
        "java/BUILD", "package(default_visibility = [\"//visibility:public\"])\n",
        "java/defs.bzl", nativeAliases("java_binary", "java_import", "java_library", "java_runtime",
            "java_toolchain")));
    return new TestWorkspace(root, shims);
  }

  List<String> bazel4RepositoryOverrides() {
    return List.of(
        "--override_repository=rules_cc=" + shims.resolve("rules_cc"),
        "--override_repository=rules_java=" + shims.resolve("rules_java"));
  }

  private static String nativeAliases(String... names) {
    StringBuilder sb = new StringBuilder();
    for (String name : names) {
      sb.append(name).append(" = native.").append(name).append('\n');
    }
    return sb.toString();
  }

  private static void write(Path dir, Map<String, String> files) {
    try {
      for (Map.Entry<String, String> file : files.entrySet()) {
        Path path = dir.resolve(file.getKey());
        Files.createDirectories(path.getParent());
        Files.writeString(path, file.getValue());
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
