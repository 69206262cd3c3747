package io.bazelcache.storage.disk;

import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.digest.Hasher;
import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.BlobSizeMismatchException;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.BlobTooLargeException;
import io.bazelcache.storage.BlobWriter;
import io.bazelcache.storage.ChannelSliceInputStream;
import io.bazelcache.storage.DigestMismatchException;
import io.bazelcache.storage.InsufficientStorageException;
import io.bazelcache.storage.Kind;
import io.bazelcache.storage.StoreStats;
import io.bazelcache.storage.casblob.CasBlobHeader;
import io.bazelcache.storage.casblob.CasBlobReader;
import io.bazelcache.storage.casblob.CasBlobWriter;
import io.bazelcache.storage.file.FileOutput;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SecureDirectoryStream;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributeView;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The local disk store: files under {@code <dir>/<function>/<kind>/<hh>/<hash>-<size>[.zst]}, an
 * in-memory LRU index ({@link BlobIndex}), size accounting in 4 KiB blocks, reservations for uploads in
 * flight, and evictions deleted by a background thread. See {@code docs/STORAGE.md}.
 *
 * <p>Locking: one index lock guards the index and the counters (every operation under it is O(1) per
 * entry touched, no file I/O). Striped per-key locks order renames, opens and deletions of one key's
 * files against its index entry, so a deletion queued for an evicted file never removes a newer file
 * committed to the same path, and a get never opens a file whose entry has gone.
 */
public final class DiskStore implements BlobStore {
  private static final Logger log = LoggerFactory.getLogger(DiskStore.class);

  /** Name and content of the layout marker at the top of the directory. */
  static final String MARKER_NAME = "BAZEL_CACHE_LAYOUT";
  static final String MARKER_CONTENT = "bazel-cache disk layout 1\n";
  static final String ZSTD_SUFFIX = ".zst";
  static final String TEMP_SUFFIX = ".tmp";

  private static final int STRIPES = 4096;
  /** The shortest possible casblob header: fixed fields and two offsets (one chunk). */
  private static final long MIN_CASBLOB_HEADER = 4 + 4 + 8 + 1 + 4 + 8 + 16;
  private static final HexFormat HEX = HexFormat.of();
  private static final Kind[] KINDS = Kind.values();
  private static final DigestFunction[] FUNCTIONS = DigestFunction.values();

  private final Path root;
  private final long maxSize;
  private final long hardLimit;
  private final StorageMode mode;
  private final long maxBlobSize;
  /** [code][hh] → directory. */
  private final Path[][] dirs;

  private final ReentrantLock lock = new ReentrantLock();
  private final ReentrantLock[] stripes = new ReentrantLock[STRIPES];
  private final BlobIndex index;
  private long reserved; // guarded by lock
  private long pendingDeleteBytes; // guarded by lock

  private final LinkedBlockingQueue<Deletion> deletions = new LinkedBlockingQueue<>();
  private final AtomicLong deletionsQueued = new AtomicLong();
  private final AtomicLong deletionsDone = new AtomicLong();
  private final Thread deleter;
  /** Held by the deleter while it deletes; tests hold it to keep evictions pending. */
  private final java.util.concurrent.Semaphore deletionGate = new java.util.concurrent.Semaphore(1);
  private volatile boolean closed;

  private final String tempPrefix;
  private final AtomicLong tempCounter = new AtomicLong();

  // For metrics (bazel-remote's disk_cache_evicted/overwritten_bytes_total and entry_bytes).
  private final AtomicLong evictedBytes = new AtomicLong();
  private final AtomicLong overwrittenBytes = new AtomicLong();
  private volatile java.util.function.LongConsumer entryObserver = size -> {};

  /** A file to delete unless the index again refers to the same path. */
  private record Deletion(int code, long h0, long h1, long h2, long h3, long size, boolean zstd, long bytes) {}

  private static final Deletion STOP = new Deletion(-1, 0, 0, 0, 0, 0, false, 0);

  private DiskStore(Path root, long maxSize, long hardLimit, StorageMode mode, long maxBlobSize, int expected) {
    this.root = root;
    this.maxSize = maxSize;
    this.hardLimit = hardLimit;
    this.mode = mode;
    this.maxBlobSize = maxBlobSize;
    this.dirs = new Path[KINDS.length * 2][256];
    for (DigestFunction f : FUNCTIONS) {
      for (Kind k : KINDS) {
        Path base = root.resolve(f.lowerName()).resolve(k.dirName());
        for (int hh = 0; hh < 256; hh++) {
          dirs[code(k, f)][hh] = base.resolve(HEX.toHexDigits((byte) hh));
        }
      }
    }
    for (int i = 0; i < STRIPES; i++) {
      stripes[i] = new ReentrantLock();
    }
    SecureRandom rnd = new SecureRandom();
    this.index = new BlobIndex(expected, rnd.nextLong());
    this.tempPrefix = Long.toHexString(rnd.nextLong() & Long.MAX_VALUE);
    this.deleter = Thread.ofVirtual().name("disk-store-deleter").unstarted(this::deleteLoop);
  }

  /**
   * A directory under the store's root that the store leaves alone, for other layers' scratch files (for
   * example S3 downloads being verified), so they live on the same disk as the cache.
   */
  public static final String SCRATCH_DIR_NAME = "tmp";

  /**
   * Opens (creating if needed) the store in {@code dir} and loads its index from the file names and one
   * stat per file, without opening any file. Returns when the store is ready to serve.
   *
   * @param maxSizeBytes the size, in 4 KiB-rounded on-disk bytes, that eviction keeps the store within
   * @param hardLimitBytes if &gt; 0, uploads are refused (507) while on-disk bytes + reservations +
   *     evicted-but-not-yet-deleted bytes would exceed it
   * @param mode how new CAS blobs are stored; files of either format are read whatever the mode
   * @param maxBlobSizeBytes larger uploads are refused with {@link BlobTooLargeException}
   */
  public static DiskStore open(
      Path dir, long maxSizeBytes, long hardLimitBytes, StorageMode mode, long maxBlobSizeBytes)
      throws IOException {
    if (maxSizeBytes <= 0) {
      throw new IllegalArgumentException("max size must be positive: " + maxSizeBytes);
    }
    if (hardLimitBytes < 0 || maxBlobSizeBytes <= 0) {
      throw new IllegalArgumentException("bad hard limit or max blob size");
    }
    long start = System.nanoTime();
    Files.createDirectories(dir);
    checkMarker(dir);
    DiskStore s = new DiskStore(dir, maxSizeBytes, hardLimitBytes, mode == null ? StorageMode.ZSTD : mode,
        maxBlobSizeBytes, 1024);
    s.load();
    s.checkDirectIo();
    s.deleter.start();
    s.lock.lock();
    try {
      while (s.index.totalBytes() > s.maxSize && s.index.count() > 0) {
        s.evictTailLocked();
      }
    } finally {
      s.lock.unlock();
    }
    StoreStats st = s.stats();
    log.info("disk store {} ready in {} ms: {} entries, {} bytes on disk, {} logical, mode {}",
        dir, (System.nanoTime() - start) / 1_000_000, st.numFiles(), st.currentSize(),
        st.uncompressedSize(), s.mode.name().toLowerCase());
    return s;
  }

