package io.bazelcache.grpc;

import build.bazel.remote.execution.v2.FindMissingBlobsRequest;
import com.google.protobuf.InvalidProtocolBufferException;
import io.grpc.Detachable;
import io.grpc.Drainable;
import io.grpc.KnownLength;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * FindMissingBlobs on the wire, without a protobuf object per digest. A build asks about thousands of
 * digests per call; generated code would make a builder, a message and a string per digest to parse the
 * request and encode every hash string again for the response, most of the call's time and garbage.
 * Here the request becomes two arrays (hashes and sizes) and the response is written straight into one
 * byte array.
 *
 * <p>Same meaning as {@code FindMissingBlobsRequest.parseFrom}: fields in any order, last occurrence
 * wins for scalars, unknown fields and known field numbers with another wire type are skipped, strings
 * must be valid UTF-8. Groups (wire types 3 and 4, unused by proto3) are refused.
 */
final class FindMissingWire {
  // FindMissingBlobsRequest
  private static final int INSTANCE_NAME = 1;
  private static final int BLOB_DIGESTS = 2;
  private static final int DIGEST_FUNCTION = 3;
  // Digest
  private static final int HASH = 1;
  private static final int SIZE_BYTES = 2;
  // FindMissingBlobsResponse
  private static final int MISSING_BLOB_DIGESTS = 2;

  /**
   * A parsed request. Digest {@code i}'s hash is the UTF-8 text {@code hashBytes[hashOffsets[i], +
   * hashLengths[i])} as sent, validated later with its index.
   */
  record Request(String instanceName, int digestFunction, byte[] hashBytes, int[] hashOffsets,
      int[] hashLengths, long[] sizes, int count) {

    String hash(int i) {
      return new String(hashBytes, hashOffsets[i], hashLengths[i], StandardCharsets.UTF_8);
    }

    /** Builds one from hash strings (tests). */
    static Request of(String instanceName, int digestFunction, String[] hashes, long[] sizes, int n) {
      java.io.ByteArrayOutputStream all = new java.io.ByteArrayOutputStream();
      int[] offsets = new int[n];
      int[] lengths = new int[n];
      for (int i = 0; i < n; i++) {
        byte[] b = hashes[i].getBytes(StandardCharsets.UTF_8);
        offsets[i] = all.size();
        lengths[i] = b.length;
        all.writeBytes(b);
      }
      return new Request(instanceName, digestFunction, all.toByteArray(), offsets, lengths, sizes, n);
    }
  }

  static Request parse(List<ByteBuffer> pieces) throws InvalidProtocolBufferException {
    WireReader r = new WireReader(pieces);
    String instance = "";
    int function = 0;
    long total = 0;
    for (ByteBuffer b : pieces) {
      total += b.remaining();
    }
    // Sized from the message: the hashes are part of it, and each digest takes at least 70 bytes when
    // its hash is 64 characters long.
    byte[] hashBytes = new byte[(int) Math.min(total, Integer.MAX_VALUE - 16)];
    int used = 0;
    int expected = (int) Math.min(total / 70 + 16, 1 << 20);
    int[] offsets = new int[expected];
    int[] lengths = new int[expected];
    long[] sizes = new long[expected];
    int n = 0;
    while (r.hasMore()) {
      long tag = r.tag();
      long field = tag >>> 3;
      int wireType = (int) (tag & 7);
      if (field == BLOB_DIGESTS && wireType == WireReader.LENGTH_DELIMITED) {
        if (n == sizes.length) {
          offsets = java.util.Arrays.copyOf(offsets, n * 2);
          lengths = java.util.Arrays.copyOf(lengths, n * 2);
          sizes = java.util.Arrays.copyOf(sizes, n * 2);
        }
        long outer = r.pushLimit(r.length());
        int hashOffset = used;
        int hashLength = 0;
        long size = 0;
        while (r.hasMore()) {
          long t = r.tag();
          long f = t >>> 3;
          int w = (int) (t & 7);
          if (f == HASH && w == WireReader.LENGTH_DELIMITED) {
            int len = r.length();
            if (hashOffset + len > hashBytes.length) {
              hashBytes = java.util.Arrays.copyOf(hashBytes, Math.max(hashBytes.length * 2,
                  hashOffset + len));
            }
            r.read(hashBytes, hashOffset, len); // a repeated hash field: the last one wins
            hashLength = len;
          } else if (f == SIZE_BYTES && w == WireReader.VARINT) {
            size = r.varint();
          } else {
            r.skip(w);
          }
        }
        r.popLimit(outer);
        WireReader.utf8Check(hashBytes, hashOffset, hashLength);
        used = hashOffset + hashLength;
        offsets[n] = hashOffset;
        lengths[n] = hashLength;
        sizes[n] = size;
        n++;
      } else if (field == INSTANCE_NAME && wireType == WireReader.LENGTH_DELIMITED) {
        int len = r.length();
        byte[] b = new byte[len];
        r.read(b, 0, len);
        instance = WireReader.utf8(b, len);
      } else if (field == DIGEST_FUNCTION && wireType == WireReader.VARINT) {
        function = (int) r.varint(); // an enum is an int32 on the wire
      } else {
        r.skip(wireType);
      }
    }
    return new Request(instance, function, hashBytes, offsets, lengths, sizes, n);
  }

