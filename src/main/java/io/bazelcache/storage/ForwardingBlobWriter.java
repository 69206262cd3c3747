package io.bazelcache.storage;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * A writer that passes every call to another: the base of layers that act on one step of an upload
 * (see {@code WriteBehindStore}) without hiding the inner writer's faster paths.
 */
public abstract class ForwardingBlobWriter implements BlobWriter {
  protected final BlobWriter delegate;

  protected ForwardingBlobWriter(BlobWriter delegate) {
    this.delegate = delegate;
  }

  @Override
  public BlobKey key() {
    return delegate.key();
  }

  @Override
  public long expectedSize() {
    return delegate.expectedSize();
  }

  @Override
  public void write(ByteBuffer data) throws IOException {
    delegate.write(data);
  }

  @Override
  public void write(List<ByteBuffer> data) throws IOException {
    delegate.write(data);
  }

  @Override
  public void write(List<ByteBuffer> data, Runnable release) throws IOException {
    delegate.write(data, release);
  }

  @Override
  public long bytesWritten() {
    return delegate.bytesWritten();
  }

  @Override
  public void commit() throws IOException {
    delegate.commit();
  }

  @Override
  public void close() {
    delegate.close();
  }
}
