package io.bazelcache.storage;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * The base of test stores that wrap another: passes the methods every {@link BlobStore} must implement
 * ({@link #get}, {@link #contains}, {@link #newWriter}, {@link #stats}) to {@link #delegate}; a test
 * overrides only what it changes.
 *
 * <p>The interface's default methods are not forwarded: {@code findMissing} (both), {@code put} (both),
 * {@code putCasblob} and {@code close} run {@link BlobStore}'s defaults on this store, so they go through
 * the subclass's overrides (a {@code put} writes through an overridden {@link #newWriter}, a
 * {@code findMissing} asks an overridden {@link #contains}), and closing this store leaves the delegate
 * open. A test store that wants one of them forwarded overrides it to call {@code delegate} (as
 * {@code DigestBatchTest.Plain} does for {@code findMissing(Collection)} and {@code close}). They are left
 * to the interface here rather than forwarded because a subclass cannot get the default back: Java does not
 * allow {@code BlobStore.super.put(...)} in a class whose superclass overrides {@code put}.
 *
 * <p>{@code delegate} may be null for a store that overrides every method it is asked for.
 */
public abstract class ForwardingStore implements BlobStore {
  protected final BlobStore delegate;

  protected ForwardingStore(BlobStore delegate) {
    this.delegate = delegate;
  }

  @Override
  public Blob get(BlobKey key) throws IOException {
    return delegate.get(key);
  }

  @Override
  public boolean contains(BlobKey key) throws IOException {
    return delegate.contains(key);
  }

  @Override
  public BlobWriter newWriter(BlobKey key, long size) throws IOException {
    return delegate.newWriter(key, size);
  }

  @Override
  public StoreStats stats() {
    return delegate.stats();
  }

  /**
   * A {@link ForwardingBlobWriter} for test writers that act on the bytes written: the list writes are not
   * forwarded but are {@link BlobWriter}'s defaults, so every byte passes through this writer's own
   * {@link #write(ByteBuffer)} (or its {@link #write(List)}, if overridden) as it would in a writer that
   * implements {@code BlobWriter} directly. {@code key}, {@code expectedSize}, {@code write(ByteBuffer)},
   * {@code bytesWritten}, {@code commit} and {@code close} are forwarded.
   */
  protected abstract static class InterceptingWriter extends ForwardingBlobWriter {
    protected InterceptingWriter(BlobWriter delegate) {
      super(delegate);
    }

    /** {@link BlobWriter}'s default: each buffer through {@link #write(ByteBuffer)}. */
    @Override
    public void write(List<ByteBuffer> data) throws IOException {
      for (ByteBuffer b : data) {
        write(b);
      }
    }

    /** {@link BlobWriter}'s default: through {@link #write(List)}, then {@code release}. */
    @Override
    public void write(List<ByteBuffer> data, Runnable release) throws IOException {
      try {
        write(data);
      } finally {
        release.run();
      }
    }
  }
}
