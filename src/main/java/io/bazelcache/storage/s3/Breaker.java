package io.bazelcache.storage.s3;

import java.time.Duration;

/**
 * A small circuit breaker: after {@code threshold} consecutive failures (I/O errors, timeouts, 5xx) the
 * backend is considered down for a cooldown (doubling up to a maximum), during which requests fail at
 * once instead of each waiting for its timeout. After the cooldown requests go through again; one
 * success closes the breaker.
 */
final class Breaker {
  private final int threshold;
  private final long minCooldown;
  private final long maxCooldown;
  private int consecutive;
  private long cooldown;
  private long openUntil;

  Breaker(int threshold, Duration minCooldown, Duration maxCooldown) {
    this.threshold = threshold;
    this.minCooldown = minCooldown.toNanos();
    this.maxCooldown = maxCooldown.toNanos();
    this.cooldown = this.minCooldown;
    this.openUntil = System.nanoTime();
  }

  synchronized boolean allow() {
    return consecutive < threshold || System.nanoTime() - openUntil >= 0;
  }

  /** Records a success; returns true if the breaker had been open (the backend is back). */
  synchronized boolean success() {
    boolean wasOpen = consecutive >= threshold;
    consecutive = 0;
    cooldown = minCooldown;
    return wasOpen;
  }

  /** Records a failure; returns the pause in nanoseconds if this opened the breaker, else 0. */
  synchronized long failure() {
    consecutive++;
    long now = System.nanoTime();
    if (consecutive >= threshold && now - openUntil >= 0) {
      long pause = cooldown;
      openUntil = now + cooldown;
      cooldown = Math.min(cooldown * 2, maxCooldown);
      return pause;
    }
    return 0;
  }
}
