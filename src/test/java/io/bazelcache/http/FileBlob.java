package io.bazelcache.http;

import io.bazelcache.storage.Blob;
import io.bazelcache.storage.FileSlice;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;

/** A test Blob over real files: the raw content, and optionally a zstd copy, both offered for zero-copy. */
final class FileBlob implements Blob {
  private final FileChannel raw;
  private final FileChannel zstd;
  private final long size;
  final AtomicInteger closes = new AtomicInteger();
  volatile boolean streamOpened;

  FileBlob(Path rawFile, Path zstdFile) {
    try {
      raw = FileChannel.open(rawFile, StandardOpenOption.READ);
      size = raw.size();
      zstd = zstdFile == null ? null : FileChannel.open(zstdFile, StandardOpenOption.READ);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  @Override
  public long size() {
    return size;
  }

  @Override
  public InputStream openStream(long offset) throws IOException {
    streamOpened = true;
    return Channels.newInputStream(raw.position(offset));
  }

  @Override
  public Optional<FileSlice> rawFile() {
    return Optional.of(new FileSlice(raw, 0, size));
  }

  @Override
  public Optional<FileSlice> zstdFile() {
    if (zstd == null) {
      return Optional.empty();
    }
    try {
      return Optional.of(new FileSlice(zstd, 0, zstd.size()));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  @Override
  public void close() {
    closes.incrementAndGet();
    try {
      raw.close();
      if (zstd != null) {
        zstd.close();
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