  private static void checkMarker(Path dir) throws IOException {
    Path marker = dir.resolve(MARKER_NAME);
    if (Files.exists(marker)) {
      String content = Files.readString(marker, StandardCharsets.UTF_8);
      if (!content.equals(MARKER_CONTENT)) {
        throw new IOException(
            marker + " says \"" + content.strip() + "\"; this version reads \"" + MARKER_CONTENT.strip() + "\"");
      }
      return;
    }
    Path tmp = dir.resolve(MARKER_NAME + TEMP_SUFFIX);
    Files.writeString(tmp, MARKER_CONTENT, StandardCharsets.UTF_8);
    Files.move(tmp, marker, StandardCopyOption.ATOMIC_MOVE);
  }

  // ------------------------------------------------------------------------------------------------
  // Keys, names, paths

  static int code(Kind kind, DigestFunction function) {
    return kind.ordinal() * 2 + function.ordinal();
  }

  private static long hexWord(byte[] s, int start) {
    long v = 0;
    for (int i = start; i < start + 16; i++) {
      v = (v << 4) | Digest.hexValue(s[i] & 0xFF); // validated hashes only
    }
    return v;
  }

  private static String hexOf(long h0, long h1, long h2, long h3) {
    return HEX.toHexDigits(h0) + HEX.toHexDigits(h1) + HEX.toHexDigits(h2) + HEX.toHexDigits(h3);
  }

  private Path pathOf(int code, long h0, long h1, long h2, long h3, long size, boolean zstd) {
    String hash = hexOf(h0, h1, h2, h3);
    return dirs[code][(int) (h0 >>> 56)].resolve(fileName(hash, size, zstd));
  }

  static String fileName(String hash, long size, boolean zstd) {
    return hash + "-" + size + (zstd ? ZSTD_SUFFIX : "");
  }

  private ReentrantLock stripe(long h0, long h1) {
    long x = h1 ^ (h0 >>> 17);
    return stripes[(int) (x ^ (x >>> 32)) & (STRIPES - 1)];
  }

  /** A key parsed once into the index's representation. */
  private record K(BlobKey key, int code, long h0, long h1, long h2, long h3) {
    @SuppressWarnings("deprecation") // String.getBytes(int, int, byte[], int): a valid hash is ASCII
    static K of(BlobKey key) {
      // One bulk copy of the (validated, ASCII) hash, then table lookups on bytes: about 3x faster than
      // charAt per character, and FindMissingBlobs parses thousands of keys per call.
      byte[] h = new byte[64];
      key.hash().getBytes(0, 64, h, 0);
      return new K(key, DiskStore.code(key.kind(), key.function()),
          hexWord(h, 0), hexWord(h, 16), hexWord(h, 32), hexWord(h, 48));
    }

    int find(BlobIndex idx) {
      return idx.find(code, h0, h1, h2, h3);
    }
  }

  // ------------------------------------------------------------------------------------------------
  // Reads

  @Override
  public Blob get(BlobKey key) throws IOException {
    if (key.isEmptyCasBlob()) {
      return EmptyBlob.INSTANCE;
    }
    ensureOpen();
    K k = K.of(key);
    long size;
    boolean zstd;
    boolean verified;
    FileChannel ch;
    ReentrantLock st = stripe(k.h0, k.h1);
    st.lock();
    try {
      lock.lock();
      try {
        int slot = k.find(index);
        if (slot < 0) {
          return null;
        }
        size = index.size(slot);
        int fl = index.flags(slot);
        zstd = (fl & BlobIndex.F_ZSTD) != 0;
        verified = (fl & BlobIndex.F_VERIFIED) != 0;
        index.touch(slot);
      } finally {
        lock.unlock();
      }
      Path p = pathOf(k.code, k.h0, k.h1, k.h2, k.h3, size, zstd);
      try {
        ch = FileChannel.open(p, StandardOpenOption.READ);
      } catch (NoSuchFileException e) {
        log.warn("{}: file {} vanished; dropping the entry", key, p);
        drop(k, size, zstd, false);
        return null;
      }
    } finally {
      st.unlock();
    }
    boolean ok = false;
    try {
      long fileLength = ch.size();
      CasBlobReader reader = null;
      String problem = null;
      if (zstd) {
        try {
          reader = CasBlobReader.open(ch, fileLength);
          if (reader.uncompressedSize() != size) {
            problem = "casblob holds " + reader.uncompressedSize() + " bytes, name says " + size;
          }
        } catch (IOException e) {
          problem = "bad casblob: " + e.getMessage();
        }
      } else if (fileLength != size) {
        problem = "file has " + fileLength + " bytes, name says " + size;
      }
      if (problem == null && !verified) {
        problem = verify(key, ch, size, reader);
        if (problem == null) {
          lock.lock();
          try {
            int slot = k.find(index);
            if (slot >= 0 && index.size(slot) == size
                && ((index.flags(slot) & BlobIndex.F_ZSTD) != 0) == zstd) {
              index.setVerified(slot);
            }
          } finally {
            lock.unlock();
          }
        }
      }
      if (problem != null) {
        log.warn("{}: {}; dropping the entry", key, problem);
        // If the entry was unverified and has meanwhile been replaced by a verified upload, keep that.
        drop(k, size, zstd, !verified);
        return null;
      }
      ok = true;
      return new DiskBlob(ch, size, fileLength, reader);
    } finally {
      if (!ok) {
        ch.close();
      }
    }
  }

  /** Full check of an entry loaded at startup: the content decodes completely and, for CAS, hashes to the key. */
  private static String verify(BlobKey key, FileChannel ch, long size, CasBlobReader reader) {
    if (!key.kind().isContentAddressed() && reader == null) {
      return null; // AC/RAW: the size check already done is all there is to check
    }
    Hasher h = key.function().newHasher();
    long total = 0;
    try (InputStream in = reader != null ? reader.openStream(0) : new ChannelSliceInputStream(ch, 0, size)) {
      byte[] buf = new byte[256 * 1024];
      int n;
      while ((n = in.read(buf)) > 0) {
        h.update(buf, 0, n);
        total += n;
      }
    } catch (IOException e) {
      return "unreadable: " + e.getMessage();
    }
    if (total != size) {
      return "content has " + total + " bytes, want " + size;
    }
    if (!key.kind().isContentAddressed()) {
      return null;
    }
    String got = HEX.formatHex(h.finish());
    return got.equals(key.hash()) ? null : "content hashes to " + got;
  }

