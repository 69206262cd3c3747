package io.bazelcache.grpc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(30)
class HandOffTest {
  final List<String> discarded = new CopyOnWriteArrayList<>();
  final ExecutorService threads = Executors.newCachedThreadPool();

  @AfterEach
  void tearDown() {
    threads.shutdownNow();
  }

  HandOff<String> handOff(long maxBytes) {
    return new HandOff<>(maxBytes, discarded::add);
  }

  /** Runs {@code put} on another thread; the future completes with its result once it returns. */
  CompletableFuture<Boolean> putAsync(HandOff<String> h, String value, long size, CountDownLatch started) {
    CompletableFuture<Boolean> f = new CompletableFuture<>();
    threads.execute(() -> {
      started.countDown();
      try {
        f.complete(h.put(value, size));
      } catch (Throwable t) {
        f.completeExceptionally(t);
      }
    });
    return f;
  }

  static void assertStillWaiting(Future<?> f) throws Exception {
    try {
      f.get(150, TimeUnit.MILLISECONDS);
      throw new AssertionError("expected it to be waiting, but it completed: " + f.get());
    } catch (TimeoutException expected) {
      // still blocked
    }
  }

  @Test
  void takeAllReturnsEverythingQueuedOldestFirst() throws Exception {
    HandOff<String> h = handOff(1000);
    assertThat(h.put("a", 10)).isTrue();
    assertThat(h.put("b", 0)).isTrue();
    assertThat(h.put("c", 500)).isTrue();
    assertThat(h.takeAll()).containsExactly("a", "b", "c");
    assertThat(h.put("d", 1)).isTrue();
    assertThat(h.takeAll()).containsExactly("d");
    assertThat(discarded).isEmpty();
  }

  @Test
  void orderIsKeptAcrossThreadsUnderBackPressure() throws Exception {
    HandOff<String> h = handOff(50);
    int n = 2000;
    Future<?> producer = threads.submit(() -> {
      for (int i = 0; i < n; i++) {
        assertThat(h.put(Integer.toString(i), 7)).isTrue();
      }
      return null;
    });
    int next = 0;
    while (next < n) {
      List<String> batch = h.takeAll();
      assertThat(batch).isNotEmpty();
      // Never more than fits under maxBytes plus the one item let in at the boundary.
      assertThat(batch.size()).isLessThanOrEqualTo(50 / 7 + 1);
      for (String s : batch) {
        assertThat(s).isEqualTo(Integer.toString(next++));
      }
    }
    producer.get(10, TimeUnit.SECONDS);
    assertThat(discarded).isEmpty();
  }

  @Test
  void takeAllWaitsForAnItem() throws Exception {
    HandOff<String> h = handOff(100);
    Future<List<String>> take = threads.submit(h::takeAll);
    assertStillWaiting(take);
    h.put("x", 1);
    assertThat(take.get(5, TimeUnit.SECONDS)).containsExactly("x");
  }

  @Test
  void putWaitsWhileFullAndResumesAfterTakeAll() throws Exception {
    HandOff<String> h = handOff(100);
    assertThat(h.put("a", 60)).isTrue();
    assertThat(h.put("b", 60)).isTrue(); // 60 < 100: let in, now over
    CountDownLatch started = new CountDownLatch(1);
    CompletableFuture<Boolean> c = putAsync(h, "c", 1, started);
    assertThat(started.await(5, TimeUnit.SECONDS)).isTrue();
    assertStillWaiting(c);
    assertThat(h.takeAll()).containsExactly("a", "b");
    assertThat(c.get(5, TimeUnit.SECONDS)).isTrue();
    assertThat(h.takeAll()).containsExactly("c");
    assertThat(discarded).isEmpty();
  }

  @Test
  void putWaitsAtExactlyMaxBytes() throws Exception {
    HandOff<String> h = handOff(100);
    assertThat(h.put("a", 100)).isTrue();
    CountDownLatch started = new CountDownLatch(1);
    CompletableFuture<Boolean> b = putAsync(h, "b", 0, started);
    assertThat(started.await(5, TimeUnit.SECONDS)).isTrue();
    assertStillWaiting(b); // even an item of no bytes waits while the queue is full
    assertThat(h.takeAll()).containsExactly("a");
    assertThat(b.get(5, TimeUnit.SECONDS)).isTrue();
    assertThat(h.takeAll()).containsExactly("b");
  }

