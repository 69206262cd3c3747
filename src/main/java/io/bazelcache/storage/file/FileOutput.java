package io.bazelcache.storage.file;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;

/**
 * Where a new file's bytes go while it is written: appended in order after a reserved region at its start,
 * which is written once, last (a casblob's chunk table is known only when all chunks are written).
 *
 * <p>Two ways: {@link #buffered} writes through the page cache, {@link #direct} with {@code O_DIRECT}
 * from aligned staging buffers. A large upload written through the page cache costs the CPU a copy into
 * the cache plus its writeback, and its fsync waits for all of that; written directly it costs one copy
 * into a staging buffer and the disk's own transfer. Not thread-safe: one writer at a time (handing the
 * output from thread to thread with a happens-before edge is fine).
 */
public abstract sealed class FileOutput implements Closeable permits FileOutput.Buffered, DirectOutput {
  /** Bytes at the file's start that appends skip, for {@link #writeReserved}. */
  protected final long reserved;

  FileOutput(long reserved) {
    if (reserved < 0) {
      throw new IllegalArgumentException("negative reserved length " + reserved);
    }
    this.reserved = reserved;
  }

  /** Through the page cache, with {@code ch}'s positional and gathering writes. Closing leaves {@code ch} open. */
  public static FileOutput buffered(FileChannel ch, long reserved) {
    return new Buffered(ch, reserved);
  }

  /**
   * With {@code O_DIRECT}, for the new, empty file at {@code file} that {@code ch} has open for writing
   * ({@code ch} is used to set the final length). Closing closes the direct channel, not {@code ch}.
   *
   * @throws IOException if the file system does not take direct I/O
   * @throws IllegalArgumentException if {@code reserved} is over {@link #MAX_DIRECT_RESERVED}
   */
  public static FileOutput direct(Path file, FileChannel ch, long reserved) throws IOException {
    return DirectOutput.open(file, ch, reserved);
  }

  /**
   * Writes a small file at {@code probe} (which must not exist) with a {@link #direct} output, reads it
   * back and deletes it: where opening with {@code O_DIRECT} succeeds but the writes fail, this finds out
   * before an upload does.
   *
   * @throws IOException if direct I/O does not work there (the message says how)
   */
  public static void checkDirect(Path probe) throws IOException {
    byte[] expected = new byte[100 + 8192 + 17];
    for (int i = 0; i < expected.length; i++) {
      expected[i] = (byte) (i * 31 + 7);
    }
    try {
      try (FileChannel ch = FileChannel.open(probe, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
          FileOutput out = direct(probe, ch, 100)) {
        out.append(ByteBuffer.wrap(expected, 100, expected.length - 100));
        out.writeReserved(ByteBuffer.wrap(expected, 0, 100));
        out.finish();
        ch.force(true);
      }
      if (!Arrays.equals(Files.readAllBytes(probe), expected)) {
        throw new IOException("a file written with O_DIRECT read back different at " + probe);
      }
    } finally {
      Files.deleteIfExists(probe);
    }
  }

  /** The largest reserved region a {@link #direct} output takes (256 KiB: a casblob header of 32 GiB). */
  public static final long MAX_DIRECT_RESERVED = DirectOutput.MAX_RESERVED;

  /** Appends every remaining byte of {@code srcs[off, off + len)}, in order; leaves them consumed. */
  public abstract void append(ByteBuffer[] srcs, int off, int len) throws IOException;

  public final void append(ByteBuffer src) throws IOException {
    append(new ByteBuffer[] {src}, 0, 1);
  }

  /**
   * Writes the reserved region from its start; {@code src} holds at most {@link #reserved} bytes. Bytes
   * of the region never written are zeros.
   */
  public abstract void writeReserved(ByteBuffer src) throws IOException;

  /** The file's length once finished: the reserved region plus every byte appended. */
  public abstract long length();

  /**
   * Puts every byte written into the file (it does not force them to the disk). Idempotent. Afterwards,
   * {@code append} and {@code writeReserved} throw {@link IllegalStateException}.
   */
  public abstract void finish() throws IOException;

  /** Releases buffers and channels of its own; then writing throws {@link IllegalStateException}. Idempotent. */
  @Override
  public abstract void close() throws IOException;

  final void checkReserved(ByteBuffer src) {
    if (src.remaining() > reserved) {
      throw new IllegalArgumentException(src.remaining() + " bytes for a reserved region of " + reserved);
    }
  }

  /** Linux takes at most 1024 buffers per gathering write. */
  static final int MAX_IOV = 512;

  static final class Buffered extends FileOutput {
    private final FileChannel ch;
    private long pos;
    private boolean finished;
    private boolean closed;

    private void ensureWritable() {
      if (closed || finished) {
        throw new IllegalStateException("output " + (closed ? "closed" : "finished"));
      }
    }

    Buffered(FileChannel ch, long reserved) {
      super(reserved);
      this.ch = ch;
      this.pos = reserved;
    }

    @Override
    public void append(ByteBuffer[] srcs, int off, int len) throws IOException {
      ensureWritable();
      int end = off + len;
      if (len == 1) {
        ByteBuffer b = srcs[off];
        while (b.hasRemaining()) {
          pos += ch.write(b, pos);
        }
        return;
      }
      ch.position(pos);
      for (int first = off; first < end; ) {
        pos += ch.write(srcs, first, Math.min(end - first, MAX_IOV));
        while (first < end && !srcs[first].hasRemaining()) {
          first++;
        }
      }
    }

    @Override
    public void writeReserved(ByteBuffer src) throws IOException {
      ensureWritable();
      checkReserved(src);
      long at = 0;
      while (src.hasRemaining()) {
        at += ch.write(src, at);
      }
    }

    @Override
    public long length() {
      return pos;
    }

    @Override
    public void finish() {
      if (!finished) {
        ensureWritable();
        finished = true; // every write went straight to the channel
      }
    }

    @Override
    public void close() {
      closed = true; // the channel is the caller's
    }
  }
}
