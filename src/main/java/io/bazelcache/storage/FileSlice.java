package io.bazelcache.storage;

import java.nio.channels.FileChannel;

/**
 * A region of an open file that a transport may send without copying (sendfile). The channel belongs to
 * the {@link Blob} it came from and is closed with it.
 */
public record FileSlice(FileChannel channel, long position, long count) {}
