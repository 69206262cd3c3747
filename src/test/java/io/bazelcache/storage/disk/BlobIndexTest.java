package io.bazelcache.storage.disk;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The index against a model (HashMap for contents, access-ordered LinkedHashMap for LRU order). */
class BlobIndexTest {
  private record Key(int code, long h0, long h1, long h2, long h3) {}

  @Test
  void randomOperationsMatchAModel() {
    Random r = new Random(5);
    BlobIndex idx = new BlobIndex(0, 123);
    Map<Key, Long> sizes = new HashMap<>();
    LinkedHashMap<Key, Boolean> lru = new LinkedHashMap<>(16, 0.75f, true);
    List<Key> universe = new ArrayList<>();
    for (int i = 0; i < 5000; i++) {
      // Few distinct h0 values force long probe chains and collisions between codes.
      universe.add(new Key(r.nextInt(6), r.nextInt(64), r.nextLong(), r.nextLong(), r.nextLong()));
    }
    for (int op = 0; op < 200_000; op++) {
      Key k = universe.get(r.nextInt(universe.size()));
      int slot = idx.find(k.code, k.h0, k.h1, k.h2, k.h3);
      assertThat(slot >= 0).isEqualTo(sizes.containsKey(k));
      switch (r.nextInt(4)) {
        case 0, 1 -> {
          if (slot < 0) {
            long size = r.nextInt(100_000);
            idx.insert(k.code, k.h0, k.h1, k.h2, k.h3, size, (int) BlobIndex.blocksFor(size), 0, true);
            sizes.put(k, size);
            lru.put(k, true);
          } else {
            assertThat(idx.size(slot)).isEqualTo(sizes.get(k));
            idx.touch(slot);
            lru.get(k);
          }
        }
        case 2 -> {
          if (slot >= 0) {
            idx.remove(slot);
            sizes.remove(k);
            lru.remove(k);
          }
        }
        default -> {
          if (idx.count() > 0 && r.nextInt(10) == 0) {
            int tail = idx.tail();
            Key oldest = lru.keySet().iterator().next();
            assertThat(idx.hashWord(tail, 1)).isEqualTo(oldest.h1);
            idx.remove(tail);
            sizes.remove(oldest);
            lru.remove(oldest);
          }
        }
      }
      assertThat(idx.count()).isEqualTo(sizes.size());
    }
    // Final state: every key findable, sizes and totals right, LRU order identical.
    long logical = 0;
    long blocks = 0;
    for (Map.Entry<Key, Long> e : sizes.entrySet()) {
      Key k = e.getKey();
      int slot = idx.find(k.code, k.h0, k.h1, k.h2, k.h3);
      assertThat(slot).isNotNegative();
      assertThat(idx.size(slot)).isEqualTo(e.getValue());
      assertThat(idx.flags(slot) & BlobIndex.CODE_MASK).isEqualTo(k.code);
      logical += e.getValue();
      blocks += BlobIndex.blocksFor(e.getValue());
    }
    assertThat(idx.totalLogical()).isEqualTo(logical);
    assertThat(idx.totalBytes()).isEqualTo(blocks * BlobIndex.BLOCK);
    List<Long> fromTail = new ArrayList<>();
    for (int s = idx.tail(); s != -1; s = idx.prev(s)) {
      fromTail.add(idx.hashWord(s, 1));
    }
    assertThat(fromTail).containsExactlyElementsOf(lru.keySet().stream().map(Key::h1).toList());
  }

  @Test
  void slotsAreReusedAndCostAboutSixtyBytesEach() {
    BlobIndex idx = new BlobIndex(0, 1);
    Random r = new Random(1);
    int n = 200_000;
    int[] slots = new int[n];
    for (int i = 0; i < n; i++) {
      slots[i] = idx.insert(0, r.nextLong(), i, 0, 0, 1, 1, 0, true);
    }
    long bytes = idx.arrayBytes();
    for (int i = 0; i < n; i++) {
      idx.remove(slots[i]);
    }
    assertThat(idx.count()).isZero();
    assertThat(idx.tail()).isEqualTo(-1);
    for (int i = 0; i < n; i++) {
      idx.insert(1, r.nextLong(), i, 0, 0, 1, 1, 0, true);
    }
    assertThat(idx.arrayBytes()).isEqualTo(bytes); // free list reused every slot
    assertThat(bytes / (double) n).isLessThan(70);
  }
}
