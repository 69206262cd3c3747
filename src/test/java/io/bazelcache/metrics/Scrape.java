package io.bazelcache.metrics;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** A parsed Prometheus text-format page: samples with their labels, and the families of the TYPE lines. */
final class Scrape {
  record Sample(String name, Map<String, String> labels, double value) {}

  final String text;
  final List<Sample> samples = new ArrayList<>();
  /** Family name (as in {@code # TYPE}) → type. */
  final Map<String, String> types = new LinkedHashMap<>();

  Scrape(String text) {
    this.text = text;
    for (String line : text.split("\n")) {
      if (line.isBlank()) {
        continue;
      }
      if (line.startsWith("# TYPE ")) {
        String[] p = line.substring(7).split(" ");
        types.put(p[0], p[1]);
        continue;
      }
      if (line.startsWith("#")) {
        continue;
      }
      samples.add(parse(line));
    }
  }

  private static Sample parse(String line) {
    int brace = line.indexOf('{');
    int space;
    String name;
    Map<String, String> labels = new LinkedHashMap<>();
    if (brace >= 0 && brace < line.indexOf(' ')) {
      name = line.substring(0, brace);
      int i = brace + 1;
      while (line.charAt(i) != '}') {
        int eq = line.indexOf('=', i);
        String key = line.substring(i, eq);
        StringBuilder v = new StringBuilder();
        int j = eq + 2; // skip ="
        while (line.charAt(j) != '"') {
          if (line.charAt(j) == '\\') {
            j++;
          }
          v.append(line.charAt(j++));
        }
        labels.put(key, v.toString());
        i = j + 1;
        if (line.charAt(i) == ',') {
          i++;
        }
      }
      space = i + 1;
    } else {
      space = line.indexOf(' ');
      name = line.substring(0, space);
    }
    String rest = line.substring(space).trim().split(" ")[0];
    return new Sample(name, labels, Double.parseDouble(rest));
  }

  /** Sum of the samples named {@code name} whose labels include all of {@code kv} ("k=v" pairs); NaN if none. */
  double value(String name, String... kv) {
    double sum = 0;
    boolean any = false;
    for (Sample s : samples) {
      if (s.name.equals(name) && matches(s, kv)) {
        sum += s.value;
        any = true;
      }
    }
    return any ? sum : Double.NaN;
  }

  boolean has(String name, String... kv) {
    return !Double.isNaN(value(name, kv));
  }

  private static boolean matches(Sample s, String... kv) {
    for (String p : kv) {
      int eq = p.indexOf('=');
      if (!p.substring(eq + 1).equals(s.labels.get(p.substring(0, eq)))) {
        return false;
      }
    }
    return true;
  }

  /** Distinct values of label {@code label} among samples named {@code name}. */
  Set<String> labelValues(String name, String label) {
    Set<String> out = new LinkedHashSet<>();
    for (Sample s : samples) {
      if (s.name.equals(name) && s.labels.containsKey(label)) {
        out.add(s.labels.get(label));
      }
    }
    return out;
  }

  Set<String> sampleNames() {
    Set<String> out = new LinkedHashSet<>();
    samples.forEach(s -> out.add(s.name));
    return out;
  }
}
