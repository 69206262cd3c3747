package io.bazelcache.deploy;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The image that {@code deploy/image/build-image.sh} wrote (skipped when it has not been built: building it is
 * slow and not part of {@code ./mvnw verify}), read from the tar itself: it runs as the Deployment's uid/gid 1000,
 * exposes 8080 and 9092, keeps its data in /data (owned by 1000 in the base layer), and its entrypoint runs
 * {@code io.bazelcache.server.Main} with the image's own Java runtime. Also checks the module asks for the same
 * user and paths, which needs no image.
 */
class ImageConfigTest {
  private static final Path PROJECT = Path.of(System.getProperty("bazelcache.projectDir", "."));
  private static final Path IMAGE = PROJECT.resolve("target/image/bazel-cache-image.tar");
  private static final ObjectMapper JSON = new ObjectMapper();

  @Test
  void moduleRunsTheImageAsItsUserWithItsPaths() throws IOException {
    String main = Files.readString(PROJECT.resolve("deploy/tofu/modules/bazel-cache/main.tf"));
    assertThat(main).containsPattern("run_as_user\\s+= 1000").containsPattern("run_as_group\\s+= 1000")
        .containsPattern("fs_group\\s+= 1000").containsPattern("run_as_non_root\\s+= true")
        .contains("config_dir  = \"/etc/bazel-remote\"", "mount_path = \"/data\"", "enable_service_links = false",
            "args  = [\"--config_file=${local.config_path}\"]");
    String pom = Files.readString(PROJECT.resolve("pom.xml"));
    assertThat(pom).contains("<user>1000:1000</user>", "<mainClass>io.bazelcache.server.Main</mainClass>",
        "<port>8080</port><port>9092</port>", "<volume>/data</volume>");
  }

  @Test
  void builtImageRunsMainAsUid1000WithPortsAndData() throws IOException {
    Assumptions.assumeTrue(Files.isRegularFile(IMAGE), "no image built (deploy/image/build-image.sh)");
    Map<String, byte[]> files = untar(Files.readAllBytes(IMAGE));
    JsonNode index = JSON.readTree(files.get("index.json"));
    JsonNode manifest = JSON.readTree(blob(files, index.at("/manifests/0/digest").asText()));
    JsonNode config = JSON.readTree(blob(files, manifest.at("/config/digest").asText()));
    JsonNode c = config.get("config");

    assertThat(c.get("User").asText()).isEqualTo("1000:1000");
    assertThat(names(c.get("ExposedPorts"))).containsExactlyInAnyOrder("8080/tcp", "9092/tcp");
    assertThat(names(c.get("Volumes"))).containsExactly("/data");
    List<String> entrypoint = texts(c.get("Entrypoint"));
    assertThat(entrypoint.get(0)).isEqualTo("java");
    assertThat(entrypoint).endsWith("io.bazelcache.server.Main");
    assertThat(texts(c.get("Env"))).contains("JAVA_HOME=/opt/java").anyMatch(e -> e.startsWith("PATH=/opt/java/bin:"));
    assertThat(texts(c.get("Cmd"))).containsExactly("--dir=/data");

    // The base layer: the runtime, /data owned by 1000:1000, the user in /etc/passwd.
    JsonNode layers = manifest.get("layers");
    assertThat(layers.size()).isGreaterThan(1);
    Map<String, TarEntry> base = new HashMap<>();
    for (TarEntry e : entries(gunzipIfNeeded(blob(files, layers.get(0).get("digest").asText())))) {
      base.put(e.name().replaceFirst("^\\./", "").replaceFirst("/$", ""), e);
    }
    assertThat(base).containsKeys("opt/java/bin/java", "opt/java/lib/server/libjvm.so", "lib64/ld-linux-x86-64.so.2");
    assertThat(base.get("data").uid()).isEqualTo(1000);
    assertThat(base.get("data").gid()).isEqualTo(1000);
    assertThat(new String(base.get("etc/passwd").data())).contains(":x:1000:1000:");
  }

  record TarEntry(String name, int uid, int gid, byte[] data) {}

  private static byte[] blob(Map<String, byte[]> files, String digest) {
    byte[] b = files.get("blobs/" + digest.replace(':', '/'));
    assertThat(b).as("blob %s", digest).isNotNull();
    return b;
  }

  private static List<String> names(JsonNode object) {
    List<String> out = new ArrayList<>();
    object.fieldNames().forEachRemaining(out::add);
    return out;
  }

  private static List<String> texts(JsonNode array) {
    List<String> out = new ArrayList<>();
    array.forEach(n -> out.add(n.asText()));
    return out;
  }

  private static byte[] gunzipIfNeeded(byte[] b) throws IOException {
    if (b.length > 2 && (b[0] & 0xff) == 0x1f && (b[1] & 0xff) == 0x8b) {
      try (InputStream in = new GZIPInputStream(new java.io.ByteArrayInputStream(b))) {
        return in.readAllBytes();
      }
    }
    return b;
  }

  private static Map<String, byte[]> untar(byte[] tar) {
    Map<String, byte[]> out = new HashMap<>();
    for (TarEntry e : entries(tar)) {
      out.put(e.name(), e.data());
    }
    return out;
  }

  /** A minimal ustar/pax reader: regular files and directories, pax "path" overrides. */
  private static List<TarEntry> entries(byte[] tar) {
    List<TarEntry> out = new ArrayList<>();
    int pos = 0;
    String paxPath = null;
    while (pos + 512 <= tar.length && tar[pos] != 0) {
      String name = field(tar, pos, 100);
      String prefix = field(tar, pos + 345, 155);
      if (!prefix.isEmpty()) {
        name = prefix + "/" + name;
      }
      int uid = (int) octal(tar, pos + 108, 8);
      int gid = (int) octal(tar, pos + 116, 8);
      long size = octal(tar, pos + 124, 12);
      char type = (char) tar[pos + 156];
      byte[] data = java.util.Arrays.copyOfRange(tar, pos + 512, (int) (pos + 512 + size));
      pos += 512 + (int) ((size + 511) / 512 * 512);
      if (type == 'x') {
        for (String rec : new String(data, java.nio.charset.StandardCharsets.UTF_8).split("\n")) {
          int sp = rec.indexOf(' ');
          if (sp > 0 && rec.startsWith("path=", sp + 1)) {
            paxPath = rec.substring(sp + 1 + "path=".length());
          }
        }
        continue;
      }
      if (type == 'g') {
        continue;
      }
      out.add(new TarEntry(paxPath != null ? paxPath : name, uid, gid, data));
      paxPath = null;
    }
    return out;
  }

  private static String field(byte[] b, int off, int len) {
    int end = off;
    while (end < off + len && b[end] != 0) {
      end++;
    }
    return new String(b, off, end - off, java.nio.charset.StandardCharsets.UTF_8);
  }

  private static long octal(byte[] b, int off, int len) {
    String s = field(b, off, len).trim();
    return s.isEmpty() ? 0 : Long.parseLong(s, 8);
  }
}