  @Test
  void putBelowMaxBytesDoesNotWait() throws Exception {
    HandOff<String> h = handOff(100);
    CountDownLatch started = new CountDownLatch(1);
    CompletableFuture<Boolean> f = CompletableFuture.supplyAsync(() -> {
      started.countDown();
      try {
        for (int i = 0; i < 99; i++) {
          h.put("i" + i, 1);
        }
        return true;
      } catch (InterruptedException e) {
        throw new RuntimeException(e);
      }
    }, threads);
    assertThat(f.get(5, TimeUnit.SECONDS)).isTrue();
    assertThat(h.takeAll()).hasSize(99);
  }

  @Test
  void anItemLargerThanMaxBytesIsAcceptedIntoAnEmptyQueue() throws Exception {
    HandOff<String> h = handOff(10);
    CountDownLatch started = new CountDownLatch(1);
    assertThat(putAsync(h, "huge", 1_000_000, started).get(5, TimeUnit.SECONDS)).isTrue();
    // Now full: the next one waits until the huge one is taken.
    CompletableFuture<Boolean> next = putAsync(h, "next", 1, new CountDownLatch(1));
    assertStillWaiting(next);
    assertThat(h.takeAll()).containsExactly("huge");
    assertThat(next.get(5, TimeUnit.SECONDS)).isTrue();
    assertThat(h.takeAll()).containsExactly("next");
    // And again, after the queue emptied.
    assertThat(putAsync(h, "huge2", Long.MAX_VALUE / 2, new CountDownLatch(1))
        .get(5, TimeUnit.SECONDS)).isTrue();
    assertThat(h.takeAll()).containsExactly("huge2");
    assertThat(discarded).isEmpty();
  }

  @Test
  void closeDiscardsQueuedItemsAndRefusesLaterOnes() throws Exception {
    HandOff<String> h = handOff(1000);
    h.put("a", 1);
    h.put("b", 2);
    h.put("c", 3);
    h.close();
    assertThat(discarded).containsExactly("a", "b", "c");
    assertThat(h.put("d", 1)).isFalse();
    assertThat(discarded).containsExactly("a", "b", "c", "d");
    h.close(); // idempotent: nothing discarded twice
    assertThat(h.put("e", 0)).isFalse();
    assertThat(discarded).containsExactly("a", "b", "c", "d", "e");
  }

  @Test
  void closeWakesAWaitingPutWhichDiscardsItsItem() throws Exception {
    HandOff<String> h = handOff(10);
    h.put("a", 10);
    CountDownLatch started = new CountDownLatch(1);
    CompletableFuture<Boolean> b = putAsync(h, "b", 5, started);
    assertThat(started.await(5, TimeUnit.SECONDS)).isTrue();
    assertStillWaiting(b);
    h.close();
    assertThat(b.get(5, TimeUnit.SECONDS)).isFalse();
    assertThat(discarded).containsExactlyInAnyOrder("a", "b");
  }

  @Test
  void itemsTakenBeforeCloseAreNotDiscarded() throws Exception {
    HandOff<String> h = handOff(100);
    h.put("a", 1);
    assertThat(h.takeAll()).containsExactly("a");
    h.put("b", 1);
    h.close();
    assertThat(discarded).containsExactly("b");
  }

  @Test
  void putWaitingIsInterruptible() throws Exception {
    HandOff<String> h = handOff(1);
    h.put("a", 1);
    CompletableFuture<Throwable> outcome = new CompletableFuture<>();
    CountDownLatch started = new CountDownLatch(1);
    Thread t = Thread.ofPlatform().start(() -> {
      started.countDown();
      try {
        h.put("b", 1);
        outcome.complete(null);
      } catch (Throwable e) {
        outcome.complete(e);
      }
    });
    assertThat(started.await(5, TimeUnit.SECONDS)).isTrue();
    assertStillWaiting(outcome);
    t.interrupt();
    assertThat(outcome.get(5, TimeUnit.SECONDS)).isInstanceOf(InterruptedException.class);
    assertThat(h.takeAll()).containsExactly("a");
  }

