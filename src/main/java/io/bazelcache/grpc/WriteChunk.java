package io.bazelcache.grpc;

import com.google.bytestream.ByteStreamProto.WriteRequest;
import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import io.grpc.Detachable;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
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

  private static final int VARINT = WireReader.VARINT;
  private static final int LENGTH_DELIMITED = WireReader.LENGTH_DELIMITED;

  /**
   * Parses a serialized WriteRequest lying in {@code pieces} (in order) without copying {@code data}.
   * Same result as {@code WriteRequest.parseFrom}: fields in any order, the last occurrence of a field
   * wins, a known field number with another wire type and unknown fields are skipped, {@code
   * resource_name} must be valid UTF-8. Groups (wire types 3 and 4, not used by proto3) are refused.
   */
  static WriteChunk parse(List<ByteBuffer> pieces, InputStream owner)
      throws InvalidProtocolBufferException {
    WireReader c = new WireReader(pieces);
    String name = "";
    long offset = 0;
    boolean finish = false;
    List<ByteBuffer> data = List.of();
    while (c.hasMore()) {
      long tag = c.tag();
      long field = tag >>> 3;
      int wireType = (int) (tag & 7);
      if (field == RESOURCE_NAME && wireType == LENGTH_DELIMITED) {
        int len = c.length();
        byte[] b = new byte[len];
        c.read(b, 0, len);
        name = WireReader.utf8(b, len);
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
        if (WireReader.inBuffers(stream)) {
          return parseInPlace(((Detachable) stream).detach());
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
      WriteChunk chunk = parse(WireReader.buffersOf(owned), owned);
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
