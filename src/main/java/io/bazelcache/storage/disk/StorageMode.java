package io.bazelcache.storage.disk;

import java.util.Locale;

/** How the disk store keeps CAS blobs (bazel-remote's {@code storage_mode}). AC and RAW are always raw. */
public enum StorageMode {
  /** CAS blobs in the casblob format: 1 MiB chunks, each an independent zstd frame (the default). */
  ZSTD,
  /** CAS blobs as their raw bytes. */
  UNCOMPRESSED;

  /** Parses {@code zstd} or {@code uncompressed} (case-insensitive). */
  public static StorageMode fromName(String name) {
    return switch (name.toLowerCase(Locale.ROOT)) {
      case "zstd" -> ZSTD;
      case "uncompressed" -> UNCOMPRESSED;
      default -> throw new IllegalArgumentException(
          "unknown storage_mode \"" + name + "\": want zstd or uncompressed");
    };
  }
}
