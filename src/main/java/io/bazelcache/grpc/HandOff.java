package io.bazelcache.grpc;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * A queue from one producer thread to one consumer thread, bounded by the bytes it holds, so that a
 * stream's receiving thread can go on taking messages off the transport while another thread hashes and
 * writes the ones before. {@link #put} waits while the queue holds {@code maxBytes} or more (one item
 * of any size is always let in); {@link #takeAll} waits for at least one item and takes all there are.
 *
 * <p>Items taken no longer count, so together with the batch its consumer is working on the queue holds
 * up to about twice {@code maxBytes}.
 *
 * <p>After {@link #close} nothing more is accepted: a refused item is handed to the {@code discard}
 * callback (which releases what it holds), as are the items still queued.
 */
final class HandOff<T> {
  /** An item and the bytes it counts for. */
  record Item<T>(T value, long bytes) {}

  private final ReentrantLock lock = new ReentrantLock();
  private final Condition notEmpty = lock.newCondition();
  private final Condition notFull = lock.newCondition();
  private final ArrayDeque<Item<T>> items = new ArrayDeque<>();
  private final long maxBytes;
  private final long wakeBytes;
  private final Consumer<T> discard;
  private long bytes;
  private boolean closed;

  HandOff(long maxBytes, Consumer<T> discard) {
    this(maxBytes, 0, discard);
  }

  /**
   * A queue that wakes a waiting consumer only once it holds {@code wakeBytes} or an urgent item: for a
   * stream of small items, one wake-up per batch instead of one per item.
   */
  HandOff(long maxBytes, long wakeBytes, Consumer<T> discard) {
    this.maxBytes = maxBytes;
    this.wakeBytes = Math.min(wakeBytes, maxBytes);
    this.discard = discard;
  }

  /** Like {@link #put(Object, long, boolean)} for an urgent item. */
  boolean put(T value, long size) throws InterruptedException {
    return put(value, size, true);
  }

  /**
   * Queues {@code value}, waiting while the queue is full. Returns false (after discarding {@code
   * value}) if the queue is closed. A consumer waiting in {@link #takeAll} is woken if the item is
   * {@code urgent} or the queue now holds {@code wakeBytes} (a consumer that comes back for more takes
   * whatever is queued without waiting).
   */
  boolean put(T value, long size, boolean urgent) throws InterruptedException {
    lock.lock();
    try {
      while (!closed && bytes >= maxBytes && !items.isEmpty()) {
        notFull.await();
      }
      if (!closed) {
        items.add(new Item<>(value, size));
        bytes += size;
        if (urgent || bytes >= wakeBytes) {
          notEmpty.signal();
        }
        return true;
      }
    } finally {
      lock.unlock();
    }
    discard.accept(value);
    return false;
  }

  /** Waits for at least one item and takes all queued ones, oldest first. */
  List<T> takeAll() throws InterruptedException {
    lock.lock();
    try {
      while (items.isEmpty()) {
        notEmpty.await();
      }
      List<T> out = new ArrayList<>(items.size());
      for (Item<T> it : items) {
        out.add(it.value());
      }
      items.clear();
      bytes = 0;
      notFull.signalAll();
      return out;
    } finally {
      lock.unlock();
    }
  }

  /** Refuses further items and discards the queued ones. Idempotent. */
  void close() {
    List<T> left = new ArrayList<>();
    lock.lock();
    try {
      closed = true;
      for (Item<T> it : items) {
        left.add(it.value());
      }
      items.clear();
      bytes = 0;
      notFull.signalAll();
    } finally {
      lock.unlock();
    }
    left.forEach(discard);
  }
}
