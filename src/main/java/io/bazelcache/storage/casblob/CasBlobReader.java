package io.bazelcache.storage.casblob;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;

/**
 * Reads a casblob file through positional reads on a channel (the channel's own position is never used,
 * so several streams may read one channel at once). Streams can start at any uncompressed offset: they
 * seek to the chunk holding it and skip into that chunk only.
 */
public final class CasBlobReader {
  private final FileChannel ch;
  private final CasBlobHeader header;

  private CasBlobReader(FileChannel ch, CasBlobHeader header) {
    this.ch = ch;
    this.header = header;
  }

  /** Parses and validates the header; {@code fileLength} (or -1 to skip the check) must match it. */
  public static CasBlobReader open(FileChannel ch, long fileLength) throws IOException {
    return new CasBlobReader(ch, CasBlobHeader.read(ch, fileLength));
  }

  public CasBlobHeader header() {
    return header;
  }

  public long uncompressedSize() {
    return header.uncompressedSize();
  }

  /**
   * The uncompressed bytes from {@code offset} to the end. A corrupt chunk surfaces as a
   * {@link CasBlobFormatException} from {@code read}. Closing the stream does not close the channel.
   */
  public InputStream openStream(long offset) {
    if (offset < 0 || offset > header.uncompressedSize()) {
      throw new IndexOutOfBoundsException(
          "offset " + offset + " outside [0, " + header.uncompressedSize() + "]");
    }
    return new ChunkStream(offset);
  }

  private final class ChunkStream extends ChunkDecodingStream {
    private long nextChunk;
    private int skip;

    ChunkStream(long offset) {
      int cs = header.chunkSize();
      this.nextChunk = offset / cs;
      this.skip = (int) (offset % cs);
    }

    @Override
    protected boolean fill() throws IOException {
      if (closed) {
        throw new IOException("stream closed");
      }
      while (pos >= limit) {
        if (nextChunk >= header.numChunks()) {
          return false;
        }
        decode(nextChunk++);
        pos = Math.min(skip, limit);
        skip = 0;
      }
      return true;
    }

    private void decode(long i) throws IOException {
      int want = header.chunkLength(i);
      long clen = storedLength(header, i);
      byte[] stored = storedBuffer(header, want, clen);
      CasBlobHeader.readFully(ch, ByteBuffer.wrap(stored, 0, (int) clen), header.offsets()[(int) i]);
      decoded(header, i, want, clen);
    }

    @Override
    public void close() {
      if (!closed) {
        closed = true;
        closeDecoder();
      }
    }
  }
}