  /**
   * Serializes a FindMissingBlobsResponse naming digests {@code indexes[0..count)} of {@code req}, with
   * their hashes' bytes as received.
   */
  static byte[] response(Request req, int[] indexes, int count) {
    int total = 0;
    for (int k = 0; k < count; k++) {
      int inner = digestSize(req.hashLengths[indexes[k]], req.sizes[indexes[k]]);
      total += 1 + varintSize(inner) + inner;
    }
    byte[] out = new byte[total];
    int p = 0;
    for (int k = 0; k < count; k++) {
      int i = indexes[k];
      int hashLength = req.hashLengths[i];
      long size = req.sizes[i];
      out[p++] = (byte) (MISSING_BLOB_DIGESTS << 3 | WireReader.LENGTH_DELIMITED);
      p = putVarint(out, p, digestSize(hashLength, size));
      if (hashLength > 0) {
        out[p++] = (byte) (HASH << 3 | WireReader.LENGTH_DELIMITED);
        p = putVarint(out, p, hashLength);
        System.arraycopy(req.hashBytes, req.hashOffsets[i], out, p, hashLength);
        p += hashLength;
      }
      if (size != 0) {
        out[p++] = (byte) (SIZE_BYTES << 3 | WireReader.VARINT);
        p = putVarint(out, p, size);
      }
    }
    if (p != total) {
      throw new IllegalStateException("response size miscounted: " + p + " of " + total);
    }
    return out;
  }

  private static int digestSize(int hashLength, long size) {
    return (hashLength == 0 ? 0 : 1 + varintSize(hashLength) + hashLength)
        + (size == 0 ? 0 : 1 + varintSize(size));
  }

  private static int varintSize(long v) {
    int n = 1;
    while ((v & ~0x7FL) != 0) {
      v >>>= 7;
      n++;
    }
    return n;
  }

  private static int putVarint(byte[] out, int p, long v) {
    while ((v & ~0x7FL) != 0) {
      out[p++] = (byte) ((v & 0x7F) | 0x80);
      v >>>= 7;
    }
    out[p++] = (byte) v;
    return p;
  }

  // ---------------------------------------------------------------------------------------------
  // Marshalling

  static final MethodDescriptor.Marshaller<Request> REQUESTS = new MethodDescriptor.Marshaller<>() {
    @Override
    public InputStream stream(Request value) {
      FindMissingBlobsRequest.Builder b = FindMissingBlobsRequest.newBuilder()
          .setInstanceName(value.instanceName()).setDigestFunctionValue(value.digestFunction());
      for (int i = 0; i < value.count(); i++) {
        b.addBlobDigests(build.bazel.remote.execution.v2.Digest.newBuilder()
            .setHash(value.hash(i)).setSizeBytes(value.sizes()[i]));
      }
      return b.build().toByteString().newInput();
    }

    @Override
    public Request parse(InputStream stream) {
      return parseStream(stream);
    }
  };

  private static Request parseStream(InputStream stream) {
    try {
      if (WireReader.inBuffers(stream)) {
        try (InputStream owned = ((Detachable) stream).detach()) {
          return parse(WireReader.buffersOf(owned)); // copies what it keeps: the buffers can go
        }
      }
      return parse(List.of(ByteBuffer.wrap(stream.readAllBytes())));
    } catch (InvalidProtocolBufferException e) {
      throw Status.INVALID_ARGUMENT.withDescription("invalid FindMissingBlobsRequest: " + e.getMessage())
          .withCause(e).asRuntimeException();
    } catch (IOException e) {
      throw Status.INTERNAL.withDescription("cannot read the request").withCause(e)
          .asRuntimeException();
    }
  }

  /** A serialized response, written to the transport in one piece. */
  static final MethodDescriptor.Marshaller<byte[]> RESPONSES = new MethodDescriptor.Marshaller<>() {
    @Override
    public InputStream stream(byte[] value) {
      return new Bytes(value);
    }

    @Override
    public byte[] parse(InputStream stream) {
      try {
        return stream.readAllBytes();
      } catch (IOException e) {
        throw Status.INTERNAL.withCause(e).asRuntimeException();
      }
    }
  };

  private static final class Bytes extends ByteArrayInputStream implements Drainable, KnownLength {
    Bytes(byte[] b) {
      super(b);
    }

    @Override
    public int drainTo(OutputStream target) throws IOException {
      int n = count - pos;
      target.write(buf, pos, n);
      pos = count;
      return n;
    }
  }

  private FindMissingWire() {}
}
