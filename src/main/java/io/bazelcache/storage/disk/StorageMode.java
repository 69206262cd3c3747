package io.bazelcache.storage.disk;

/**
 * How the disk store keeps CAS blobs (bazel-remote's {@code storage_mode}; parsed by the configuration and
 * mapped here in {@code CacheServer}). AC and RAW are always raw.
 */
public enum StorageMode {
  /** CAS blobs in the casblob format: 1 MiB chunks, each an independent zstd frame (the default). */
  ZSTD,
  /** CAS blobs as their raw bytes. */
  UNCOMPRESSED
}
