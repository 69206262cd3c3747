package io.bazelcache.auth;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Base64;
import java.util.Locale;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;

/**
 * Checks {@code Authorization: Basic base64(user:password)} values (HTTP header or gRPC metadata) against an
 * {@link Htpasswd} file.
 *
 * <p>bcrypt is slow by design (tens of milliseconds at cost 10), and Bazel sends the same credentials on every
 * request, so successful checks are remembered for {@code ttl}. The memory holds only a salted SHA-256 of the header
 * value (the salt is random per process), never the password; failures are never remembered. At most
 * {@code maxEntries} successes are kept; when full, the memory is emptied.
 *
 * <p>Like bazel-remote (whose htpasswd provider reloads a changed file), the file is checked for changes at most
 * every {@link #RELOAD_CHECK_INTERVAL}; a changed file replaces the users and empties the memory, so a removed user or
 * changed password stops working within seconds. A changed file that no longer loads is logged and the previous users
 * stay in force.
 */
public final class BasicAuthenticator {
  public static final Duration DEFAULT_TTL = Duration.ofMinutes(5);
  public static final int DEFAULT_MAX_ENTRIES = 10_000;
  public static final Duration RELOAD_CHECK_INTERVAL = Duration.ofSeconds(5);
  private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(BasicAuthenticator.class);

  private volatile Htpasswd users;
  private volatile java.nio.file.attribute.FileTime loadedModified;
  private volatile long nextReloadCheck;
  private final long ttlNanos;
  private final int maxEntries;
  private final LongSupplier clock;
  private final byte[] salt = new byte[32];
  /** key: base64(sha256(salt || header)); value: expiry in clock nanos. */
  private final ConcurrentHashMap<String, Long> remembered = new ConcurrentHashMap<>();

  public BasicAuthenticator(Htpasswd users) {
    this(users, DEFAULT_TTL, DEFAULT_MAX_ENTRIES, System::nanoTime);
  }

  BasicAuthenticator(Htpasswd users, Duration ttl, int maxEntries, LongSupplier clock) {
    this.users = users;
    this.loadedModified = modified(users.file());
    this.nextReloadCheck = clock.getAsLong() + RELOAD_CHECK_INTERVAL.toNanos();
    this.ttlNanos = ttl.toNanos();
    this.maxEntries = maxEntries;
    this.clock = clock;
    new SecureRandom().nextBytes(salt);
  }

  /** The user and password of a {@code Basic} authorization value, or null if it is absent or not Basic. */
  public record Credentials(String user, String password) {
    @Override
    public String toString() {
      return "Credentials[" + user + ", ****]";
    }
  }

  /** Parses {@code Basic <base64(user:password)>} (scheme case-insensitive); null if missing or malformed. */
  public static Credentials parse(String authorization) {
    if (authorization == null) {
      return null;
    }
    String v = authorization.strip();
    int sp = v.indexOf(' ');
    if (sp < 0 || !v.substring(0, sp).toLowerCase(Locale.ROOT).equals("basic")) {
      return null;
    }
    byte[] decoded;
    try {
      decoded = Base64.getDecoder().decode(v.substring(sp + 1).strip());
    } catch (IllegalArgumentException e) {
      return null;
    }
    String pair = new String(decoded, StandardCharsets.UTF_8);
    int colon = pair.indexOf(':');
    if (colon < 0) {
      return null;
    }
    return new Credentials(pair.substring(0, colon), pair.substring(colon + 1));
  }

  /** Whether the authorization value carries a user and password listed in the htpasswd file. */
  public boolean authenticate(String authorization) {
    if (authorization == null) {
      return false;
    }
    long now = clock.getAsLong();
    reloadIfChanged(now);
    String key = key(authorization);
    Long expiry = remembered.get(key);
    if (expiry != null) {
      if (expiry - now > 0) {
        return true;
      }
      remembered.remove(key, expiry);
    }
    Credentials c = parse(authorization);
    if (c == null || !users.verify(c.user(), c.password())) {
      return false;
    }
    if (ttlNanos > 0) {
      if (remembered.size() >= maxEntries) {
        remembered.clear();
      }
      remembered.put(key, now + ttlNanos);
    }
    return true;
  }

  private void reloadIfChanged(long now) {
    if (now - nextReloadCheck < 0) {
      return;
    }
    synchronized (this) {
      if (now - nextReloadCheck < 0) {
        return;
      }
      nextReloadCheck = now + RELOAD_CHECK_INTERVAL.toNanos();
      java.nio.file.attribute.FileTime m = modified(users.file());
      if (m == null || m.equals(loadedModified)) {
        return;
      }
      loadedModified = m;
      try {
        users = Htpasswd.load(users.file());
        remembered.clear();
        log.info("reloaded {} ({} users)", users.file(), users.users().size());
      } catch (java.io.IOException e) {
        log.error("{}; keeping the previous users", e.getMessage());
      }
    }
  }

  private static java.nio.file.attribute.FileTime modified(java.nio.file.Path file) {
    try {
      return java.nio.file.Files.getLastModifiedTime(file);
    } catch (java.io.IOException e) {
      return null;
    }
  }

  /** How many successful checks are remembered right now. */
  int rememberedCount() {
    return remembered.size();
  }

  private String key(String authorization) {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      md.update(salt);
      md.update(authorization.getBytes(StandardCharsets.UTF_8));
      return Base64.getEncoder().encodeToString(md.digest());
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
