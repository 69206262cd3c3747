package io.bazelcache.storage.disk;

import java.util.Arrays;

/**
 * A compact in-memory index of disk entries with an LRU list, built from primitive arrays so that an
 * entry costs about 60 bytes of heap (no object per entry).
 *
 * <p>Entries live in slots numbered from 0, stored in pages of {@value #PAGE_SIZE} so the arrays never
 * need copying as the index grows. Per slot: the 32-byte hash as 4 longs, the logical size, the on-disk
 * size in 4 KiB blocks, LRU prev/next slot numbers and a flags byte (kind and digest function code, the
 * casblob format bit, the verified bit, the in-use bit). Free slots are chained through {@code next}.
 * Lookups go through an open-addressing table of slot numbers (linear probing, backward-shift deletion,
 * load factor at most 3/4) keyed by a seeded mix of the hash, so chosen keys cannot force collisions.
 *
 * <p>Not thread-safe: the owner guards every call with one lock. All operations are O(1) except the
 * rare table doubling.
 *
 * <p>Public only so the benchmarks can measure it; it is internal to {@link DiskStore}.
 */
public final class BlobIndex {
  static final int PAGE_BITS = 13; // 8192 slots: the largest page array (256 KiB) stays below G1's humongous threshold
  static final int PAGE_SIZE = 1 << PAGE_BITS;
  private static final int PAGE_MASK = PAGE_SIZE - 1;
  static final long BLOCK = 4096;

  /** Flags: bits 0-2 the key code (kind * 2 + function), then format, verified, in use. */
  static final int CODE_MASK = 0x07;
  static final int F_ZSTD = 0x08;
  static final int F_VERIFIED = 0x10;
  private static final int F_USED = 0x20;

  private long[][] hashes = new long[0][];
  private long[][] sizes = new long[0][];
  private int[][] blocks = new int[0][];
  private int[][] prevs = new int[0][];
  private int[][] nexts = new int[0][];
  private byte[][] flags = new byte[0][];

  private int allocated; // slots ever handed out (high-water mark)
  private int freeHead = -1;
  private int count;
  private int head = -1; // most recently used
  private int tail = -1; // least recently used
  private long totalBlocks;
  private long totalLogical;

  private int[] table; // slot + 1, 0 = empty
  private int mask;
  private final long seed;

  public BlobIndex(int expectedEntries, long seed) {
    this.seed = seed;
    int cap = 1024;
    while (cap * 3L / 4 < expectedEntries && cap < (1 << 30)) {
      cap <<= 1;
    }
    table = new int[cap];
    mask = cap - 1;
  }

  static long blocksFor(long bytes) {
    return (bytes + BLOCK - 1) / BLOCK;
  }

  public int count() {
    return count;
  }

  public long totalBytes() {
    return totalBlocks * BLOCK;
  }

  long totalLogical() {
    return totalLogical;
  }

  int tail() {
    return tail;
  }

  int head() {
    return head;
  }

  // ---- slot accessors ----

  long size(int slot) {
    return sizes[slot >>> PAGE_BITS][slot & PAGE_MASK];
  }

  int blocks(int slot) {
    return blocks[slot >>> PAGE_BITS][slot & PAGE_MASK];
  }

  int flags(int slot) {
    return flags[slot >>> PAGE_BITS][slot & PAGE_MASK];
  }

  void setVerified(int slot) {
    flags[slot >>> PAGE_BITS][slot & PAGE_MASK] |= F_VERIFIED;
  }

  long hashWord(int slot, int word) {
    return hashes[slot >>> PAGE_BITS][((slot & PAGE_MASK) << 2) + word];
  }

  int prev(int slot) {
    return prevs[slot >>> PAGE_BITS][slot & PAGE_MASK];
  }

  int next(int slot) {
    return nexts[slot >>> PAGE_BITS][slot & PAGE_MASK];
  }

  // ---- lookup ----

  private int home(int code, long h0) {
    long x = (h0 ^ seed) + code * 0x9E3779B97F4A7C15L;
    x = (x ^ (x >>> 33)) * 0xff51afd7ed558ccdL;
    x = (x ^ (x >>> 33)) * 0xc4ceb9fe1a85ec53L;
    x ^= x >>> 33;
    return (int) x & mask;
  }

  private boolean matches(int slot, int code, long h0, long h1, long h2, long h3) {
    int p = slot >>> PAGE_BITS;
    int o = slot & PAGE_MASK;
    if ((flags[p][o] & CODE_MASK) != code) {
      return false;
    }
    long[] h = hashes[p];
    int b = o << 2;
    return h[b] == h0 && h[b + 1] == h1 && h[b + 2] == h2 && h[b + 3] == h3;
  }

  /** The slot of the key, or -1. */
  public int find(int code, long h0, long h1, long h2, long h3) {
    int i = home(code, h0);
    while (true) {
      int v = table[i];
      if (v == 0) {
        return -1;
      }
      if (matches(v - 1, code, h0, h1, h2, h3)) {
        return v - 1;
      }
      i = (i + 1) & mask;
    }
  }

  /**
   * Adds an entry that must not be present. With {@code link} it becomes the most recently used;
   * without, it stays off the LRU list until {@link #linkAtHead} (used while loading).
   */
  public int insert(int code, long h0, long h1, long h2, long h3, long size, int nBlocks, int entryFlags, boolean link) {
    int slot = insertIfAbsent(code, h0, h1, h2, h3, size, nBlocks, entryFlags);
    if (slot < 0) {
      throw new IllegalStateException("key already indexed");
    }
    if (link) {
      linkAtHead(slot);
    }
    return slot;
  }