  /**
   * Removes the entry if it still has this size and format (and, with {@code onlyIfUnverified}, is still
   * unverified), and queues its file for deletion.
   */
  private void drop(K k, long size, boolean zstd, boolean onlyIfUnverified) {
    lock.lock();
    try {
      int slot = k.find(index);
      if (slot >= 0 && index.size(slot) == size && ((index.flags(slot) & BlobIndex.F_ZSTD) != 0) == zstd
          && !(onlyIfUnverified && (index.flags(slot) & BlobIndex.F_VERIFIED) != 0)) {
        removeAndQueueLocked(slot);
      }
    } finally {
      lock.unlock();
    }
  }

  @Override
  public boolean contains(BlobKey key) {
    if (key.isEmptyCasBlob()) {
      return true;
    }
    K k = K.of(key);
    lock.lock();
    try {
      int slot = k.find(index);
      if (slot < 0) {
        return false;
      }
      index.touch(slot);
      return true;
    } finally {
      lock.unlock();
    }
  }

  @Override
  public List<BlobKey> findMissing(Collection<BlobKey> keys) {
    K[] parsed = new K[keys.size()];
    int n = 0;
    for (BlobKey key : keys) {
      parsed[n++] = key.isEmptyCasBlob() ? null : K.of(key);
    }
    List<BlobKey> missing = new ArrayList<>(n);
    lock.lock();
    try {
      for (int i = 0; i < n; i++) {
        K k = parsed[i];
        if (k != null && !presentLocked(k.code, k.h0, k.h1, k.h2, k.h3)) {
          missing.add(k.key);
        }
      }
    } finally {
      lock.unlock();
    }
    return missing;
  }

  /** Whether the entry is indexed, marking it as just used if so (FindMissingBlobs' rule); lock held. */
  private boolean presentLocked(int code, long h0, long h1, long h2, long h3) {
    int slot = index.find(code, h0, h1, h2, h3);
    if (slot >= 0) {
      index.touch(slot);
    }
    return slot >= 0;
  }

  /** Looks the hashes up as the numbers they are: no key, string or parse per digest. */
  @Override
  public int[] findMissing(io.bazelcache.storage.DigestBatch batch) {
    int code = code(Kind.CAS, batch.function());
    int n = batch.size();
    int[] missing = new int[n];
    int m = 0;
    lock.lock();
    try {
      for (int i = 0; i < n; i++) {
        if (!batch.isEmptyBlob(i)
            && !presentLocked(code, batch.word(i, 0), batch.word(i, 1), batch.word(i, 2), batch.word(i, 3))) {
          missing[m++] = i;
        }
      }
    } finally {
      lock.unlock();
    }
    return Arrays.copyOf(missing, m);
  }

  @Override
  public StoreStats stats() {
    lock.lock();
    try {
      return new StoreStats(index.totalBytes(), index.totalLogical(), reserved, maxSize, index.count());
    } finally {
      lock.unlock();
    }
  }

  // ------------------------------------------------------------------------------------------------
  // Writes

  @Override
  public BlobWriter newWriter(BlobKey key, long size) throws IOException {
    if (size < 0) {
      throw new BlobSizeMismatchException("negative size " + size);
    }
    if (key.kind() == Kind.CAS && (size == 0 || key.isEmptyCasBlob())) {
      return new EmptyCasWriter(key, size);
    }
    ensureOpen();
    if (size > maxBlobSize) {
      throw new BlobTooLargeException(key + ": " + size + " bytes is over the max blob size " + maxBlobSize);
    }
    if (size > maxSize) {
      throw new BlobTooLargeException(key + ": " + size + " bytes can never fit in a cache of " + maxSize);
    }
    boolean zstd = mode == StorageMode.ZSTD && key.kind() == Kind.CAS;
    long estimate = zstd ? CasBlobHeader.headerLength(size, CasBlobHeader.DEFAULT_CHUNK_SIZE) + size : size;
    long reserve = BlobIndex.blocksFor(estimate) * BlobIndex.BLOCK;
    if (reserve > maxSize || BlobIndex.blocksFor(estimate) > Integer.MAX_VALUE) {
      throw new BlobTooLargeException(key + ": " + size + " bytes can never fit in a cache of " + maxSize);
    }
    reserve(key, reserve);
    try {
      return new DiskWriter(K.of(key), size, zstd, reserve);
    } catch (IOException | RuntimeException e) {
      release(reserve);
      throw e;
    }
  }

  private void reserve(BlobKey key, long bytes) throws InsufficientStorageException {
    lock.lock();
    try {
      if (reserved + bytes > maxSize) {
        throw new InsufficientStorageException(key + ": no room for " + bytes + " bytes: " + reserved
            + " of " + maxSize + " bytes are reserved by uploads in progress");
      }
      while (index.totalBytes() + reserved + bytes > maxSize && index.count() > 0) {
        evictTailLocked();
      }
      if (hardLimit > 0 && index.totalBytes() + reserved + pendingDeleteBytes + bytes > hardLimit) {
        throw new InsufficientStorageException(key + ": over the hard limit of " + hardLimit + " bytes ("
            + index.totalBytes() + " stored, " + reserved + " reserved, " + pendingDeleteBytes
            + " awaiting deletion)");
      }
      reserved += bytes;
    } finally {
      lock.unlock();
    }
  }

  private void release(long bytes) {
    lock.lock();
    try {
      reserved -= bytes;
    } finally {
      lock.unlock();
    }
  }

  private void evictTailLocked() {
    int tail = index.tail();
    evictedBytes.addAndGet(index.blocks(tail) * BlobIndex.BLOCK);
    removeAndQueueLocked(tail);
  }

  private void removeAndQueueLocked(int slot) {
    Deletion d = new Deletion(index.flags(slot) & BlobIndex.CODE_MASK,
        index.hashWord(slot, 0), index.hashWord(slot, 1), index.hashWord(slot, 2), index.hashWord(slot, 3),
        index.size(slot), (index.flags(slot) & BlobIndex.F_ZSTD) != 0, index.blocks(slot) * BlobIndex.BLOCK);
    index.remove(slot);
    queueLocked(d);
  }

  private void queueLocked(Deletion d) {
    pendingDeleteBytes += d.bytes;
    deletionsQueued.incrementAndGet();
    deletions.add(d);
  }

  /**
   * Uploads of this size or more are written with {@code O_DIRECT} where the file system takes it: the
   * page cache's copy, its writeback and a long fsync at commit cost a large upload more CPU and time
   * than one copy into an aligned buffer and the disk's own transfer, and a 64 MiB upload would push
   * 64 MiB of other entries out of the cache. Smaller ones go through the page cache.
   */
  static final long DIRECT_IO_BYTES = 4L * 1024 * 1024;