  // ---- wakeBytes: a waiting consumer is woken per batch, not per item ------------------------

  HandOff<String> handOff(long maxBytes, long wakeBytes) {
    return new HandOff<>(maxBytes, wakeBytes, discarded::add);
  }

  /** A consumer thread blocked in {@code takeAll}, and what it took. */
  record WaitingConsumer(Thread thread, CompletableFuture<List<String>> taken) {}

  /**
   * Starts {@code takeAll} on another thread and returns once that thread is parked in it (waiting for
   * a signal), so that a later put must wake it rather than be found on arrival.
   */
  WaitingConsumer waitingConsumer(HandOff<String> h) throws Exception {
    CompletableFuture<Thread> thread = new CompletableFuture<>();
    CompletableFuture<List<String>> taken = new CompletableFuture<>();
    threads.execute(() -> {
      thread.complete(Thread.currentThread());
      try {
        taken.complete(h.takeAll());
      } catch (Throwable t) {
        taken.completeExceptionally(t);
      }
    });
    Thread t = thread.get(5, TimeUnit.SECONDS);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (t.getState() != Thread.State.WAITING && System.nanoTime() < deadline) {
      Thread.sleep(1);
    }
    assertThat(t.getState()).as("consumer parked in takeAll").isEqualTo(Thread.State.WAITING);
    assertThat(taken).isNotDone();
    return new WaitingConsumer(t, taken);
  }

  /** Asserts that {@code f} has not completed within 200 ms. */
  static void assertStillWaiting200(Future<?> f) throws Exception {
    try {
      Object v = f.get(200, TimeUnit.MILLISECONDS);
      throw new AssertionError("expected it to be waiting, but it completed: " + v);
    } catch (TimeoutException expected) {
      // still blocked
    }
  }

  @Test
  void nonUrgentPutsBelowWakeBytesDoNotWakeAWaitingConsumerButReachingItDoes() throws Exception {
    HandOff<String> h = handOff(1000, 100);
    WaitingConsumer c = waitingConsumer(h);
    assertThat(h.put("a", 10, false)).isTrue();
    assertStillWaiting200(c.taken());
    assertThat(h.put("b", 0, false)).isTrue();
    assertThat(h.put("c", 89, false)).isTrue(); // 99 bytes: one short
    assertStillWaiting200(c.taken());
    assertThat(c.thread().getState()).isEqualTo(Thread.State.WAITING);
    assertThat(h.put("d", 1, false)).isTrue(); // exactly wakeBytes
    assertThat(c.taken().get(5, TimeUnit.SECONDS)).containsExactly("a", "b", "c", "d");
    // Taking reset the count: the next small items again wait for a full batch.
    WaitingConsumer c2 = waitingConsumer(h);
    assertThat(h.put("e", 60, false)).isTrue();
    assertStillWaiting200(c2.taken());
    assertThat(h.put("f", 500, false)).isTrue(); // over wakeBytes in one go
    assertThat(c2.taken().get(5, TimeUnit.SECONDS)).containsExactly("e", "f");
    assertThat(discarded).isEmpty();
  }

  @Test
  void anUrgentPutWakesAWaitingConsumerWithEverythingQueuedBeforeIt() throws Exception {
    HandOff<String> h = handOff(1000, 100);
    WaitingConsumer c = waitingConsumer(h);
    assertThat(h.put("a", 10, false)).isTrue();
    assertThat(h.put("b", 20, false)).isTrue();
    assertStillWaiting200(c.taken());
    assertThat(h.put("last", 1, true)).isTrue();
    assertThat(c.taken().get(5, TimeUnit.SECONDS)).containsExactly("a", "b", "last");

    // An urgent item of no bytes (as the service's stream events are) wakes it too, alone.
    WaitingConsumer c2 = waitingConsumer(h);
    assertThat(h.put("event", 0, true)).isTrue();
    assertThat(c2.taken().get(5, TimeUnit.SECONDS)).containsExactly("event");
    assertThat(discarded).isEmpty();
  }

  @Test
  void twoArgumentPutIsUrgent() throws Exception {
    HandOff<String> h = handOff(1000, 100);
    WaitingConsumer c = waitingConsumer(h);
    assertThat(h.put("a", 1, false)).isTrue();
    assertStillWaiting200(c.taken());
    assertThat(h.put("b", 1)).isTrue();
    assertThat(c.taken().get(5, TimeUnit.SECONDS)).containsExactly("a", "b");
  }

