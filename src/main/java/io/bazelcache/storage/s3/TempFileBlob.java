package io.bazelcache.storage.s3;

import io.bazelcache.storage.Blob;
import io.bazelcache.storage.ChannelSliceInputStream;
import io.bazelcache.storage.FileSlice;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Optional;

/** A blob held in a private temporary file, which is deleted when the blob is closed. */
final class TempFileBlob implements Blob {
  private final Path path;
  private final FileChannel ch;
  private final long size;
  private boolean closed;

  TempFileBlob(Path path, long size) throws IOException {
    this.path = path;
    this.ch = FileChannel.open(path, StandardOpenOption.READ);
    this.size = size;
  }

  @Override
  public long size() {
    return size;
  }

  @Override
  public InputStream openStream(long offset) {
    if (offset < 0 || offset > size) {
      throw new IndexOutOfBoundsException("offset " + offset + " outside [0, " + size + "]");
    }
    return new ChannelSliceInputStream(ch, offset, size - offset);
  }

  @Override
  public Optional<FileSlice> rawFile() {
    return Optional.of(new FileSlice(ch, 0, size));
  }

  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    try {
      ch.close();
    } catch (IOException ignored) {
      // nothing to do: the file is deleted below
    }
    try {
      Files.deleteIfExists(path);
    } catch (IOException ignored) {
      // best effort; the temp directory is cleaned on restart
    }
  }
}