  /** False once the cache directory's file system refused direct I/O: then every write is buffered. */
  private volatile boolean directIo = true;

  /** Turns direct I/O off unless a small file written with it in the cache directory reads back right. */
  private void checkDirectIo() {
    Path probe = root.resolve("direct-io-check" + TEMP_SUFFIX);
    try {
      Files.deleteIfExists(probe); // left by a crash
      FileOutput.checkDirect(probe);
    } catch (IOException | RuntimeException e) {
      noDirectIo(e);
    }
  }

  private void noDirectIo(Exception why) {
    directIo = false;
    log.info("{}: no direct I/O ({}); large uploads go through the page cache", root, why.toString());
  }

  /** Writes every later upload through the page cache, as after a refusal of direct I/O (for tests). */
  void disableDirectIo() {
    directIo = false;
  }

  /** A direct-I/O output for a new temp file, or null to write it through the page cache. */
  private FileOutput directOutput(Path temp, FileChannel ch, long reserved) {
    if (!directIo) {
      return null;
    }
    try {
      return FileOutput.direct(temp, ch, reserved);
    } catch (IOException e) {
      noDirectIo(e);
      return null;
    }
  }

  /**
   * A large upload starts flushing what it has written every this many bytes, in the background, so the
   * fsync at commit has only the tail left to write instead of the whole file.
   */
  static final long EARLY_FLUSH_BYTES = 8L * 1024 * 1024;

  /** Writes of this size or more hash on the caller's thread while {@link #FILE_SIDE} writes the file. */
  static final long PARALLEL_HASH_BYTES = 256 * 1024;

  /** Compresses and writes large uploads' bytes while their writer hashes them. */
  private static final ExecutorService FILE_SIDE = Executors.newCachedThreadPool(r -> {
    Thread t = new Thread(r, "disk-file-side");
    t.setDaemon(true);
    return t;
  });

  /** A file-side write of {@code bytes} that the writer's thread has not waited for yet. */
  private record Pending(java.util.concurrent.CompletableFuture<Void> stage, long bytes) {}

  /** How far the file side may fall behind hashing (bytes of one upload that it still holds). */
  static final long FILE_BACKLOG_BYTES = 8L * 1024 * 1024;

  private final class DiskWriter implements BlobWriter {
    private final K k;
    private final long size;
    private final boolean zstd;
    private final long reservation;
    private final Path temp;
    private final Path target;
    private final FileChannel ch;
    private final FileOutput out;
    private final boolean direct; // out writes with O_DIRECT
    private final Hasher hasher;
    private final CasBlobWriter casWriter;
    private long written;
    private boolean done; // committed or discarded
    private boolean failed;
    private long sinceFlush; // bytes written since the last background flush started
    // This upload's file-side writes, in order; each stage starts when the one before has finished.
    private volatile java.util.concurrent.CompletableFuture<Void> fileSide =
        java.util.concurrent.CompletableFuture.completedFuture(null);
    private final java.util.ArrayDeque<Pending> pending = new java.util.ArrayDeque<>(); // not yet joined
    private long pendingBytes;
    private Thread flushing; // the background flush in progress, if any
    private volatile IOException flushError;

    DiskWriter(K k, long size, boolean zstd, long reservation) throws IOException {
      this.k = k;
      this.size = size;
      this.zstd = zstd;
      this.reservation = reservation;
      Path dir = dirs[k.code][(int) (k.h0 >>> 56)];
      String name = fileName(k.key.hash(), size, zstd);
      this.target = dir.resolve(name);
      this.temp = dir.resolve(name + "." + tempPrefix + "-" + tempCounter.incrementAndGet() + TEMP_SUFFIX);
      this.ch = createTemp(temp);
      long reserved = zstd ? CasBlobWriter.headerLength(size) : 0;
      FileOutput o = size >= DIRECT_IO_BYTES && reserved <= FileOutput.MAX_DIRECT_RESERVED
          ? directOutput(temp, ch, reserved) : null;
      this.direct = o != null;
      this.out = o != null ? o : FileOutput.buffered(ch, reserved);
      this.hasher = k.key.kind().isContentAddressed() ? k.key.function().newHasher() : null;
      this.casWriter = zstd ? new CasBlobWriter(out, size) : null;
    }

    @Override
    public BlobKey key() {
      return k.key;
    }

    @Override
    public long expectedSize() {
      return size;
    }

    @Override
    public long bytesWritten() {
      return written;
    }

    @Override
    public void write(ByteBuffer data) throws IOException {
      write(new ByteBuffer[] {data}, null);
    }

    /** All pieces in one store write: one gathering write (uncompressed), one file-side hand-over. */
    @Override
    public void write(List<ByteBuffer> data) throws IOException {
      write(data.toArray(new ByteBuffer[0]), null);
    }

    /**
     * Like {@link #write(List)}; a large write returns once it is hashed, while the file side may still
     * be writing it ({@link #FILE_BACKLOG_BYTES} at most), and runs {@code release} when done.
     */
    @Override
    public void write(List<ByteBuffer> data, Runnable release) throws IOException {
      write(data.toArray(new ByteBuffer[0]), release);
    }

    /** {@code release}: null to return only when the bytes are written; else run exactly once, on any thread. */
    private void write(ByteBuffer[] pieces, Runnable release) throws IOException {
      boolean handedOver = false;
      try {
        if (done || failed) {
          throw new IOException("upload of " + k.key + " is " + (done ? "finished" : "failed"));
        }
        long n = 0;
        for (ByteBuffer b : pieces) {
          n += b.remaining();
        }
        if (written + n > size) {
          failed = true;
          close();
          throw new BlobSizeMismatchException(
              k.key + ": received more than the announced " + size + " bytes");
        }
        try {
          if (hasher == null || n < PARALLEL_HASH_BYTES) {
            awaitFileSide(0); // in file order, after what the file side still has
            if (hasher != null) {
              hash(pieces);
            }
            writeFile(pieces);
          } else {
            handedOver = true;
            hashWhileWriting(pieces, n, release);
          }
          written += n;
          flushEarly(n);
        } catch (IOException | RuntimeException e) {
          failed = true;
          close();
          throw e;
        }
      } finally {
        if (!handedOver && release != null) {
          release.run();
        }
      }
    }

    private void hash(ByteBuffer[] pieces) {
      for (ByteBuffer b : pieces) {
        hasher.update(b.duplicate());
      }
    }

