package io.bazelcache.storage.casblob;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;

/**
 * The header of a casblob file (bazel-remote's compressed CAS format). All integers little-endian:
 *
 * <pre>
 * u32 0x184D2A50         zstd skippable-frame magic
 * u32 frameSize          = 8 + 1 + 4 + 8 + 8 * numOffsets (bytes after this field)
 * i64 uncompressedSize
 * u8  compression        0 = identity, 1 = zstd
 * u32 chunkSize
 * i64 numOffsets         = number of chunks + 1
 * i64[numOffsets]        file offset of each chunk, then the total file size
 * </pre>
 *
 * followed by the chunks, each an independent zstd frame (or raw bytes for identity).
 */
public record CasBlobHeader(long uncompressedSize, int compression, int chunkSize, long[] offsets) {

  public static final int MAGIC = 0x184D2A50;
  public static final int COMPRESSION_IDENTITY = 0;
  public static final int COMPRESSION_ZSTD = 1;
  public static final int DEFAULT_CHUNK_SIZE = 1024 * 1024;

  /** Bytes before the offsets table: magic, frameSize, uncompressedSize, compression, chunkSize, numOffsets. */
  static final int FIXED_BYTES = 4 + 4 + 8 + 1 + 4 + 8;

  /** Largest chunk size accepted when reading (guards allocations against a corrupt header). */
  static final int MAX_CHUNK_SIZE = 64 * 1024 * 1024;

  /** Number of chunks for {@code size} uncompressed bytes. */
  public static long numChunks(long size, int chunkSize) {
    return (size + chunkSize - 1) / chunkSize;
  }

  /** Total header length in bytes for {@code size} uncompressed bytes. */
  public static long headerLength(long size, int chunkSize) {
    return FIXED_BYTES + 8L * (numChunks(size, chunkSize) + 1);
  }

  public long numChunks() {
    return offsets.length - 1;
  }

  public long headerLength() {
    return FIXED_BYTES + 8L * offsets.length;
  }

  /** Total file length, as recorded in the header. */
  public long fileLength() {
    return offsets[offsets.length - 1];
  }

  /** Uncompressed length of chunk {@code i}. */
  public int chunkLength(long i) {
    return (int) Math.min(chunkSize, uncompressedSize - i * chunkSize);
  }

  /** Encodes the header. */
  public ByteBuffer encode() {
    long frameSize = 8 + 1 + 4 + 8 + 8L * offsets.length;
    ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(headerLength())).order(ByteOrder.LITTLE_ENDIAN);
    b.putInt(MAGIC);
    b.putInt(Math.toIntExact(frameSize));
    b.putLong(uncompressedSize);
    b.put((byte) compression);
    b.putInt(chunkSize);
    b.putLong(offsets.length);
    for (long o : offsets) {
      b.putLong(o);
    }
    return b.flip();
  }

  /**
   * Reads and validates the header at the start of {@code ch}: the magic, field consistency, offsets
   * strictly increasing from the end of the header, and (when {@code fileLength >= 0}) the final offset
   * equal to the file length. Throws {@link CasBlobFormatException} for anything malformed.
   */
  public static CasBlobHeader read(FileChannel ch, long fileLength) throws IOException {
    ByteBuffer fixed = ByteBuffer.allocate(FIXED_BYTES).order(ByteOrder.LITTLE_ENDIAN);
    readFully(ch, fixed, 0);
    long numOffsets = checkedNumOffsets(fixed.flip());
    ByteBuffer all = ByteBuffer.allocate((int) (FIXED_BYTES + 8 * numOffsets));
    readFully(ch, all, 0);
    return parse(all.flip(), fileLength);
  }

  /**
   * The number of offsets announced by the fixed part of a header ({@value #FIXED_BYTES} bytes at the
   * buffer's position), after the checks that make it safe to allocate the offsets table.
   */
  static long checkedNumOffsets(ByteBuffer fixed) throws CasBlobFormatException {
    ByteBuffer b = fixed.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    int base = b.position();
    int magic = b.getInt(base);
    if (magic != MAGIC) {
      throw new CasBlobFormatException("bad magic 0x" + Integer.toHexString(magic));
    }
    long size = b.getLong(base + 8);
    int chunkSize = b.getInt(base + 17);
    long numOffsets = b.getLong(base + 21);
    if (size <= 0) {
      throw new CasBlobFormatException("bad uncompressed size " + size);
    }
    if (chunkSize <= 0 || chunkSize > MAX_CHUNK_SIZE) {
      throw new CasBlobFormatException("bad chunk size " + chunkSize);
    }
    if (numOffsets != numChunks(size, chunkSize) + 1) {
      throw new CasBlobFormatException(
          "numOffsets " + numOffsets + " does not match size " + size + " / chunk size " + chunkSize);
    }
    if (numOffsets > Integer.MAX_VALUE / 8 - FIXED_BYTES) {
      throw new CasBlobFormatException("too many chunks: " + numOffsets);
    }
    return numOffsets;
  }

  /**
   * Parses and validates a complete header held in {@code b} (from its position); see
   * {@link #read(FileChannel, long)} for the checks.
   */
  public static CasBlobHeader parse(ByteBuffer b, long fileLength) throws CasBlobFormatException {
    if (b.remaining() < FIXED_BYTES) {
      throw new CasBlobFormatException("casblob header truncated");
    }
    long numOffsets = checkedNumOffsets(b);
    ByteBuffer h = b.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    if (h.remaining() < FIXED_BYTES + 8 * numOffsets) {
      throw new CasBlobFormatException("casblob header truncated");
    }
    h.getInt(); // magic, checked
    long frameSize = Integer.toUnsignedLong(h.getInt());
    long size = h.getLong();
    int compression = h.get() & 0xff;
    int chunkSize = h.getInt();
    h.getLong(); // numOffsets, checked
    if (compression != COMPRESSION_IDENTITY && compression != COMPRESSION_ZSTD) {
      throw new CasBlobFormatException("unknown compression " + compression);
    }
    if (frameSize != 8 + 1 + 4 + 8 + 8 * numOffsets) {
      throw new CasBlobFormatException("bad frame size " + frameSize);
    }
    long[] offsets = new long[(int) numOffsets];
    long headerLength = FIXED_BYTES + 8 * numOffsets;
    long prev = headerLength;
    for (int i = 0; i < offsets.length; i++) {
      offsets[i] = h.getLong();
      if (i == 0 ? offsets[i] != headerLength : offsets[i] <= prev) {
        throw new CasBlobFormatException("bad offset #" + i + ": " + offsets[i]);
      }
      prev = offsets[i];
    }
    if (fileLength >= 0 && offsets[offsets.length - 1] != fileLength) {
      throw new CasBlobFormatException(
          "header says " + offsets[offsets.length - 1] + " bytes, file has " + fileLength);
    }
    return new CasBlobHeader(size, compression, chunkSize, offsets);
  }

  static void readFully(FileChannel ch, ByteBuffer dst, long position) throws IOException {
    long pos = position;
    while (dst.hasRemaining()) {
      int n = ch.read(dst, pos);
      if (n < 0) {
        throw new EOFException("casblob truncated at " + pos);
      }
      pos += n;
    }
  }
}
