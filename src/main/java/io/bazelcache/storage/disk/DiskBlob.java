package io.bazelcache.storage.disk;

import io.bazelcache.storage.Blob;
import io.bazelcache.storage.ChannelSliceInputStream;
import io.bazelcache.storage.FileSlice;
import io.bazelcache.storage.casblob.CasBlobReader;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.FileChannel;
import java.util.Optional;

/** A disk entry held open: eviction or replacement of its file does not disturb a reader. */
final class DiskBlob implements Blob {
  private final FileChannel ch;
  private final long size;
  private final long fileLength;
  private final CasBlobReader casblob; // null for raw files

  DiskBlob(FileChannel ch, long size, long fileLength, CasBlobReader casblob) {
    this.ch = ch;
    this.size = size;
    this.fileLength = fileLength;
    this.casblob = casblob;
  }

  @Override
  public long size() {
    return size;
  }

  @Override
  public InputStream openStream(long offset) throws IOException {
    if (offset < 0 || offset > size) {
      throw new IndexOutOfBoundsException("offset " + offset + " outside [0, " + size + "]");
    }
    if (casblob != null) {
      return casblob.openStream(offset);
    }
    return new ChannelSliceInputStream(ch, offset, size - offset);
  }

  @Override
  public Optional<FileSlice> rawFile() {
    return casblob == null ? Optional.of(new FileSlice(ch, 0, size)) : Optional.empty();
  }

  @Override
  public Optional<FileSlice> zstdFile() {
    return casblob != null ? Optional.of(new FileSlice(ch, 0, fileLength)) : Optional.empty();
  }

  @Override
  public void close() {
    try {
      ch.close();
    } catch (IOException ignored) {
      // read-only channel: nothing to lose
    }
  }
}