    /**
     * Hashes on this thread while the file side compresses and writes the same bytes: hashing is the
     * slowest step of a large upload. The file side runs this upload's writes one after another; this
     * thread goes on to the next bytes without waiting for it, unless it is more than
     * {@link #FILE_BACKLOG_BYTES} behind (or {@code release} is null: then it waits for these bytes).
     * {@code release} runs once both sides are done with the buffers.
     */
    private void hashWhileWriting(ByteBuffer[] pieces, long n, Runnable release) throws IOException {
      ByteBuffer[] forFile = new ByteBuffer[pieces.length];
      for (int i = 0; i < pieces.length; i++) {
        forFile[i] = pieces[i].duplicate();
      }
      java.util.concurrent.atomic.AtomicInteger users = new java.util.concurrent.atomic.AtomicInteger(2);
      Runnable doneWithBuffers = () -> {
        if (users.decrementAndGet() == 0 && release != null) {
          release.run();
        }
      };
      java.util.concurrent.CompletableFuture<Void> stage = fileSide.handleAsync((ignored, earlier) -> {
        try {
          if (earlier != null) {
            throw earlier instanceof java.util.concurrent.CompletionException c
                ? c : new java.util.concurrent.CompletionException(earlier);
          }
          writeFile(forFile);
          return null;
        } catch (IOException e) {
          throw new java.util.concurrent.CompletionException(e);
        } finally {
          doneWithBuffers.run();
        }
      }, FILE_SIDE);
      fileSide = stage;
      pending.addLast(new Pending(stage, n));
      pendingBytes += n;
      try {
        hash(pieces); // hashes duplicates
        for (ByteBuffer b : pieces) {
          b.position(b.limit()); // consumed, as a write leaves its buffers; before they are handed back
        }
      } finally {
        doneWithBuffers.run();
      }
      awaitFileSide(release == null ? 0 : FILE_BACKLOG_BYTES);
    }

    /** Waits until the file side has at most {@code backlog} bytes of this upload left to write. */
    private void awaitFileSide(long backlog) throws IOException {
      while (!pending.isEmpty() && (pendingBytes > backlog || pending.peekFirst().stage().isDone())) {
        Pending p = pending.removeFirst();
        pendingBytes -= p.bytes();
        join(p.stage());
      }
    }

    /** Waits for a file-side stage, uninterruptibly (its buffers must not go back early); rethrows its failure. */
    private static void join(java.util.concurrent.CompletableFuture<Void> stage) throws IOException {
      boolean interrupted = false;
      try {
        while (true) {
          try {
            stage.get();
            return;
          } catch (InterruptedException e) {
            interrupted = true;
          } catch (java.util.concurrent.ExecutionException e) {
            Throwable cause = e.getCause();
            while (cause instanceof java.util.concurrent.CompletionException c && c.getCause() != null) {
              cause = c.getCause();
            }
            if (cause instanceof IOException io) {
              throw io;
            }
            if (cause instanceof RuntimeException re) {
              throw re;
            }
            throw new IOException(cause);
          }
        }
      } finally {
        if (interrupted) {
          Thread.currentThread().interrupt();
        }
      }
    }

    private void writeFile(ByteBuffer[] pieces) throws IOException {
      if (casWriter != null) {
        casWriter.write(pieces);
      } else {
        out.append(pieces, 0, pieces.length);
      }
    }

    @Override
    public void commit() throws IOException {
      if (done || failed) {
        throw new IOException("upload of " + k.key + " is " + (done ? "finished" : "failed"));
      }
      try {
        if (written != size) {
          throw new BlobSizeMismatchException(
              k.key + ": received " + written + " bytes, announced " + size);
        }
        if (hasher != null) {
          String got = HEX.formatHex(hasher.finish());
          if (!got.equals(k.key.hash())) {
            throw new DigestMismatchException(k.key + ": content hashes to " + got);
          }
        }
        awaitFileSide(0);
        if (casWriter != null) {
          casWriter.finish();
        } else {
          out.finish();
        }
        long fileLength = out.length();
        out.close();
        awaitFlush();
        ch.force(true);
        ch.close();
        long nBlocks = BlobIndex.blocksFor(fileLength);
        ReentrantLock st = stripe(k.h0, k.h1);
        st.lock();
        try {
          Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE);
          fsyncDirectory(target.getParent());
          insertCommitted(k, size, zstd, nBlocks, reservation);
        } finally {
          st.unlock();
        }
        done = true;
      } catch (IOException | RuntimeException e) {
        failed = true;
        close();
        throw e;
      }
    }

    /** Starts a background fdatasync once {@link #EARLY_FLUSH_BYTES} more are written. */
    private void flushEarly(long n) throws IOException {
      sinceFlush += n;
      if (direct || sinceFlush < EARLY_FLUSH_BYTES || written >= size) { // (direct: nothing is cached)
        return; // the commit's own fsync comes next anyway
      }
      if (flushing != null && flushing.isAlive()) {
        return; // the disk is behind; the next one starts after this
      }
      if (flushError != null) {
        throw flushError;
      }
      sinceFlush = 0;
      flushing = Thread.ofVirtual().name("disk-flush").start(() -> {
        try {
          ch.force(false);
        } catch (java.nio.channels.ClosedChannelException discarded) {
          // the upload was discarded meanwhile
        } catch (IOException e) {
          flushError = e;
        }
      });
    }

    private void awaitFlush() throws IOException {
      Thread t = flushing;
      if (t != null) {
        try {
          t.join();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new java.io.InterruptedIOException("interrupted while flushing " + temp);
        }
        flushing = null;
      }
      if (flushError != null) {
        throw flushError;
      }
    }

