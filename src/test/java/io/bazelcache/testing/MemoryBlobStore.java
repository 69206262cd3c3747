package io.bazelcache.testing;

import io.bazelcache.digest.Hasher;
import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.BlobSizeMismatchException;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.BlobWriter;
import io.bazelcache.storage.DigestMismatchException;
import io.bazelcache.storage.StoreStats;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.util.HexFormat;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A test fixture: a {@link BlobStore} in memory with the contract's checks (sizes, CAS digests, the
 * empty blob). Lets transport tests run before and independently of the disk engine.
 */
public final class MemoryBlobStore implements BlobStore {
  private final Map<BlobKey, byte[]> entries = new ConcurrentHashMap<>();
  public final AtomicInteger gets = new AtomicInteger();
  public final AtomicInteger commits = new AtomicInteger();

  public Map<BlobKey, byte[]> entries() {
    return entries;
  }

  @Override
  public Blob get(BlobKey key) {
    gets.incrementAndGet();
    byte[] data = key.isEmptyCasBlob() ? new byte[0] : entries.get(key);
    if (data == null) {
      return null;
    }
    return new Blob() {
      @Override
      public long size() {
        return data.length;
      }

      @Override
      public InputStream openStream(long offset) {
        return new ByteArrayInputStream(data, (int) offset, data.length - (int) offset);
      }

      @Override
      public void close() {}
    };
  }

  @Override
  public boolean contains(BlobKey key) {
    return key.isEmptyCasBlob() || entries.containsKey(key);
  }

  @Override
  public BlobWriter newWriter(BlobKey key, long size) {
    return new BlobWriter() {
      private final ByteArrayOutputStream buf = new ByteArrayOutputStream();
      private final Hasher hasher = key.function().newHasher();

      @Override
      public BlobKey key() {
        return key;
      }

      @Override
      public long expectedSize() {
        return size;
      }

      @Override
      public void write(ByteBuffer data) throws IOException {
        if (buf.size() + (long) data.remaining() > size) {
          throw new BlobSizeMismatchException("more than " + size + " bytes");
        }
        byte[] b = new byte[data.remaining()];
        data.get(b);
        hasher.update(b, 0, b.length);
        buf.write(b);
      }

      @Override
      public long bytesWritten() {
        return buf.size();
      }

      @Override
      public void commit() throws IOException {
        if (buf.size() != size) {
          throw new BlobSizeMismatchException("got " + buf.size() + " bytes, want " + size);
        }
        String got = HexFormat.of().formatHex(hasher.finish());
        if (key.kind().isContentAddressed() && !got.equals(key.hash())) {
          throw new DigestMismatchException("content hashes to " + got + ", not " + key.hash());
        }
        if (!key.isEmptyCasBlob()) {
          entries.put(key, buf.toByteArray());
        }
        commits.incrementAndGet();
      }

      @Override
      public void close() {}
    };
  }

  @Override
  public StoreStats stats() {
    long total = entries.values().stream().mapToLong(b -> b.length).sum();
    return new StoreStats(total, total, 0, Long.MAX_VALUE, entries.size());
  }
}
