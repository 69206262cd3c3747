package io.bazelcache.grpc;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
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
}