  /**
   * Adds an unlinked entry in one probe, or returns {@code -(existing slot) - 1} if the key is present.
   */
  int insertIfAbsent(int code, long h0, long h1, long h2, long h3, long size, int nBlocks, int entryFlags) {
    if ((count + 1) > (table.length >>> 2) * 3) {
      resize(table.length << 1);
    }
    int i = home(code, h0);
    while (true) {
      int v = table[i];
      if (v == 0) {
        break;
      }
      if (matches(v - 1, code, h0, h1, h2, h3)) {
        return -(v - 1) - 1;
      }
      i = (i + 1) & mask;
    }
    int slot = allocSlot();
    int p = slot >>> PAGE_BITS;
    int o = slot & PAGE_MASK;
    long[] h = hashes[p];
    int b = o << 2;
    h[b] = h0;
    h[b + 1] = h1;
    h[b + 2] = h2;
    h[b + 3] = h3;
    sizes[p][o] = size;
    blocks[p][o] = nBlocks;
    flags[p][o] = (byte) ((entryFlags & (F_ZSTD | F_VERIFIED)) | (code & CODE_MASK) | F_USED);
    prevs[p][o] = -1;
    nexts[p][o] = -1;
    table[i] = slot + 1;
    count++;
    totalBlocks += nBlocks;
    totalLogical += size;
    return slot;
  }

  /** Removes the entry in {@code slot}. */
  public void remove(int slot) {
    int p = slot >>> PAGE_BITS;
    int o = slot & PAGE_MASK;
    long[] h = hashes[p];
    int code = flags[p][o] & CODE_MASK;
    int i = home(code, h[o << 2]);
    while (table[i] != slot + 1) {
      i = (i + 1) & mask;
    }
    // Backward-shift deletion keeps every probe chain unbroken without tombstones.
    int j = i;
    while (true) {
      j = (j + 1) & mask;
      int v = table[j];
      if (v == 0) {
        break;
      }
      int k = home(flags(v - 1) & CODE_MASK, hashWord(v - 1, 0));
      boolean stays = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
      if (!stays) {
        table[i] = v;
        i = j;
      }
    }
    table[i] = 0;
    if (isLinked(slot)) {
      unlink(slot);
    }
    count--;
    totalBlocks -= blocks[p][o];
    totalLogical -= sizes[p][o];
    flags[p][o] = 0;
    prevs[p][o] = -1;
    nexts[p][o] = freeHead;
    freeHead = slot;
  }

  /** Marks the entry most recently used. */
  public void touch(int slot) {
    if (head == slot) {
      return;
    }
    if (isLinked(slot)) {
      unlink(slot);
    }
    linkAtHead(slot);
  }

  private boolean isLinked(int slot) {
    return head == slot || prev(slot) != -1;
  }

  void linkAtHead(int slot) {
    int p = slot >>> PAGE_BITS;
    int o = slot & PAGE_MASK;
    prevs[p][o] = -1;
    nexts[p][o] = head;
    if (head != -1) {
      prevs[head >>> PAGE_BITS][head & PAGE_MASK] = slot;
    }
    head = slot;
    if (tail == -1) {
      tail = slot;
    }
  }

  private void unlink(int slot) {
    int pv = prev(slot);
    int nx = next(slot);
    if (pv != -1) {
      nexts[pv >>> PAGE_BITS][pv & PAGE_MASK] = nx;
    } else {
      head = nx;
    }
    if (nx != -1) {
      prevs[nx >>> PAGE_BITS][nx & PAGE_MASK] = pv;
    } else {
      tail = pv;
    }
    prevs[slot >>> PAGE_BITS][slot & PAGE_MASK] = -1;
    nexts[slot >>> PAGE_BITS][slot & PAGE_MASK] = -1;
  }

  private int allocSlot() {
    if (freeHead != -1) {
      int s = freeHead;
      freeHead = next(s);
      return s;
    }
    int s = allocated;
    if (s == Integer.MAX_VALUE - 1) {
      throw new IllegalStateException("index full");
    }
    int p = s >>> PAGE_BITS;
    if (p >= hashes.length) {
      int n = p + 1;
      hashes = Arrays.copyOf(hashes, n);
      sizes = Arrays.copyOf(sizes, n);
      blocks = Arrays.copyOf(blocks, n);
      prevs = Arrays.copyOf(prevs, n);
      nexts = Arrays.copyOf(nexts, n);
      flags = Arrays.copyOf(flags, n);
      hashes[p] = new long[PAGE_SIZE * 4];
      sizes[p] = new long[PAGE_SIZE];
      blocks[p] = new int[PAGE_SIZE];
      prevs[p] = new int[PAGE_SIZE];
      nexts[p] = new int[PAGE_SIZE];
      flags[p] = new byte[PAGE_SIZE];
    }
    allocated++;
    return s;
  }

  private void resize(int newCap) {
    int[] old = table;
    table = new int[newCap];
    mask = newCap - 1;
    for (int v : old) {
      if (v != 0) {
        int i = home(flags(v - 1) & CODE_MASK, hashWord(v - 1, 0));
        while (table[i] != 0) {
          i = (i + 1) & mask;
        }
        table[i] = v;
      }
    }
  }

  /** Heap bytes held by the arrays (for the memory benchmark). */
  public long arrayBytes() {
    long perSlot = 4 * 8 + 8 + 4 + 4 + 4 + 1;
    return (long) hashes.length * PAGE_SIZE * perSlot + 4L * table.length;
  }
}