    @Override
    public void close() {
      // The file side may still be writing (with the compressor's pooled buffers): let it finish first.
      try {
        join(fileSide);
      } catch (IOException | RuntimeException ignored) {
        // discarded or failed anyway; the failure was or will be reported by write or commit
      }
      if (casWriter != null) {
        casWriter.close();
      }
      try {
        out.close();
      } catch (IOException ignored) {
        // its bytes are discarded or already written
      }
      if (done) {
        return;
      }
      done = true;
      try {
        ch.close();
      } catch (IOException ignored) {
        // discarding anyway
      }
      try {
        Files.deleteIfExists(temp);
      } catch (IOException e) {
        log.warn("could not delete temp file {}: {}", temp, e.toString());
      }
      release(reservation);
    }
  }

  /** Indexes a file just renamed into place (caller holds the key's stripe lock) and releases its reservation. */
  private void insertCommitted(K k, long size, boolean zstd, long nBlocks, long reservation) {
    lock.lock();
    try {
      reserved -= reservation;
      int old = k.find(index);
      if (old >= 0) {
        overwrittenBytes.addAndGet(index.blocks(old) * BlobIndex.BLOCK);
        boolean oldZstd = (index.flags(old) & BlobIndex.F_ZSTD) != 0;
        if (index.size(old) == size && oldZstd == zstd) {
          index.remove(old); // same path: the rename already replaced the file
        } else {
          removeAndQueueLocked(old); // another file: delete it (the deleter sees it is no longer indexed)
        }
      }
      int slot = index.insert(k.code, k.h0, k.h1, k.h2, k.h3, size, (int) nBlocks,
          (zstd ? BlobIndex.F_ZSTD : 0) | BlobIndex.F_VERIFIED, true);
      entryObserver.accept(size);
      while (index.totalBytes() + reserved > maxSize && index.tail() != slot) {
        evictTailLocked();
      }
    } finally {
      lock.unlock();
    }
  }

  /**
   * Stores a CAS blob given in the casblob format (e.g. downloaded from a proxy that holds this store's
   * format), keeping those exact bytes as the file. The content is decompressed and hashed as it streams
   * in; a malformed casblob or one whose content does not match {@code key} and {@code size} stores
   * nothing. The stream is read to its end but not closed.
   *
   * @throws DigestMismatchException if the content does not hash to the key
   * @throws BlobSizeMismatchException if the content is not {@code size} bytes
   * @throws io.bazelcache.storage.casblob.CasBlobFormatException if the bytes are not a valid casblob
   */
  @Override
  public void putCasblob(BlobKey key, long size, InputStream casblob) throws IOException {
    if (key.kind() != Kind.CAS || size <= 0) {
      throw new IllegalArgumentException("putCasblob is for non-empty CAS blobs: " + key + "/" + size);
    }
    ensureOpen();
    if (size > maxBlobSize) {
      throw new BlobTooLargeException(key + ": " + size + " bytes is over the max blob size " + maxBlobSize);
    }
    if (size > maxSize) {
      throw new BlobTooLargeException(key + ": " + size + " bytes can never fit in a cache of " + maxSize);
    }
    long estimate = CasBlobHeader.headerLength(size, CasBlobHeader.DEFAULT_CHUNK_SIZE) + size;
    long reservation = BlobIndex.blocksFor(estimate) * BlobIndex.BLOCK;
    if (reservation > maxSize) {
      throw new BlobTooLargeException(key + ": " + size + " bytes can never fit in a cache of " + maxSize);
    }
    reserve(key, reservation);
    K k = K.of(key);
    Path dir = dirs[k.code][(int) (k.h0 >>> 56)];
    String name = fileName(key.hash(), size, true);
    Path target = dir.resolve(name);
    Path temp = dir.resolve(name + "." + tempPrefix + "-" + tempCounter.incrementAndGet() + TEMP_SUFFIX);
    boolean committed = false;
    try (FileChannel ch = createTemp(temp)) {
      long[] written = {0};
      InputStream tee = new java.io.FilterInputStream(casblob) {
        @Override
        public int read() throws IOException {
          int b = super.read();
          if (b >= 0) {
            copy(new byte[] {(byte) b}, 0, 1);
          }
          return b;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
          int n = super.read(b, off, len);
          if (n > 0) {
            copy(b, off, n);
          }
          return n;
        }

        private void copy(byte[] b, int off, int n) throws IOException {
          ByteBuffer bb = ByteBuffer.wrap(b, off, n);
          while (bb.hasRemaining()) {
            written[0] += ch.write(bb, written[0]);
          }
        }

        @Override
        public void close() {
          // the caller owns the source stream
        }
      };
      Hasher hasher = key.function().newHasher();
      long total = 0;
      try (io.bazelcache.storage.casblob.CasBlobInputStream decoded =
          new io.bazelcache.storage.casblob.CasBlobInputStream(tee)) {
        if (decoded.readHeader().uncompressedSize() != size) {
          throw new BlobSizeMismatchException(key + ": casblob holds "
              + decoded.readHeader().uncompressedSize() + " bytes, announced " + size);
        }
        byte[] buf = new byte[256 * 1024];
        int n;
        while ((n = decoded.read(buf)) > 0) {
          hasher.update(buf, 0, n);
          total += n;
        }
      }
      if (total != size) {
        throw new BlobSizeMismatchException(key + ": received " + total + " bytes, announced " + size);
      }
      String got = HEX.formatHex(hasher.finish());
      if (!got.equals(key.hash())) {
        throw new DigestMismatchException(key + ": content hashes to " + got);
      }
      ch.force(true);
      ReentrantLock st = stripe(k.h0, k.h1);
      st.lock();
      try {
        Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE);
        fsyncDirectory(dir);
        insertCommitted(k, size, true, BlobIndex.blocksFor(written[0]), reservation);
        committed = true;
      } finally {
        st.unlock();
      }
    } finally {
      if (!committed) {
        try {
          Files.deleteIfExists(temp);
        } catch (IOException e) {
          log.warn("could not delete temp file {}: {}", temp, e.toString());
        }
        release(reservation);
      }
    }
  }

  private static FileChannel createTemp(Path temp) throws IOException {
    try {
      return FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
    } catch (NoSuchFileException e) {
      Files.createDirectories(temp.getParent()); // removed behind our back: recreate it
      return FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
    }
  }

  private static void fsyncDirectory(Path dir) throws IOException {
    try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
      d.force(true);
    }
  }

  /** Upload of the empty CAS blob (or of a CAS key with size 0): checked, never stored. */
  private static final class EmptyCasWriter implements BlobWriter {
    private final BlobKey key;
    private final long size;
    private final Hasher hasher;
    private long written;
    private boolean finished;

    EmptyCasWriter(BlobKey key, long size) {
      this.key = key;
      this.size = size;
      this.hasher = key.function().newHasher();
    }

    @Override
    public BlobKey key() {
      return key;
    }

    @Override
    public long expectedSize() {
      return size;
    }

    @Override
    public long bytesWritten() {
      return written;
    }

    @Override
    public void write(ByteBuffer data) throws IOException {
      if (finished) {
        throw new IOException("upload of " + key + " is finished");
      }
      if (written + data.remaining() > size) {
        finished = true;
        throw new BlobSizeMismatchException(key + ": received more than the announced " + size + " bytes");
      }
      written += data.remaining();
      hasher.update(data);
    }

    @Override
    public void commit() throws IOException {
      if (finished) {
        throw new IOException("upload of " + key + " is finished");
      }
      finished = true;
      if (written != size) {
        throw new BlobSizeMismatchException(key + ": received " + written + " bytes, announced " + size);
      }
      String got = HEX.formatHex(hasher.finish());
      if (!got.equals(key.hash())) {
        throw new DigestMismatchException(key + ": content hashes to " + got);
      }
      if (size != 0) {
        // A non-empty blob that hashes to the empty hash cannot happen; refuse rather than store.
        throw new DigestMismatchException(key + ": the empty hash with " + size + " bytes");
      }
    }

    @Override
    public void close() {
      finished = true;
    }
  }

  private static final class EmptyBlob implements Blob {
    static final EmptyBlob INSTANCE = new EmptyBlob();

    @Override
    public long size() {
      return 0;
    }

    @Override
    public InputStream openStream(long offset) {
      if (offset != 0) {
        throw new IndexOutOfBoundsException("offset " + offset + " outside [0, 0]");
      }
      return InputStream.nullInputStream();
    }

    @Override
    public Optional<io.bazelcache.storage.FileSlice> rawFile() {
      return Optional.empty();
    }

    @Override
    public void close() {}
  }

  // ------------------------------------------------------------------------------------------------
  // Background deletion

  private void deleteLoop() {
    while (true) {
      Deletion d;
      try {
        d = deletions.take();
      } catch (InterruptedException e) {
        return;
      }
      if (d == STOP) {
        return;
      }
      try {
        deletionGate.acquireUninterruptibly();
        try {
          deleteIfUnindexed(d);
        } finally {
          deletionGate.release();
        }
      } catch (RuntimeException e) {
        log.warn("deletion failed: {}", e.toString());
      } finally {
        lock.lock();
        try {
          pendingDeleteBytes -= d.bytes;
        } finally {
          lock.unlock();
        }
        deletionsDone.incrementAndGet();
      }
    }
  }

  private void deleteIfUnindexed(Deletion d) {
    ReentrantLock st = stripe(d.h0, d.h1);
    st.lock();
    try {
      lock.lock();
      try {
        int slot = index.find(d.code, d.h0, d.h1, d.h2, d.h3);
        if (slot >= 0 && index.size(slot) == d.size
            && ((index.flags(slot) & BlobIndex.F_ZSTD) != 0) == d.zstd) {
          return; // a newer upload was committed to the same path: keep it
        }
      } finally {
        lock.unlock();
      }
      Path p = pathOf(d.code, d.h0, d.h1, d.h2, d.h3, d.size, d.zstd);
      try {
        Files.deleteIfExists(p);
      } catch (IOException e) {
        log.warn("could not delete {}: {}", p, e.toString());
      }
    } finally {
      st.unlock();
    }
  }

  /** Waits until every deletion queued so far has been carried out (for tests and benchmarks). */
  void awaitDeletions() throws InterruptedException {
    long target = deletionsQueued.get();
    while (deletionsDone.get() < target) {
      Thread.sleep(1);
    }
  }

  /** Pauses (true) or resumes (false) background deletions; for tests of the eviction backlog. */
  void holdDeletions(boolean hold) {
    if (hold) {
      deletionGate.acquireUninterruptibly();
    } else {
      deletionGate.release();
    }
  }

  /** On-disk bytes (4 KiB blocks) of entries evicted by the LRU since the store was opened. */
  public long evictedBytes() {
    return evictedBytes.get();
  }

  /** On-disk bytes of entries replaced by a new upload of the same key since the store was opened. */
  public long overwrittenBytes() {
    return overwrittenBytes.get();
  }

  /** Told the logical size of every entry added (uploads and downloads from a proxy; not the startup scan). */
  public void onEntryAdded(java.util.function.LongConsumer observer) {
    entryObserver = observer == null ? size -> {} : observer;
  }

  /** The file of the least recently used entry, or empty when the store is empty. */
  public java.util.Optional<Path> leastRecentlyUsedFile() {
    lock.lock();
    try {
      int slot = index.tail();
      if (slot < 0 || index.count() == 0) {
        return java.util.Optional.empty();
      }
      return java.util.Optional.of(pathOf(index.flags(slot) & BlobIndex.CODE_MASK, index.hashWord(slot, 0),
          index.hashWord(slot, 1), index.hashWord(slot, 2), index.hashWord(slot, 3), index.size(slot),
          (index.flags(slot) & BlobIndex.F_ZSTD) != 0));
    } finally {
      lock.unlock();
    }
  }

  /** Bytes evicted but not yet deleted. */
  long pendingDeleteBytes() {
    lock.lock();
    try {
      return pendingDeleteBytes;
    } finally {
      lock.unlock();
    }
  }

  /** Bytes of heap held by the index arrays. */
  long indexArrayBytes() {
    lock.lock();
    try {
      return index.arrayBytes();
    } finally {
      lock.unlock();
    }
  }

  private void ensureOpen() throws IOException {
    if (closed) {
      throw new IOException("disk store is closed");
    }
  }

  /** Stops the deleter after the deletions already queued. Blobs already returned stay readable. */
  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    deletions.add(STOP);
    try {
      deleter.join();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  // ------------------------------------------------------------------------------------------------
  // Loading

  /** Entries of one directory, parsed before taking the index lock. */
  private static final class Batch {
    int n;
    long[] words = new long[64];
    long[] sizes = new long[16];
    long[] lengths = new long[16];
    long[] times = new long[16];
    boolean[] zstd = new boolean[16];

    void add(long h0, long h1, long h2, long h3, long size, long length, long time, boolean z) {
      if (n == sizes.length) {
        int c = n * 2;
        words = Arrays.copyOf(words, c * 4);
        sizes = Arrays.copyOf(sizes, c);
        lengths = Arrays.copyOf(lengths, c);
        times = Arrays.copyOf(times, c);
        zstd = Arrays.copyOf(zstd, c);
      }
      words[4 * n] = h0;
      words[4 * n + 1] = h1;
      words[4 * n + 2] = h2;
      words[4 * n + 3] = h3;
      sizes[n] = size;
      lengths[n] = length;
      times[n] = time;
      zstd[n] = z;
      n++;
    }
  }

  /** Load state shared by the workers (guarded by {@link #lock}). */
  private long[] loadTimes = new long[0];
  private long unknownFiles;
  private long tempFilesDeleted;

  private void load() throws IOException {
    int threads = Math.max(4, Math.min(16, 4 * Runtime.getRuntime().availableProcessors()));
    ExecutorService pool = Executors.newFixedThreadPool(threads, Thread.ofPlatform().daemon().name("disk-load-", 0).factory());
    try {
      List<Future<?>> futures = new ArrayList<>();
      for (int code = 0; code < dirs.length; code++) {
        for (int hh = 0; hh < 256; hh++) {
          int c = code;
          int h = hh;
          futures.add(pool.submit(() -> {
            loadDirectory(c, h);
            return null;
          }));
        }
      }
      for (Future<?> f : futures) {
        try {
          f.get();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new IOException("interrupted while loading", e);
        } catch (java.util.concurrent.ExecutionException e) {
          Throwable c = e.getCause();
          if (c instanceof UncheckedIOException u) {
            throw u.getCause();
          }
          if (c instanceof IOException io) {
            throw io;
          }
          throw new IOException("loading failed", c);
        }
      }
    } finally {
      pool.shutdownNow();
    }
    warnAboutTopLevel();
    lock.lock();
    try {
      // Link the LRU from oldest to newest access time, so the newest ends up most recently used.
      // Packed (seconds << 32 | slot) in place: position j never passes slot, so no second array.
      long[] order = loadTimes;
      int j = 0;
      for (int slot = 0; slot < order.length; slot++) {
        long t = order[slot];
        if (t != 0) {
          long secs = Math.max(0, Math.min(Integer.MAX_VALUE, t / 1000));
          order[j++] = (secs << 32) | slot;
        }
      }
      Arrays.parallelSort(order, 0, j);
      for (int i = 0; i < j; i++) {
        index.linkAtHead((int) order[i]);
      }
      loadTimes = null;
    } finally {
      lock.unlock();
    }
    if (unknownFiles > 0) {
      log.warn("{}: ignored {} unexpected files", root, unknownFiles);
    }
    if (tempFilesDeleted > 0) {
      log.info("{}: deleted {} temp files left by an earlier run", root, tempFilesDeleted);
    }
  }

  private void warnAboutTopLevel() throws IOException {
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(root)) {
      for (Path p : ds) {
        String name = p.getFileName().toString();
        boolean known = name.equals(MARKER_NAME) || name.equals(SCRATCH_DIR_NAME) || name.equals("lost+found");
        for (DigestFunction f : FUNCTIONS) {
          known |= name.equals(f.lowerName());
        }
        if (!known) {
          log.warn("{}: ignoring unexpected entry {}", root, p);
        }
      }
    }
  }

  private void loadDirectory(int code, int hh) throws IOException {
    Path dir = dirs[code][hh];
    Kind kind = KINDS[code / 2];
    Batch batch = new Batch();
    long unknown = 0;
    long temps = 0;
    List<Path> toDelete = new ArrayList<>();
    long[] words = new long[4];
    DirectoryStream<Path> stream;
    try {
      stream = Files.newDirectoryStream(dir);
    } catch (NoSuchFileException e) {
      Files.createDirectories(dir); // a new store: pre-create the directory, nothing to load
      return;
    }
    try (DirectoryStream<Path> ds = stream) {
      for (Path p : ds) {
        Path fileName = p.getFileName();
        String name = fileName.toString();
        if (name.endsWith(TEMP_SUFFIX)) {
          try {
            Files.deleteIfExists(p);
            temps++;
          } catch (IOException e) {
            log.warn("could not delete temp file {}: {}", p, e.toString());
          }
          continue;
        }
        int len = name.length();
        boolean z = name.endsWith(ZSTD_SUFFIX);
        int end = z ? len - ZSTD_SUFFIX.length() : len;
        long size = parseName(name, end, hh, words);
        if (size < 0 || (z && kind != Kind.CAS) || (kind == Kind.CAS && size == 0)) {
          if (unknown++ < 5) {
            log.warn("ignoring unexpected file {}", p);
          }
          continue;
        }
        BasicFileAttributes a;
        try {
          // Relative to the open directory (fstatat) where the platform allows: no full path walk per file.
          a = ds instanceof SecureDirectoryStream<Path> sds
              ? sds.getFileAttributeView(fileName, BasicFileAttributeView.class, LinkOption.NOFOLLOW_LINKS)
                  .readAttributes()
              : Files.readAttributes(p, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        } catch (NoSuchFileException e) {
          continue;
        }
        if (!a.isRegularFile()) {
          if (unknown++ < 5) {
            log.warn("ignoring unexpected entry {}", p);
          }
          continue;
        }
        long length = a.size();
        // Cheap checks from the stat alone: a raw file must have its logical size; a casblob at least its header.
        boolean plausible = z ? length > MIN_CASBLOB_HEADER : length == size;
        if (!plausible) {
          log.warn("{} has {} bytes, which cannot hold its content; deleting it", p, length);
          toDelete.add(p);
          continue;
        }
        long time = Math.max(a.lastAccessTime().toMillis(), a.lastModifiedTime().toMillis());
        batch.add(words[0], words[1], words[2], words[3], size, length, Math.max(time, 1000), z);
      }
    }
    for (Path p : toDelete) {
      Files.deleteIfExists(p);
    }
    lock.lock();
    try {
      unknownFiles += unknown;
      tempFilesDeleted += temps;
      for (int i = 0; i < batch.n; i++) {
        long h0 = batch.words[4 * i];
        long h1 = batch.words[4 * i + 1];
        long h2 = batch.words[4 * i + 2];
        long h3 = batch.words[4 * i + 3];
        long nBlocks = BlobIndex.blocksFor(batch.lengths[i]);
        int flags = batch.zstd[i] ? BlobIndex.F_ZSTD : 0;
        if (nBlocks > Integer.MAX_VALUE) {
          continue;
        }
        int slot = index.insertIfAbsent(code, h0, h1, h2, h3, batch.sizes[i], (int) nBlocks, flags);
        if (slot < 0) {
          // Two files for one key (e.g. the storage mode changed): keep the newer, delete the other.
          int existing = -slot - 1;
          if (loadTimes[existing] >= batch.times[i]) {
            queueLocked(new Deletion(code, h0, h1, h2, h3, batch.sizes[i], batch.zstd[i], nBlocks * BlobIndex.BLOCK));
            continue;
          }
          removeAndQueueLocked(existing);
          loadTimes[existing] = 0;
          slot = index.insert(code, h0, h1, h2, h3, batch.sizes[i], (int) nBlocks, flags, false);
        }
        if (slot >= loadTimes.length) {
          loadTimes = Arrays.copyOf(loadTimes, Math.max(slot + 1, loadTimes.length * 3 / 2 + 1024));
        }
        loadTimes[slot] = batch.times[i];
      }
    } finally {
      lock.unlock();
    }
  }

  /**
   * Parses {@code <64 lowercase hex>-<size>} in {@code name[0, end)} into {@code words[0..3]}, checking
   * the first two hex digits name the directory {@code hh}; returns the size, or -1 if the name is not an
   * entry's.
   */
  static long parseName(String name, int end, int hh, long[] words) {
    if (end < 66 || end - 65 > 18 || name.charAt(64) != '-') {
      return -1;
    }
    for (int w = 0; w < 4; w++) {
      long v = 0;
      for (int i = w * 16; i < w * 16 + 16; i++) {
        char c = name.charAt(i);
        int d = Digest.hexValue(c);
        if (d < 0) {
          return -1;
        }
        v = (v << 4) | d;
      }
      words[w] = v;
    }
    if ((int) (words[0] >>> 56) != hh) {
      return -1;
    }
    if (name.charAt(65) == '0' && end > 66) {
      return -1;
    }
    long size = 0;
    for (int i = 65; i < end; i++) {
      char c = name.charAt(i);
      if (c < '0' || c > '9') {
        return -1;
      }
      size = size * 10 + (c - '0');
    }
    return size;
  }
}
