package io.bazelcache.grpc;

import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.BlobWriter;
import io.bazelcache.storage.ForwardingStore;
import io.bazelcache.storage.InsufficientStorageException;
import io.bazelcache.storage.FileSlice;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Optional;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/** Wraps a store to count findMissing calls and to simulate a full disk. */
final class InstrumentedStore extends ForwardingStore {
  final AtomicBoolean full = new AtomicBoolean();
  final AtomicInteger findMissingCalls = new AtomicInteger();
  final AtomicInteger containsCalls = new AtomicInteger();

  InstrumentedStore(BlobStore inner) {
    super(inner);
  }

  /** When set, blobs are served from files ({@link Blob#rawFile()}, {@link Blob#zstdFile()}). */
  final AtomicBoolean fileBacked = new AtomicBoolean();
  final AtomicInteger zstdFileUses = new AtomicInteger();

  @Override
  public Blob get(BlobKey key) throws IOException {
    Blob b = delegate.get(key);
    if (b == null || !fileBacked.get()) {
      return b;
    }
    byte[] data;
    try (b) {
      data = b.readAllBytes();
    }
    return new FileBlob(data);
  }

  /** A blob whose content sits in temp files behind 7 bytes of junk, to test slice positions. */
  final class FileBlob implements Blob {
    private final byte[] data;
    private final FileChannel raw;
    private final FileChannel zstd;
    private final long zstdLength;

    FileBlob(byte[] data) throws IOException {
      this.data = data;
      this.raw = tempChannel(data);
      byte[] z = com.github.luben.zstd.Zstd.compress(data);
      this.zstdLength = z.length;
      this.zstd = tempChannel(z);
    }

    private static FileChannel tempChannel(byte[] content) throws IOException {
      Path p = Files.createTempFile("blob", ".bin");
      byte[] withJunk = new byte[content.length + 7];
      System.arraycopy(content, 0, withJunk, 7, content.length);
      Files.write(p, withJunk);
      FileChannel ch = FileChannel.open(p, StandardOpenOption.READ, StandardOpenOption.DELETE_ON_CLOSE);
      return ch;
    }

    @Override
    public long size() {
      return data.length;
    }

    @Override
    public InputStream openStream(long offset) {
      return new ByteArrayInputStream(data, (int) offset, data.length - (int) offset);
    }

    @Override
    public Optional<FileSlice> rawFile() {
      return Optional.of(new FileSlice(raw, 7, data.length));
    }

    @Override
    public Optional<FileSlice> zstdFile() {
      zstdFileUses.incrementAndGet();
      return Optional.of(new FileSlice(zstd, 7, zstdLength));
    }

    @Override
    public void close() {
      try {
        raw.close();
        zstd.close();
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    }
  }

  @Override
  public boolean contains(BlobKey key) throws IOException {
    containsCalls.incrementAndGet();
    return delegate.contains(key);
  }

  @Override
  public List<BlobKey> findMissing(Collection<BlobKey> keys) throws IOException {
    findMissingCalls.incrementAndGet();
    return delegate.findMissing(keys);
  }

  @Override
  public int[] findMissing(io.bazelcache.storage.DigestBatch batch) throws IOException {
    findMissingCalls.incrementAndGet();
    return delegate.findMissing(batch);
  }

  @Override
  public BlobWriter newWriter(BlobKey key, long size) throws IOException {
    if (full.get()) {
      throw new InsufficientStorageException("no room for " + size + " bytes");
    }
    return delegate.newWriter(key, size);
  }
}