  @Test
  void twoArgumentConstructorWakesOnEveryPut() throws Exception {
    HandOff<String> h = handOff(1000); // wakeBytes 0
    WaitingConsumer c = waitingConsumer(h);
    assertThat(h.put("a", 1, false)).isTrue();
    assertThat(c.taken().get(5, TimeUnit.SECONDS)).containsExactly("a");
    WaitingConsumer c2 = waitingConsumer(h);
    assertThat(h.put("empty", 0, false)).isTrue();
    assertThat(c2.taken().get(5, TimeUnit.SECONDS)).containsExactly("empty");
  }

  @Test
  void takeAllReturnsAtOnceWhenItemsAreQueuedBelowWakeBytes() throws Exception {
    HandOff<String> h = handOff(1000, 100);
    assertThat(h.put("a", 1, false)).isTrue();
    assertThat(h.put("b", 2, false)).isTrue();
    // No signal was sent (nobody waited and 3 < 100), yet a consumer arriving takes them without waiting.
    Future<List<String>> take = threads.submit(h::takeAll);
    assertThat(take.get(5, TimeUnit.SECONDS)).containsExactly("a", "b");
    // Also on the calling thread, and for items queued while the consumer was busy elsewhere.
    assertThat(h.put("c", 0, false)).isTrue();
    assertThat(h.takeAll()).containsExactly("c");
    // And after that, with nothing queued, it waits again.
    Future<List<String>> idle = threads.submit(h::takeAll);
    assertStillWaiting200(idle);
    assertThat(h.put("d", 5, true)).isTrue();
    assertThat(idle.get(5, TimeUnit.SECONDS)).containsExactly("d");
  }

  @Test
  void wakeBytesAboveMaxBytesActsAsMaxBytes() throws Exception {
    HandOff<String> h = handOff(100, 1_000_000);
    WaitingConsumer c = waitingConsumer(h);
    assertThat(h.put("a", 60, false)).isTrue();
    assertStillWaiting200(c.taken());
    assertThat(h.put("b", 40, false)).isTrue(); // exactly maxBytes: full, so the consumer must be woken
    assertThat(c.taken().get(5, TimeUnit.SECONDS)).containsExactly("a", "b");
    // One item larger than maxBytes (let into an empty queue) wakes it as well.
    WaitingConsumer c2 = waitingConsumer(h);
    assertThat(h.put("huge", 1_000_000_000L, false)).isTrue();
    assertThat(c2.taken().get(5, TimeUnit.SECONDS)).containsExactly("huge");
    assertThat(discarded).isEmpty();
  }

  @Test
  void producerOfNonUrgentItemsNeverDeadlocksWhenWakeBytesExceedsMaxBytes() throws Exception {
    // Had wakeBytes not been capped, the producer would block on a full queue that never woke the
    // consumer.
    HandOff<String> h = handOff(100, Long.MAX_VALUE);
    int n = 3000;
    Future<?> producer = threads.submit(() -> {
      for (int i = 0; i < n; i++) {
        assertThat(h.put(Integer.toString(i), 30, i == n - 1)).isTrue();
      }
      return null;
    });
    int next = 0;
    while (next < n) {
      List<String> batch = h.takeAll();
      assertThat(batch).isNotEmpty();
      assertThat(batch.size()).isLessThanOrEqualTo(100 / 30 + 1);
      for (String s : batch) {
        assertThat(s).isEqualTo(Integer.toString(next++));
      }
    }
    producer.get(10, TimeUnit.SECONDS);
    assertThat(discarded).isEmpty();
  }

