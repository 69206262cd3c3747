package io.bazelcache.http;

import io.bazelcache.storage.FileSlice;
import io.netty.channel.FileRegion;
import io.netty.util.AbstractReferenceCounted;
import java.io.EOFException;
import java.io.IOException;
import java.nio.channels.WritableByteChannel;

/**
 * A Netty {@link FileRegion} over a {@link FileSlice}, sent with {@code FileChannel.transferTo} (sendfile). Unlike
 * Netty's DefaultFileRegion it never closes the file channel: the channel belongs to the Blob, which the sender
 * closes once the transfer is over (a store may share one open channel between readers).
 */
final class SliceFileRegion extends AbstractReferenceCounted implements FileRegion {
  private final FileSlice slice;
  private long transferred;

  SliceFileRegion(FileSlice slice) {
    this.slice = slice;
  }

  @Override
  public long position() {
    return slice.position();
  }

  @Override
  @Deprecated
  public long transfered() {
    return transferred;
  }

  @Override
  public long transferred() {
    return transferred;
  }

  @Override
  public long count() {
    return slice.count();
  }

  @Override
  public long transferTo(WritableByteChannel target, long position) throws IOException {
    long left = slice.count() - position;
    if (left < 0 || position < 0) {
      throw new IllegalArgumentException("position " + position + " outside the region of " + slice.count());
    }
    if (left == 0) {
      return 0;
    }
    long n = slice.channel().transferTo(slice.position() + position, left, target);
    if (n > 0) {
      transferred += n;
    } else if (n == 0 && slice.channel().size() < slice.position() + slice.count()) {
      throw new EOFException("file shrank below the region being sent");
    }
    return n;
  }

  @Override
  protected void deallocate() {
    // The Blob owns the channel.
  }

  @Override
  public FileRegion retain() {
    super.retain();
    return this;
  }

  @Override
  public FileRegion retain(int increment) {
    super.retain(increment);
    return this;
  }

  @Override
  public FileRegion touch() {
    return this;
  }

  @Override
  public FileRegion touch(Object hint) {
    return this;
  }
}
