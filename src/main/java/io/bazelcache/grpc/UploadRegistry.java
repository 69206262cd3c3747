package io.bazelcache.grpc;

import io.bazelcache.storage.BlobWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * ByteStream uploads in progress and interrupted ones kept for resumption, keyed by their full upload
 * resource name ({@code .../uploads/{uuid}/...}).
 *
 * <p>An upload is <em>active</em> while a Write stream feeds it. When its stream ends without
 * finish_write (cancelled, deadline exceeded, connection lost, half-closed early) it is <em>parked</em>:
 * its {@link BlobWriter} stays open with the bytes received so far, so a later Write with the same
 * name and {@code write_offset} = the committed size continues it. A parked upload idle for longer than
 * the resume window is discarded (its writer closed, which deletes its temporary data and releases the
 * space it reserved). With a zero window interrupted uploads are discarded at once.
 */
final class UploadRegistry implements AutoCloseable {

  /** One upload. {@code committed} is the number of uncompressed bytes written to the writer. */
  static final class Upload {
    final String name;
    final BlobWriter writer;
    volatile long committed;
    /**
     * Its stream has ended but a writer thread is still writing what was received before; it is parked
     * (or finished) shortly. Readers of {@link #committed} wait for that.
     */
    volatile boolean streamEnded;
    boolean active = true; // guarded by synchronized (this)
    long idleSinceNanos;

    Upload(String name, BlobWriter writer) {
      this.name = name;
      this.writer = writer;
    }
  }

  private final Map<String, Upload> uploads = new ConcurrentHashMap<>();
  private final long windowNanos;
  private final int maxParked;
  private final ScheduledExecutorService sweeper;
  private volatile boolean closed;

  UploadRegistry(Duration window, int maxParked) {
    this.windowNanos = window.toNanos();
    this.maxParked = maxParked;
    this.sweeper = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "bytestream-upload-sweeper");
      t.setDaemon(true);
      return t;
    });
    long periodMs = Math.max(100, Math.min(10_000, window.toMillis() / 4));
    sweeper.scheduleWithFixedDelay(this::sweep, periodMs, periodMs, TimeUnit.MILLISECONDS);
  }

  /** Registers a new active upload, discarding a parked one of the same name. */
  Upload start(String name, BlobWriter writer) {
    Upload u = new Upload(name, writer);
    Upload previous = uploads.put(name, u);
    if (previous != null) {
      discardIfIdle(previous);
    }
    return u;
  }

  /** Outcome of {@link #resume}. */
  sealed interface Resume permits Resumed, NotFound, Busy {}

  record Resumed(Upload upload) implements Resume {}

  record NotFound() implements Resume {}

  record Busy() implements Resume {}

  /** How long {@link #committed} and {@link #resume} wait for an upload whose stream just ended. */
  static final long SETTLE_MILLIS = 5_000;

  /**
   * Waits (up to {@link #SETTLE_MILLIS}) while {@code name}'s upload is still being written after its
   * stream ended, so that its committed size is final.
   */
  private void awaitSettled(String name) {
    Upload u = uploads.get(name);
    if (u == null || !u.streamEnded) {
      return;
    }
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(SETTLE_MILLIS);
    synchronized (u) {
      long left;
      while (u.active && u.streamEnded && uploads.get(name) == u
          && (left = deadline - System.nanoTime()) > 0) {
        try {
          TimeUnit.NANOSECONDS.timedWait(u, left);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          return;
        }
      }
    }
  }

  /** Takes over a parked upload to continue it. */
  Resume resume(String name) {
    awaitSettled(name);
    Resume[] out = {new NotFound()};
    uploads.computeIfPresent(name, (k, u) -> {
      synchronized (u) {
        if (u.active) {
          out[0] = new Busy();
        } else {
          u.active = true;
          out[0] = new Resumed(u);
        }
      }
      return u;
    });
    return out[0];
  }

  /**
   * The upload's committed size if one exists (active or parked), else -1. For an upload whose stream
   * just ended, after its last received bytes are written.
   */
  long committed(String name) {
    awaitSettled(name);
    Upload u = uploads.get(name);
    return u == null ? -1 : u.committed;
  }

  /** The upload completed (or failed for good): forget it. The caller closes the writer. */
  void finish(Upload u) {
    uploads.remove(u.name, u);
    synchronized (u) {
      u.notifyAll();
    }
  }

  /** The upload's stream ended without finishing: keep it for resumption (or discard it). */
  void park(Upload u) {
    boolean keep = windowNanos > 0 && maxParked > 0 && u.committed > 0 && !closed;
    if (!keep) {
      uploads.remove(u.name, u);
      u.writer.close();
      synchronized (u) {
        u.notifyAll();
      }
      return;
    }
    synchronized (u) {
      u.active = false;
      u.streamEnded = false;
      u.idleSinceNanos = System.nanoTime();
      u.notifyAll();
    }
    if (uploads.get(u.name) != u) {
      // Replaced by a newer upload of the same name meanwhile.
      discardIfIdle(u);
      return;
    }
    evictOverflow();
    if (closed) {
      // Raced with close(): do not leave it behind.
      if (uploads.remove(u.name, u)) {
        discardIfIdle(u);
      }
    }
  }

  int parkedCount() {
    int n = 0;
    for (Upload u : uploads.values()) {
      synchronized (u) {
        if (!u.active) {
          n++;
        }
      }
    }
    return n;
  }

  private void evictOverflow() {
    while (true) {
      List<Upload> parked = new ArrayList<>();
      for (Upload u : uploads.values()) {
        synchronized (u) {
          if (!u.active) {
            parked.add(u);
          }
        }
      }
      if (parked.size() <= maxParked) {
        return;
      }
      Upload oldest = parked.get(0);
      for (Upload u : parked) {
        if (u.idleSinceNanos - oldest.idleSinceNanos < 0) {
          oldest = u;
        }
      }
      if (uploads.remove(oldest.name, oldest)) {
        discardIfIdle(oldest);
      }
    }
  }

  void sweep() {
    long now = System.nanoTime();
    for (Upload u : uploads.values()) {
      boolean expired;
      synchronized (u) {
        expired = !u.active && now - u.idleSinceNanos > windowNanos;
      }
      if (expired) {
        uploads.computeIfPresent(u.name, (k, cur) -> {
          if (cur != u) {
            return cur;
          }
          synchronized (u) {
            if (u.active) {
              return cur;
            }
          }
          u.writer.close();
          return null;
        });
      }
    }
  }

  private static void discardIfIdle(Upload u) {
    synchronized (u) {
      if (u.active) {
        return; // its stream is still running and will close it when it ends
      }
      u.active = true; // nobody may resume it any more
    }
    u.writer.close();
  }

  @Override
  public void close() {
    closed = true;
    sweeper.shutdownNow();
    for (Upload u : uploads.values()) {
      if (uploads.remove(u.name, u)) {
        discardIfIdle(u);
      }
    }
  }
}
