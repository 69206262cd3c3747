package io.bazelcache.http;

import io.bazelcache.digest.Hasher;
import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.BlobSizeMismatchException;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.BlobWriter;
import io.bazelcache.storage.DigestMismatchException;
import io.bazelcache.storage.StoreStats;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.util.HexFormat;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Runs an HTTP cache in a JVM of its own (started by {@link SmallHeapUploadTest} with a small heap) over a store that
 * checks uploads but keeps no bytes, so only the server's own buffering can use the heap. Prints the port, exits when
 * stdin closes. /status reports committed uploads as NumFiles and their bytes as UncompressedSize.
 */
public final class SmallHeapServerMain {
  public static void main(String[] args) throws Exception {
    AtomicLong files = new AtomicLong();
    AtomicLong bytes = new AtomicLong();
    BlobStore store = new BlobStore() {
      @Override
      public Blob get(BlobKey key) {
        return null;
      }

      @Override
      public boolean contains(BlobKey key) {
        return false;
      }

      @Override
      public BlobWriter newWriter(BlobKey key, long size) {
        Hasher h = key.function().newHasher();
        return new BlobWriter() {
          long written;

          @Override
          public BlobKey key() {
            return key;
          }

          @Override
          public long expectedSize() {
            return size;
          }

          @Override
          public void write(ByteBuffer data) throws BlobSizeMismatchException {
            if (written + data.remaining() > size) {
              throw new BlobSizeMismatchException("too long");
            }
            written += data.remaining();
            h.update(data);
          }

          @Override
          public long bytesWritten() {
            return written;
          }

          @Override
          public void commit() throws java.io.IOException {
            if (written != size) {
              throw new BlobSizeMismatchException("too short");
            }
            if (!HexFormat.of().formatHex(h.finish()).equals(key.hash())) {
              throw new DigestMismatchException("mismatch");
            }
            files.incrementAndGet();
            bytes.addAndGet(size);
          }

          @Override
          public void close() {}
        };
      }

      @Override
      public StoreStats stats() {
        return new StoreStats(0, bytes.get(), 0, 0, files.get());
      }
    };
    try (HttpCacheServer server = new HttpCacheServer(new InetSocketAddress("127.0.0.1", 0), store, store,
        HttpCacheOptions.builder().accessLog(false).ioThreads(1).build(), store::stats).start()) {
      System.out.println("PORT " + server.port());
      System.out.flush();
      while (System.in.read() >= 0) {
        // wait for the parent to close stdin
      }
    }
  }
}
