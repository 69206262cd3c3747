/**
 * The shared S3/MinIO tier.
 *
 * <p>{@link io.bazelcache.storage.s3.S3Store} reads and writes bazel-remote's object layout, so a bucket
 * can be shared with (or migrated from) bazel-remote:
 *
 * <ul>
 *   <li>{@code [prefix/]cas.v2/<hh>/<hash>}: CAS in {@code storage_mode: zstd}, casblob format (a zstd
 *       skippable-frame header with the chunk offsets, then independent 1 MiB zstd frames);
 *   <li>{@code [prefix/]cas/<hh>/<hash>}: CAS in {@code storage_mode: uncompressed}, raw bytes;
 *   <li>{@code [prefix/]ac/<hh>/<hash>}: action cache entries, raw;
 *   <li>{@code [prefix/]raw/<hh>/<hash>}: HTTP AC entries stored without validation, raw.
 * </ul>
 *
 * <p>BLAKE3 entries, which bazel-remote does not have, get an extra segment after the prefix:
 * {@code [prefix/]blake3/cas.v2/<hh>/<hash>}, {@code [prefix/]blake3/ac/<hh>/<hash>}, ... so a BLAKE3
 * hash can never be read as the SHA-256 entry with the same hex string (and bazel-remote never sees
 * them). The prefix is joined like Go's {@code path.Join}.
 *
 * <p>The layers that put S3 behind the local disk store are in {@link io.bazelcache.storage.layers}:
 * see {@link io.bazelcache.storage.layers.S3Layers}. Counters for metrics are in
 * {@link io.bazelcache.storage.s3.S3Stats}; configuration is mapped by
 * {@link io.bazelcache.storage.s3.S3Config}.
 */
package io.bazelcache.storage.s3;
