package io.bazelcache.grpc;

import com.google.protobuf.InvalidProtocolBufferException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads protobuf wire format from a message lying in several buffers (as gRPC receives it), for the
 * few hot request types this server parses itself instead of through generated message classes:
 * {@link WriteChunk} (keeps {@code data} as views of the buffers) and {@link FindMissingWire} (no
 * message object per digest). Nested messages are read with {@link #pushLimit}/{@link #popLimit}.
 */
final class WireReader {
  static final int VARINT = 0;
  static final int FIXED64 = 1;
  static final int LENGTH_DELIMITED = 2;
  static final int FIXED32 = 5;

  private final List<ByteBuffer> pieces;
  private int index; // current piece
  private int pos; // absolute position in the current piece
  private long consumed; // bytes read so far
  private long limit = Long.MAX_VALUE; // consumed may not pass this

  WireReader(List<ByteBuffer> pieces) {
    this.pieces = pieces;
    this.pos = pieces.isEmpty() ? 0 : pieces.get(0).position();
    settle();
  }

  /** Moves past exhausted (or empty) pieces. */
  private void settle() {
    while (index < pieces.size() && pos >= pieces.get(index).limit()) {
      index++;
      if (index < pieces.size()) {
        pos = pieces.get(index).position();
      }
    }
  }

  /** More bytes before the end of the input or of the current limit. */
  boolean hasMore() {
    return consumed < limit && index < pieces.size();
  }

  private byte next() throws InvalidProtocolBufferException {
    if (consumed >= limit || index >= pieces.size()) {
      throw truncated();
    }
    byte b = pieces.get(index).get(pos++);
    consumed++;
    if (pos >= pieces.get(index).limit()) {
      settle();
    }
    return b;
  }

  long varint() throws InvalidProtocolBufferException {
    long v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      byte b = next();
      v |= (long) (b & 0x7F) << shift;
      if (b >= 0) {
        return v;
      }
    }
    throw new InvalidProtocolBufferException("malformed varint");
  }

  /**
   * A tag: field number and wire type. Read as a 32-bit varint like protobuf (bits above 31 dropped);
   * field number 0 is refused.
   */
  long tag() throws InvalidProtocolBufferException {
    int tag = (int) varint();
    if ((tag >>> 3) == 0) {
      throw new InvalidProtocolBufferException("invalid field tag " + Integer.toUnsignedString(tag));
    }
    return tag & 0xFFFFFFFFL;
  }

  /** A length prefix (a 32-bit varint, like protobuf), checked against the input left. */
  int length() throws InvalidProtocolBufferException {
    int n = (int) varint();
    if (n < 0) {
      throw new InvalidProtocolBufferException("invalid length " + n);
    }
    if (n > limit - consumed) {
      throw truncated();
    }
    return n;
  }

  /** The next {@code n} bytes as read-only slices of the pieces (no copy). */
  List<ByteBuffer> take(long n) throws InvalidProtocolBufferException {
    if (n > limit - consumed) {
      throw truncated();
    }
    List<ByteBuffer> out = new ArrayList<>(n == 0 ? 0 : 2);
    while (n > 0) {
      if (index >= pieces.size()) {
        throw truncated();
      }
      ByteBuffer p = pieces.get(index);
      int k = (int) Math.min(n, p.limit() - pos);
      out.add(p.slice(pos, k).asReadOnlyBuffer());
      pos += k;
      consumed += k;
      n -= k;
      settle();
    }
    return out;
  }

  /** Copies the next {@code n} bytes into {@code dst}. */
  void read(byte[] dst, int off, int n) throws InvalidProtocolBufferException {
    if (n > limit - consumed) {
      throw truncated();
    }
    while (n > 0) {
      if (index >= pieces.size()) {
        throw truncated();
      }
      ByteBuffer p = pieces.get(index);
      int k = Math.min(n, p.limit() - pos);
      p.get(pos, dst, off, k);
      pos += k;
      consumed += k;
      off += k;
      n -= k;
      settle();
    }
  }

  void skipBytes(long n) throws InvalidProtocolBufferException {
    if (n > limit - consumed) {
      throw truncated();
    }
    while (n > 0) {
      if (index >= pieces.size()) {
        throw truncated();
      }
      int k = (int) Math.min(n, pieces.get(index).limit() - pos);
      pos += k;
      consumed += k;
      n -= k;
      settle();
    }
  }

  List<ByteBuffer> lengthDelimited() throws InvalidProtocolBufferException {
    return take(length());
  }

  /** Skips a field's value of the given wire type; groups (3, 4) are refused. */
  void skip(int wireType) throws InvalidProtocolBufferException {
    switch (wireType) {
      case VARINT -> varint();
      case FIXED64 -> skipBytes(8);
      case LENGTH_DELIMITED -> skipBytes(length());
      case FIXED32 -> skipBytes(4);
      default -> throw new InvalidProtocolBufferException("unsupported wire type " + wireType);
    }
  }

  /** Limits reading to the next {@code n} bytes; returns the limit to restore with {@link #popLimit}. */
  long pushLimit(int n) throws InvalidProtocolBufferException {
    if (n > limit - consumed) {
      throw truncated();
    }
    long old = limit;
    limit = consumed + n;
    return old;
  }

  /** Ends a nested message: all of it must have been read. */
  void popLimit(long old) throws InvalidProtocolBufferException {
    if (consumed != limit) {
      throw new InvalidProtocolBufferException("nested message not fully read");
    }
    limit = old;
  }

  /**
   * Whether gRPC handed over its receive buffers: then {@link #buffersOf} can read the message in place
   * after {@code ((Detachable) stream).detach()}.
   */
  static boolean inBuffers(java.io.InputStream stream) {
    return stream instanceof io.grpc.Detachable && stream instanceof io.grpc.KnownLength
        && stream instanceof io.grpc.HasByteBuffer hb && hb.byteBufferSupported();
  }

  /**
   * The receive buffers behind a detached gRPC message stream (views, no copy), which stay valid until
   * the stream is closed.
   */
  static List<ByteBuffer> buffersOf(java.io.InputStream owned) throws java.io.IOException {
    owned.mark(owned.available()); // marked, the stream keeps the buffers skipped over until closed
    List<ByteBuffer> pieces = new ArrayList<>();
    while (owned.available() > 0) {
      ByteBuffer b = ((io.grpc.HasByteBuffer) owned).getByteBuffer();
      if (b == null || !b.hasRemaining()) {
        // Not expected of a stream that supports buffers; copy the rest to stay correct anyway.
        pieces.add(ByteBuffer.wrap(owned.readAllBytes()));
        break;
      }
      pieces.add(b);
      long skipped = owned.skip(b.remaining());
      if (skipped != b.remaining()) {
        throw new java.io.IOException("transport buffer skipped " + skipped + " of " + b.remaining());
      }
    }
    return pieces;
  }

  /** UTF-8 bytes as a string; invalid UTF-8 is refused (a plain {@code new String} would replace it). */
  static String utf8(byte[] b, int len) throws InvalidProtocolBufferException {
    utf8Check(b, 0, len);
    return new String(b, 0, len, java.nio.charset.StandardCharsets.UTF_8);
  }

  /** Refuses bytes that are not valid UTF-8 (proto3 strings must be); ASCII is checked quickly. */
  static void utf8Check(byte[] b, int off, int len) throws InvalidProtocolBufferException {
    boolean ascii = true;
    for (int i = off; i < off + len; i++) {
      ascii &= b[i] >= 0;
    }
    if (!ascii) {
      try {
        java.nio.charset.StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(java.nio.charset.CodingErrorAction.REPORT)
            .onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPORT)
            .decode(ByteBuffer.wrap(b, off, len));
      } catch (java.nio.charset.CharacterCodingException e) {
        throw new InvalidProtocolBufferException("string field is not valid UTF-8");
      }
    }
  }

  static InvalidProtocolBufferException truncated() {
    return new InvalidProtocolBufferException("message ends in the middle of a field");
  }
}
