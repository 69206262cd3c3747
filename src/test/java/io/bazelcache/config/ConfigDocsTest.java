package io.bazelcache.config;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class ConfigDocsTest {
  private static final Path DOC = Path.of("docs/CONFIG.md");

  /**
   * docs/CONFIG.md must be exactly what the option table generates. To refresh it after changing
   * Options, run {@code ./mvnw -B -q test -Dtest=ConfigDocsTest -Dbazelcache.updateDocs=true}.
   */
  @Test
  void configDocIsInSyncWithTheOptionTable() throws Exception {
    String generated = ConfigDocs.markdown();
    if (Boolean.getBoolean("bazelcache.updateDocs")) {
      Files.createDirectories(DOC.getParent());
      Files.writeString(DOC, generated, StandardCharsets.UTF_8);
    }
    assertThat(DOC).as("docs/CONFIG.md exists (run from the project directory)").exists();
    String onDisk = Files.readString(DOC, StandardCharsets.UTF_8);
    assertThat(onDisk)
        .as("docs/CONFIG.md is stale; regenerate it with"
            + " ./mvnw -B -q test -Dtest=ConfigDocsTest -Dbazelcache.updateDocs=true")
        .isEqualTo(generated);
  }

  @Test
  void docListsEveryKeyFlagEnvironmentVariableAndStatus() {
    String doc = ConfigDocs.markdown();
    for (Option o : Options.ALL) {
      String row = doc.lines().filter(l -> l.startsWith("| `" + o.key() + "`")
          || (!o.inYaml() && l.startsWith("| ") && l.contains("`" + o.flag() + "`"))).findFirst().orElseThrow(
              () -> new AssertionError("no row for " + o.key()));
      for (String flag : o.flags()) {
        assertThat(row).contains("`" + flag + "`");
      }
      for (String env : o.envVars()) {
        assertThat(row).contains("`" + env + "`");
      }
      assertThat(row).contains(o.status() == Status.SUPPORTED ? "| supported |" : "| not yet |");
    }
    assertThat(doc).contains("## `s3_proxy` block", "## `ldap` block", "deliberately differs");
  }

  @Test
  void helpListsEveryOptionWithItsEnvironmentVariableAndDefault() {
    String help = ConfigLoader.helpText();
    assertThat(help).startsWith("Usage: bazel-cache [OPTIONS]");
    for (Option o : Options.ALL) {
      String name = o.flags().isEmpty() ? o.key() + ":" : o.flag();
      int at = help.indexOf("\n  " + name);
      assertThat(at).as(name).isGreaterThanOrEqualTo(0);
      int next = help.indexOf("\n  -", at + 1);
      int nextYaml = help.indexOf("\nYAML-only", at + 1);
      int end = next < 0 ? help.length() : next;
      if (nextYaml > 0 && nextYaml < end) {
        end = nextYaml;
      }
      String entry = help.substring(at, end).replaceAll("\\s+", " ");
      for (String env : o.envVars()) {
        assertThat(entry).as(name).contains(env);
      }
      String def = o.defaultText() == null || o.defaultText().isEmpty() ? "(empty)" : o.defaultText();
      assertThat(entry).as(name).contains("Default: " + def.replaceAll("\\s+", " "));
      assertThat(entry.contains("[not supported yet]")).as(name).isEqualTo(o.status() == Status.NOT_YET);
    }
    for (String line : help.split("\n")) {
      assertThat(line.length()).as(line).isLessThanOrEqualTo(100);
    }
  }
}
