package io.bazelcache.storage;

/**
 * Sizes as reported by {@code /status} (bazel-remote's field names): bytes on disk (rounded up to 4 KiB
 * blocks), logical bytes, bytes reserved by uploads in flight, the limit, and the number of entries.
 */
public record StoreStats(
    long currentSize, long uncompressedSize, long reservedSize, long maxSize, long numFiles) {}
