package io.bazelcache.config;

/**
 * A listener address as bazel-remote writes it: {@code [host]:port} for TCP (host optional, IPv6
 * hosts in brackets) or {@code unix://path} for a Unix domain socket.
 */
public sealed interface ListenAddress permits ListenAddress.Tcp, ListenAddress.Unix {

  /** A TCP listener. An empty host means all interfaces; port 0 means a random port. */
  record Tcp(String host, int port) implements ListenAddress {
    @Override
    public String toString() {
      return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
    }
  }

  /** A Unix domain socket listener. */
  record Unix(String path) implements ListenAddress {
    @Override
    public String toString() {
      return "unix://" + path;
    }
  }

  /** Parses {@code [host]:port} or {@code unix://path}; throws IllegalArgumentException. */
  static ListenAddress parse(String text) {
    String s = text.strip();
    if (s.startsWith("unix://")) {
      String path = s.substring("unix://".length());
      if (path.isEmpty()) {
        throw new IllegalArgumentException("unix:// needs a socket path");
      }
      return new Unix(path);
    }
    int colon = s.lastIndexOf(':');
    if (colon < 0) {
      throw new IllegalArgumentException("expected [host]:port or unix://path");
    }
    String host = s.substring(0, colon);
    String port = s.substring(colon + 1);
    if (host.startsWith("[")) {
      if (!host.endsWith("]") || host.length() < 3) {
        throw new IllegalArgumentException("unbalanced brackets around the host");
      }
      host = host.substring(1, host.length() - 1);
    } else if (host.contains(":")) {
      throw new IllegalArgumentException("IPv6 hosts must be written in brackets, like [::1]:8080");
    }
    if (host.contains("/") || host.contains(" ")) {
      throw new IllegalArgumentException("invalid host '" + host + "'");
    }
    return new Tcp(host, parsePort(port));
  }

  private static int parsePort(String port) {
    if (port.isEmpty() || !port.chars().allMatch(Character::isDigit) || port.length() > 5) {
      throw new IllegalArgumentException("invalid port '" + port + "'");
    }
    int p = Integer.parseInt(port);
    if (p > 65535) {
      throw new IllegalArgumentException("port " + p + " is out of range 0-65535");
    }
    return p;
  }
}