  @Test
  void putStillWaitsWhileFullWithWakeBytesAndResumesAfterTakeAll() throws Exception {
    HandOff<String> h = handOff(100, 30);
    assertThat(h.put("a", 20, false)).isTrue();
    assertThat(h.put("b", 90, false)).isTrue(); // 20 < 100: let in, now over
    CountDownLatch started = new CountDownLatch(1);
    CompletableFuture<Boolean> c = new CompletableFuture<>();
    threads.execute(() -> {
      started.countDown();
      try {
        c.complete(h.put("c", 1, false));
      } catch (Throwable t) {
        c.completeExceptionally(t);
      }
    });
    assertThat(started.await(5, TimeUnit.SECONDS)).isTrue();
    assertStillWaiting200(c);
    assertThat(h.takeAll()).containsExactly("a", "b");
    assertThat(c.get(5, TimeUnit.SECONDS)).isTrue();
    // "c" (1 byte, not urgent) is below wakeBytes, but a consumer coming back takes it at once.
    assertThat(h.takeAll()).containsExactly("c");
    assertThat(discarded).isEmpty();
  }

  @Test
  void orderIsKeptUnderBackPressureWithWakeBytes() throws Exception {
    HandOff<String> h = handOff(50, 20);
    int n = 3000;
    Future<?> producer = threads.submit(() -> {
      for (int i = 0; i < n; i++) {
        // Mostly small non-urgent items, an urgent one now and then, and the last one urgent.
        assertThat(h.put(Integer.toString(i), i % 5, i % 97 == 0 || i == n - 1)).isTrue();
      }
      return null;
    });
    int next = 0;
    while (next < n) {
      List<String> batch = h.takeAll();
      assertThat(batch).isNotEmpty();
      for (String s : batch) {
        assertThat(s).isEqualTo(Integer.toString(next++));
      }
    }
    producer.get(10, TimeUnit.SECONDS);
    assertThat(discarded).isEmpty();
  }

  @Test
  void closeDiscardsNonUrgentItemsQueuedBelowWakeBytesAndRefusesLaterOnes() throws Exception {
    HandOff<String> h = handOff(1000, 100);
    WaitingConsumer c = waitingConsumer(h);
    assertThat(h.put("a", 10, false)).isTrue();
    assertThat(h.put("b", 20, false)).isTrue();
    assertStillWaiting200(c.taken());
    h.close();
    assertThat(discarded).containsExactly("a", "b");
    assertThat(h.put("c", 1, false)).isFalse();
    assertThat(h.put("d", 1_000, true)).isFalse();
    assertThat(discarded).containsExactly("a", "b", "c", "d");
    h.close(); // idempotent
    assertThat(discarded).containsExactly("a", "b", "c", "d");
    // The waiting consumer never gets the discarded items. (close() does not wake it: as the code
    // stands it stays parked until interrupted; either way it must not see "a" or "b".)
    c.thread().interrupt();
    try {
      assertThat(c.taken().get(5, TimeUnit.SECONDS)).doesNotContain("a", "b", "c", "d");
    } catch (ExecutionException e) {
      assertThat(e.getCause()).isInstanceOf(InterruptedException.class);
    }
  }

  @Test
  void closeWakesAPutWaitingOnAQueueFullOfNonUrgentItems() throws Exception {
    HandOff<String> h = handOff(100, 1000); // wakeBytes capped at 100
    assertThat(h.put("a", 50, false)).isTrue();
    assertThat(h.put("b", 50, false)).isTrue(); // full
    CountDownLatch started = new CountDownLatch(1);
    CompletableFuture<Boolean> c = new CompletableFuture<>();
    threads.execute(() -> {
      started.countDown();
      try {
        c.complete(h.put("c", 5, false));
      } catch (Throwable t) {
        c.completeExceptionally(t);
      }
    });
    assertThat(started.await(5, TimeUnit.SECONDS)).isTrue();
    assertStillWaiting200(c);
    h.close();
    assertThat(c.get(5, TimeUnit.SECONDS)).isFalse();
    assertThat(discarded).containsExactlyInAnyOrder("a", "b", "c");
  }

  @Test
  void interruptedConsumerLeavesQueuedItemsInPlace() throws Exception {
    HandOff<String> h = handOff(1000, 100);
    WaitingConsumer c = waitingConsumer(h);
    assertThat(h.put("a", 10, false)).isTrue();
    assertStillWaiting200(c.taken());
    c.thread().interrupt();
    assertThatThrownBy(() -> c.taken().get(5, TimeUnit.SECONDS))
        .hasCauseInstanceOf(InterruptedException.class);
    // Nothing was lost: the next consumer takes it at once.
    assertThat(h.takeAll()).containsExactly("a");
    assertThat(discarded).isEmpty();
  }
}
