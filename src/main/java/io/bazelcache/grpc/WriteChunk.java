package io.bazelcache.grpc;

import com.google.bytestream.ByteStreamProto.WriteRequest;
import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import io.grpc.Detachable;
import io.grpc.HasByteBuffer;
import io.grpc.KnownLength;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * One {@code google.bytestream.WriteRequest} as the server receives it: the scalar fields, and {@code
 * data} as read-only views of the transport's receive buffers rather than a copy. A ByteStream upload
 * moves nearly all of its bytes through that one field, and protobuf's own parser (4.x) copies every
 * {@code bytes} field of a message that lies in more than one buffer, which a gRPC message of more than
 * one HTTP/2 frame always does.
 *
 * <p>The views stay valid until {@link #close()}, which gives the buffers back to the transport; the
 * receiver closes each chunk once its bytes are written.
 */
final class WriteChunk implements AutoCloseable {
  private final String resourceName;
  private final long writeOffset;
  private final boolean finishWrite;
  private final List<ByteBuffer> data;
  private final long dataSize;
  private InputStream owner; // the transport buffers behind data, or null

  WriteChunk(String resourceName, long writeOffset, boolean finishWrite, List<ByteBuffer> data,
      InputStream owner) {
    this.resourceName = resourceName;
    this.writeOffset = writeOffset;
    this.finishWrite = finishWrite;
    this.data = data;
    long n = 0;
    for (ByteBuffer b : data) {
      n += b.remaining();
    }
    this.dataSize = n;
    this.owner = owner;
  }

  static WriteChunk of(WriteRequest r) {
    return new WriteChunk(r.getResourceName(), r.getWriteOffset(), r.getFinishWrite(),
        r.getData().asReadOnlyByteBufferList(), null);
  }

  String resourceName() {
    return resourceName;
  }

  long writeOffset() {
    return writeOffset;
  }

  boolean finishWrite() {
    return finishWrite;
  }

  /** Read-only views; each reader should use duplicates if it needs its own positions. */
  List<ByteBuffer> data() {
    return data;
  }

  long dataSize() {
    return dataSize;
  }

  WriteRequest toRequest() {
    ByteString bytes = ByteString.EMPTY;
    for (ByteBuffer b : data) {
      bytes = bytes.concat(ByteString.copyFrom(b.duplicate()));
    }
    return WriteRequest.newBuilder().setResourceName(resourceName).setWriteOffset(writeOffset)
        .setFinishWrite(finishWrite).setData(bytes).build();
  }

  /** Gives the transport buffers back; {@link #data()} must not be used afterwards. Idempotent. */
  @Override
  public synchronized void close() {
    if (owner != null) {
      try {
        owner.close();
      } catch (IOException | RuntimeException ignored) {
        // releasing only
      }
      owner = null;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Parsing

  private static final int RESOURCE_NAME = 1;
  private static final int WRITE_OFFSET = 2;
  private static final int FINISH_WRITE = 3;
  private static final int DATA = 10;

  private static final int VARINT = 0;
  private static final int FIXED64 = 1;
  private static final int LENGTH_DELIMITED = 2;
  private static final int FIXED32 = 5;

  /**
   * Parses a serialized WriteRequest lying in {@code pieces} (in order) without copying {@code data}.
   * Same result as {@code WriteRequest.parseFrom}: fields in any order, the last occurrence of a field
   * wins, a known field number with another wire type and unknown fields are skipped, {@code
   * resource_name} must be valid UTF-8. Groups (wire types 3 and 4, not used by proto3) are refused.
   */
  static WriteChunk parse(List<ByteBuffer> pieces, InputStream owner)
      throws InvalidProtocolBufferException {
    Cursor c = new Cursor(pieces);
    String name = "";
    long offset = 0;
    boolean finish = false;
    List<ByteBuffer> data = List.of();
    while (c.hasMore()) {
      long tag = c.varint();
      long field = tag >>> 3;
      int wireType = (int) (tag & 7);
      if (field <= 0 || field > 0x1FFFFFFFL) {
        throw new InvalidProtocolBufferException("invalid field tag " + tag);
      }
      if (field == RESOURCE_NAME && wireType == LENGTH_DELIMITED) {
        name = utf8(c.lengthDelimited());
      } else if (field == WRITE_OFFSET && wireType == VARINT) {
        offset = c.varint();
      } else if (field == FINISH_WRITE && wireType == VARINT) {
        finish = c.varint() != 0;
      } else if (field == DATA && wireType == LENGTH_DELIMITED) {
        data = c.lengthDelimited();
      } else {
        c.skip(wireType);
      }
    }
    return new WriteChunk(name, offset, finish, data, owner);
  }

  private static String utf8(List<ByteBuffer> pieces) throws InvalidProtocolBufferException {
    int n = 0;
    for (ByteBuffer b : pieces) {
      n += b.remaining();
    }
    ByteBuffer all = ByteBuffer.allocate(n);
    for (ByteBuffer b : pieces) {
      all.put(b.duplicate());
    }
    all.flip();
    try {
      return StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(all).toString();
    } catch (CharacterCodingException e) {
      throw new InvalidProtocolBufferException("resource_name is not valid UTF-8");
    }
  }

  /** A read position across the pieces. */
  private static final class Cursor {
    private final List<ByteBuffer> pieces;
    private int index; // current piece
    private int pos; // absolute position in the current piece

    Cursor(List<ByteBuffer> pieces) {
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

    boolean hasMore() {
      return index < pieces.size();
    }

    private byte next() throws InvalidProtocolBufferException {
      if (index >= pieces.size()) {
        throw truncated();
      }
      byte b = pieces.get(index).get(pos++);
      settle();
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

    /** The next {@code n} bytes as read-only slices of the pieces. */
    private List<ByteBuffer> take(long n) throws InvalidProtocolBufferException {
      List<ByteBuffer> out = new ArrayList<>(n == 0 ? 0 : 4);
      while (n > 0) {
        if (index >= pieces.size()) {
          throw truncated();
        }
        ByteBuffer p = pieces.get(index);
        int k = (int) Math.min(n, p.limit() - pos);
        out.add(p.slice(pos, k).asReadOnlyBuffer());
        pos += k;
        n -= k;
        settle();
      }
      return out;
    }

    List<ByteBuffer> lengthDelimited() throws InvalidProtocolBufferException {
      long n = varint();
      if (n < 0 || n > Integer.MAX_VALUE) {
        throw new InvalidProtocolBufferException("invalid length " + n);
      }
      return take(n);
    }

    void skip(int wireType) throws InvalidProtocolBufferException {
      switch (wireType) {
        case VARINT -> varint();
        case FIXED64 -> take(8);
        case LENGTH_DELIMITED -> lengthDelimited();
        case FIXED32 -> take(4);
        default -> throw new InvalidProtocolBufferException("unsupported wire type " + wireType);
      }
    }

    private static InvalidProtocolBufferException truncated() {
      return new InvalidProtocolBufferException("message ends in the middle of a field");
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Marshalling

  /**
   * Parses in place when the transport hands over its buffers (gRPC's Netty transport does), else from
   * a copy. Serializing (only used by in-process clients) writes an ordinary WriteRequest.
   */
  static final MethodDescriptor.Marshaller<WriteChunk> MARSHALLER = new MethodDescriptor.Marshaller<>() {
    @Override
    public InputStream stream(WriteChunk value) {
      return value.toRequest().toByteString().newInput();
    }

    @Override
    public WriteChunk parse(InputStream stream) {
      try {
        if (stream instanceof Detachable d && stream instanceof HasByteBuffer hb
            && stream instanceof KnownLength && hb.byteBufferSupported()) {
          return parseInPlace(d.detach());
        }
        return WriteChunk.of(WriteRequest.parseFrom(stream));
      } catch (InvalidProtocolBufferException e) {
        throw Status.INVALID_ARGUMENT.withDescription("invalid WriteRequest: " + e.getMessage())
            .withCause(e).asRuntimeException();
      } catch (IOException e) {
        throw Status.INTERNAL.withDescription("cannot read the request").withCause(e)
            .asRuntimeException();
      }
    }
  };

  private static WriteChunk parseInPlace(InputStream owned) throws IOException {
    boolean kept = false;
    try {
      owned.mark(owned.available()); // marked, the stream keeps the buffers skipped over until closed
      List<ByteBuffer> pieces = new ArrayList<>();
      while (owned.available() > 0) {
        ByteBuffer b = ((HasByteBuffer) owned).getByteBuffer();
        if (b == null || !b.hasRemaining()) {
          // Not expected of a stream that supports buffers; copy the rest to stay correct anyway.
          pieces.add(ByteBuffer.wrap(owned.readAllBytes()));
          break;
        }
        pieces.add(b);
        long skipped = owned.skip(b.remaining());
        if (skipped != b.remaining()) {
          throw new IOException("transport buffer skipped " + skipped + " of " + b.remaining());
        }
      }
      WriteChunk chunk = parse(pieces, owned);
      kept = true;
      return chunk;
    } finally {
      if (!kept) {
        owned.close();
      }
    }
  }

  /** For tests: a chunk parsed from copies of {@code serialized} in pieces of {@code pieceSize}. */
  static WriteChunk parseInPieces(byte[] serialized, int pieceSize)
      throws InvalidProtocolBufferException {
    List<ByteBuffer> pieces = new ArrayList<>();
    for (int p = 0; p < serialized.length; p += pieceSize) {
      int n = Math.min(pieceSize, serialized.length - p);
      ByteBuffer b = ByteBuffer.allocateDirect(n);
      b.put(serialized, p, n).flip();
      pieces.add(b);
    }
    return parse(pieces, null);
  }
}
