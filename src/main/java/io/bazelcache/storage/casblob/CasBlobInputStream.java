package io.bazelcache.storage.casblob;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;

/**
 * Decodes a casblob arriving as a stream (e.g. an object downloaded from S3) into its uncompressed
 * bytes, checking the header, every chunk offset against the bytes actually seen, every chunk's
 * decompressed length, and that nothing follows the last chunk. Any inconsistency is a
 * {@link CasBlobFormatException}. The caller still hashes the output against the key.
 */
public final class CasBlobInputStream extends ChunkDecodingStream {
  private final InputStream in;
  private CasBlobHeader header;
  private long position; // bytes of the casblob consumed so far
  private int nextChunk;

  public CasBlobInputStream(InputStream in) {
    this.in = in;
  }

  /** The header, once the first byte has been read (or after {@link #readHeader()}). */
  public CasBlobHeader readHeader() throws IOException {
    if (header != null) {
      return header;
    }
    byte[] fixed = readExactly(CasBlobHeader.FIXED_BYTES);
    long numOffsets = CasBlobHeader.checkedNumOffsets(ByteBuffer.wrap(fixed));
    byte[] table = readExactly((int) (8 * numOffsets));
    byte[] all = new byte[fixed.length + table.length];
    System.arraycopy(fixed, 0, all, 0, fixed.length);
    System.arraycopy(table, 0, all, fixed.length, table.length);
    header = CasBlobHeader.parse(ByteBuffer.wrap(all), -1);
    return header;
  }

  private byte[] readExactly(int n) throws IOException {
    byte[] b = in.readNBytes(n);
    if (b.length != n) {
      throw new CasBlobFormatException("casblob stream ended at byte " + (position + b.length));
    }
    position += n;
    return b;
  }

  @Override
  protected boolean fill() throws IOException {
    if (closed) {
      throw new IOException("stream closed");
    }
    readHeader();
    while (pos >= limit) {
      if (nextChunk >= header.numChunks()) {
        if (in.read() != -1) {
          throw new CasBlobFormatException("bytes after the last chunk");
        }
        return false;
      }
      decodeChunk(nextChunk++);
    }
    return true;
  }

  private void decodeChunk(int i) throws IOException {
    long[] offsets = header.offsets();
    if (offsets[i] != position) {
      throw new CasBlobFormatException("chunk " + i + " at " + position + ", header says " + offsets[i]);
    }
    int want = header.chunkLength(i);
    long clen = storedLength(header, i);
    if (in.readNBytes(storedBuffer(header, want, clen), 0, (int) clen) != clen) {
      throw new CasBlobFormatException("casblob stream ended in chunk " + i);
    }
    decoded(header, i, want, clen);
    position += clen;
  }

  @Override
  public void close() throws IOException {
    if (!closed) {
      closed = true;
      closeDecoder();
      in.close();
    }
  }
}
