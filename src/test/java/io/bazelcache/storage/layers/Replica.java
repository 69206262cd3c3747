package io.bazelcache.storage.layers;

import io.bazelcache.storage.disk.DiskStore;
import io.bazelcache.storage.disk.StorageMode;
import io.bazelcache.storage.s3.S3Options;
import io.bazelcache.storage.s3.S3Stats;
import io.bazelcache.storage.s3.S3Store;
import java.io.IOException;
import java.nio.file.Path;

/** One cache replica for tests: its own DiskStore and S3 client, composed with the layers. */
final class Replica implements AutoCloseable {
  final DiskStore disk;
  final S3Store s3;
  final S3Stats stats = new S3Stats();
  final S3Layers.Composed layers;
  private boolean closed;

  Replica(Path dir, S3Options s3Options, S3Layers.Options layerOptions) throws IOException {
    this.disk = DiskStore.open(dir.resolve("cache"), 1L << 30, 0,
        s3Options.zstd() ? StorageMode.ZSTD : StorageMode.UNCOMPRESSED, Long.MAX_VALUE);
    this.s3 = new S3Store(s3Options.withTempDir(dir.resolve("tmp")), stats);
    this.layers = S3Layers.compose(disk, s3, layerOptions, stats);
  }

  WriteBehindStore store() {
    return layers.store();
  }

  @Override
  public void close() throws IOException {
    if (!closed) {
      closed = true;
      layers.store().close();
    }
  }
}
