package io.bazelcache.grpc;

import com.github.luben.zstd.EndDirective;
import com.github.luben.zstd.ZstdCompressCtx;
import com.github.luben.zstd.ZstdDecompressCtx;
import com.github.luben.zstd.ZstdException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;

/** Streaming zstd helpers for the gRPC transport (compressed-blobs and batch ZSTD items). */
final class Zstd {
  private Zstd() {}

  /** Receives decompressed bytes. */
  interface Sink {
    void accept(ByteBuffer data) throws IOException;
  }

  /**
   * Push-style decompression of a zstd stream (one or more frames) arriving in pieces. Corrupt input
   * is an {@link IllegalArgumentException} (INVALID_ARGUMENT).
   */
  static final class Decompressor implements AutoCloseable {
    private final ZstdDecompressCtx ctx = new ZstdDecompressCtx();
    private final ByteBuffer out = ByteBuffer.allocate(256 * 1024);
    private ByteBuffer scratch;
    private boolean frameComplete = true;
    private boolean closed;

    void feed(ByteBuffer in, Sink sink) throws IOException {
      if (!in.isDirect() && !in.hasArray()) {
        // Read-only heap buffers (e.g. ByteString views) cannot be handed to zstd-jni: copy in pieces.
        if (scratch == null) {
          scratch = ByteBuffer.allocate(256 * 1024);
        }
        while (in.hasRemaining()) {
          int n = Math.min(scratch.capacity(), in.remaining());
          scratch.clear();
          scratch.put(in.slice(in.position(), n)).flip();
          in.position(in.position() + n);
          feedBuffer(scratch, sink);
        }
        return;
      }
      feedBuffer(in, sink);
    }

    private void feedBuffer(ByteBuffer in, Sink sink) throws IOException {
      while (true) {
        out.clear();
        int inBefore = in.position();
        boolean done;
        try {
          done = ctx.decompressByteBufferStream(out, in);
        } catch (ZstdException e) {
          throw new IllegalArgumentException("corrupt zstd data: " + e.getMessage());
        }
        boolean full = !out.hasRemaining();
        out.flip();
        int produced = out.remaining();
        if (produced > 0) {
          sink.accept(out);
        }
        // "done" is true when a frame ended and all its output was flushed. A later call that finds
        // no input and produces nothing reports false (no new frame yet) without changing that.
        if (done) {
          frameComplete = true;
        } else if (in.position() != inBefore || produced > 0) {
          frameComplete = false;
        }
        if (!in.hasRemaining() && !full) {
          return;
        }
      }
    }

    /** True if the data fed so far ends at a frame boundary. */
    boolean atFrameBoundary() {
      return frameComplete;
    }

    @Override
    public void close() {
      if (!closed) {
        closed = true;
        ctx.close();
      }
    }
  }

  /** Decompresses a whole buffer, refusing output larger than {@code expectedSize}. */
  static byte[] decompress(ByteBuffer compressed, long expectedSize) throws IOException {
    if (expectedSize > Integer.MAX_VALUE - 16) {
      throw new IllegalArgumentException("blob too large for a batch");
    }
    byte[] result = new byte[(int) expectedSize];
    int[] pos = {0};
    try (Decompressor d = new Decompressor()) {
      d.feed(compressed, data -> {
        if (pos[0] + data.remaining() > result.length) {
          throw new IllegalArgumentException(
              "zstd data decompresses to more than the digest's " + expectedSize + " bytes");
        }
        int n = data.remaining();
        data.get(result, pos[0], n);
        pos[0] += n;
      });
      if (!d.atFrameBoundary()) {
        throw new IllegalArgumentException("truncated zstd data");
      }
    }
    if (pos[0] != result.length) {
      throw new IllegalArgumentException(
          "zstd data decompresses to " + pos[0] + " bytes, digest says " + expectedSize);
    }
    return result;
  }

  /** Compresses a small array in one go (level 1). */
  static byte[] compress(byte[] data) {
    try (ZstdCompressCtx ctx = new ZstdCompressCtx()) {
      ctx.setLevel(1);
      return ctx.compress(data);
    }
  }

  /**
   * Compresses a stream on the fly, handing out compressed chunks of about {@code chunkSize} bytes.
   * Not thread-safe; close it when done.
   */
  static final class StreamCompressor implements AutoCloseable {
    private final ZstdCompressCtx ctx = new ZstdCompressCtx();
    private final InputStream in;
    private final byte[] inBuf;
    private final ByteBuffer src;
    private final int chunkSize;
    private boolean inputDone;
    private boolean finished;

    StreamCompressor(InputStream in, int chunkSize) {
      this.in = in;
      this.chunkSize = chunkSize;
      this.inBuf = new byte[256 * 1024];
      this.src = ByteBuffer.wrap(inBuf).limit(0);
      ctx.setLevel(1);
    }

    /** The next compressed chunk, or null at the end. */
    ByteBuffer next() throws IOException {
      if (finished) {
        return null;
      }
      ByteBuffer dst = ByteBuffer.allocate(chunkSize);
      while (dst.hasRemaining()) {
        if (!src.hasRemaining() && !inputDone) {
          int n = in.readNBytes(inBuf, 0, inBuf.length);
          src.clear().limit(n);
          if (n == 0) {
            inputDone = true;
          }
        }
        if (inputDone) {
          boolean done = ctx.compressByteBufferStream(dst, src, EndDirective.END);
          if (done) {
            finished = true;
            break;
          }
        } else {
          ctx.compressByteBufferStream(dst, src, EndDirective.CONTINUE);
        }
      }
      dst.flip();
      return dst;
    }

    @Override
    public void close() throws IOException {
      ctx.close();
      in.close();
    }
  }
}
