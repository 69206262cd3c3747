package io.bazelcache.grpc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.bytestream.ByteStreamProto.WriteRequest;
import com.google.protobuf.ByteString;
import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.UnknownFieldSet;
import com.google.protobuf.WireFormat;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** {@link WriteChunk#parse} against protobuf's own parser of {@code google.bytestream.WriteRequest}. */
class WriteChunkTest {
  private static final int[] FIXED_PIECE_SIZES = {1, 7, 16384};

  // ---- helpers -------------------------------------------------------------------------------

  /** The piece sizes to parse {@code serialized} at: 1, 7, 16 KiB and all of it in one piece. */
  private static int[] pieceSizes(byte[] serialized) {
    return new int[] {
      FIXED_PIECE_SIZES[0], FIXED_PIECE_SIZES[1], FIXED_PIECE_SIZES[2], Math.max(1, serialized.length)
    };
  }

  static byte[] bytes(WriteChunk c) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (ByteBuffer b : c.data()) {
      ByteBuffer d = b.duplicate();
      byte[] a = new byte[d.remaining()];
      d.get(a);
      out.writeBytes(a);
    }
    return out.toByteArray();
  }

  /** Asserts that ours parses {@code serialized} like protobuf does, at every piece size. */
  static WriteRequest assertParsesLikeProtobuf(byte[] serialized) throws Exception {
    WriteRequest expected = WriteRequest.parseFrom(serialized);
    for (int pieceSize : pieceSizes(serialized)) {
      WriteChunk c = WriteChunk.parseInPieces(serialized, pieceSize);
      assertSame(c, expected, "piece size " + pieceSize);
    }
    return expected;
  }

  static void assertSame(WriteChunk c, WriteRequest expected, String what) {
    assertThat(c.resourceName()).as(what + ": resource_name").isEqualTo(expected.getResourceName());
    assertThat(c.writeOffset()).as(what + ": write_offset").isEqualTo(expected.getWriteOffset());
    assertThat(c.finishWrite()).as(what + ": finish_write").isEqualTo(expected.getFinishWrite());
    assertThat(c.dataSize()).as(what + ": data size").isEqualTo(expected.getData().size());
    assertThat(bytes(c)).as(what + ": data").isEqualTo(expected.getData().toByteArray());
    for (ByteBuffer b : c.data()) {
      assertThat(b.isReadOnly()).as(what + ": data views are read-only").isTrue();
    }
    // toRequest gives back the same message.
    assertThat(c.toRequest()).as(what + ": toRequest").isEqualTo(expected.toBuilder()
        .setUnknownFields(UnknownFieldSet.getDefaultInstance()).build());
  }

  static String randomName(Random r) {
    StringBuilder sb = new StringBuilder();
    int n = r.nextInt(5) == 0 ? 0 : r.nextInt(300);
    for (int i = 0; i < n; i++) {
      int cp = switch (r.nextInt(6)) {
        case 0 -> 0x20 + r.nextInt(0x5F); // ASCII
        case 1 -> 0x80 + r.nextInt(0x780); // 2-byte UTF-8
        case 2 -> 0x800 + r.nextInt(0xD800 - 0x800); // 3-byte, below surrogates
        case 3 -> 0xE000 + r.nextInt(0x10000 - 0xE000); // 3-byte, above surrogates
        case 4 -> 0x10000 + r.nextInt(0x110000 - 0x10000); // 4-byte (a surrogate pair in Java)
        default -> "/uploads/blobs/0123456789abcdef".charAt(r.nextInt(31));
      };
      sb.appendCodePoint(cp);
    }
    return sb.toString();
  }

  static long randomOffset(Random r) {
    return switch (r.nextInt(8)) {
      case 0 -> 0;
      case 1 -> Long.MAX_VALUE;
      case 2 -> Long.MIN_VALUE;
      case 3 -> -1;
      case 4 -> -1 - (long) r.nextInt(Integer.MAX_VALUE);
      case 5 -> r.nextLong();
      case 6 -> (long) r.nextInt(1 << 30) << r.nextInt(34);
      default -> r.nextInt(128);
    };
  }

  static WriteRequest randomRequest(Random r) {
    int len = switch (r.nextInt(4)) {
      case 0 -> r.nextInt(16);
      case 1 -> r.nextInt(2000);
      default -> r.nextInt(200 * 1024 + 1);
    };
    byte[] data = new byte[len];
    r.nextBytes(data);
    return WriteRequest.newBuilder()
        .setResourceName(randomName(r))
        .setWriteOffset(randomOffset(r))
        .setFinishWrite(r.nextBoolean())
        .setData(ByteString.copyFrom(data))
        .build();
  }

  interface Writer {
    void write(CodedOutputStream out) throws IOException;
  }

  static byte[] raw(Writer w) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    CodedOutputStream out = CodedOutputStream.newInstance(bytes);
    w.write(out);
    out.flush();
    return bytes.toByteArray();
  }

  static byte[] concat(byte[]... parts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (byte[] p : parts) {
      out.writeBytes(p);
    }
    return out.toByteArray();
  }

  static byte[] bytesOf(int... values) {
    byte[] b = new byte[values.length];
    for (int i = 0; i < values.length; i++) {
      b[i] = (byte) values[i];
    }
    return b;
  }

  // ---- well-formed input ---------------------------------------------------------------------

  @Test
  void randomRequestsParseLikeProtobufAtEveryPieceSize() throws Exception {
    Random r = new Random(20240611);
    for (int i = 0; i < 60; i++) {
      WriteRequest req = randomRequest(r);
      byte[] serialized = req.toByteArray();
      assertThat(assertParsesLikeProtobuf(serialized)).isEqualTo(req);
    }
  }

  @Test
  void edgeValuesRoundTrip() throws Exception {
    List<WriteRequest> reqs = List.of(
        WriteRequest.getDefaultInstance(),
        WriteRequest.newBuilder().setWriteOffset(Long.MIN_VALUE).build(),
        WriteRequest.newBuilder().setWriteOffset(Long.MAX_VALUE).setFinishWrite(true).build(),
        WriteRequest.newBuilder().setWriteOffset(-1).build(),
        WriteRequest.newBuilder().setResourceName("ä/💾/名前/uploads/x").build(),
        WriteRequest.newBuilder().setData(ByteString.copyFrom(new byte[1])).build(),
        WriteRequest.newBuilder().setResourceName("a").setWriteOffset(1).setFinishWrite(true)
            .setData(ByteString.copyFrom(new byte[200 * 1024])).build());
    for (WriteRequest req : reqs) {
      assertThat(assertParsesLikeProtobuf(req.toByteArray())).isEqualTo(req);
    }
    // Nothing at all is the default message.
    WriteChunk empty = WriteChunk.parse(List.of(), null);
    assertSame(empty, WriteRequest.getDefaultInstance(), "no pieces");
  }

  @Test
  void dataIsAViewOfTheReceivedBuffersNotACopy() throws Exception {
    byte[] data = new byte[100_000];
    new Random(1).nextBytes(data);
    byte[] serialized = WriteRequest.newBuilder().setResourceName("n").setFinishWrite(true)
        .setData(ByteString.copyFrom(data)).build().toByteArray();
    // One piece: the data is one slice of it (parseInPieces makes direct buffers).
    WriteChunk whole = WriteChunk.parseInPieces(serialized, serialized.length);
    assertThat(whole.data()).hasSize(1);
    assertThat(whole.data().get(0).isDirect()).isTrue();
    assertThat(whole.data().get(0).isReadOnly()).isTrue();
    // 16 KiB pieces: one slice per piece the data touches.
    WriteChunk pieces = WriteChunk.parseInPieces(serialized, 16384);
    assertThat(pieces.data().size()).isBetween(data.length / 16384, data.length / 16384 + 2);
    assertThat(pieces.data()).allSatisfy(b -> assertThat(b.isDirect()).isTrue());
    assertThat(bytes(pieces)).isEqualTo(data);
  }

  @Test
  void piecesWithNonzeroPositionsAndEmptyPiecesBetween() throws Exception {
    Random r = new Random(7);
    for (int i = 0; i < 20; i++) {
      WriteRequest req = randomRequest(r);
      byte[] serialized = req.toByteArray();
      // Each piece is a window [pos, limit) into a larger buffer with junk around it; some empty.
      List<ByteBuffer> pieces = new ArrayList<>();
      int p = 0;
      while (p < serialized.length) {
        if (r.nextInt(4) == 0) {
          ByteBuffer empty = ByteBuffer.allocate(10);
          empty.position(5).limit(5);
          pieces.add(empty);
        }
        int n = Math.min(serialized.length - p, 1 + r.nextInt(5000));
        ByteBuffer b = ByteBuffer.allocate(n + 20);
        for (int j = 0; j < b.capacity(); j++) {
          b.put(j, (byte) 0xFF);
        }
        b.put(13, serialized, p, n);
        b.position(13).limit(13 + n);
        pieces.add(b);
        p += n;
      }
      pieces.add(ByteBuffer.allocate(0));
      List<Integer> positions = pieces.stream().map(ByteBuffer::position).toList();
      WriteChunk c = WriteChunk.parse(pieces, null);
      assertSame(c, req, "window pieces #" + i);
      // The pieces themselves are left as they were.
      assertThat(pieces.stream().map(ByteBuffer::position).toList()).isEqualTo(positions);
    }
  }

  @Test
  void closeReleasesTheOwnerOnce() throws Exception {
    AtomicInteger closes = new AtomicInteger();
    InputStream owner = new InputStream() {
      @Override
      public int read() {
        return -1;
      }

      @Override
      public void close() {
        closes.incrementAndGet();
      }
    };
    byte[] serialized = WriteRequest.newBuilder().setResourceName("x").build().toByteArray();
    WriteChunk c = WriteChunk.parse(List.of(ByteBuffer.wrap(serialized)), owner);
    assertThat(c.resourceName()).isEqualTo("x");
    assertThat(closes).hasValue(0);
    c.close();
    c.close();
    assertThat(closes).hasValue(1);
  }

  @Test
  void fieldsInUnusualOrder() throws Exception {
    byte[] data = new byte[70_000];
    new Random(3).nextBytes(data);
    byte[] serialized = raw(out -> {
      out.writeBytes(10, ByteString.copyFrom(data));
      out.writeBool(3, true);
      out.writeInt64(2, 123_456_789_012L);
      out.writeString(1, "uploads/ü/blobs/x/1");
    });
    WriteRequest expected = assertParsesLikeProtobuf(serialized);
    assertThat(expected.getResourceName()).isEqualTo("uploads/ü/blobs/x/1");
    assertThat(expected.getWriteOffset()).isEqualTo(123_456_789_012L);
    assertThat(expected.getFinishWrite()).isTrue();
    assertThat(expected.getData().toByteArray()).isEqualTo(data);
  }

  @Test
  void repeatedFieldsLastOneWins() throws Exception {
    Random r = new Random(11);
    WriteRequest a = randomRequest(r).toBuilder().setResourceName("first").setWriteOffset(5)
        .setFinishWrite(true).build();
    WriteRequest b = WriteRequest.newBuilder().setResourceName("second").setWriteOffset(-7)
        .setData(ByteString.copyFromUtf8("later data")).build();
    // b has finish_write false (not serialized), so a's true stays; the rest is b's.
    WriteRequest merged = assertParsesLikeProtobuf(concat(a.toByteArray(), b.toByteArray()));
    assertThat(merged.getResourceName()).isEqualTo("second");
    assertThat(merged.getWriteOffset()).isEqualTo(-7);
    assertThat(merged.getFinishWrite()).isTrue();
    assertThat(merged.getData().toStringUtf8()).isEqualTo("later data");

    // The other way round: a's nonempty data replaces b's, not appended.
    WriteRequest merged2 = assertParsesLikeProtobuf(concat(b.toByteArray(), a.toByteArray()));
    assertThat(merged2.getData()).isEqualTo(a.getData());
    assertThat(merged2.getResourceName()).isEqualTo("first");

    // The same field several times in a row, scalar and bytes, incl. finish_write going back to false.
    byte[] serialized = raw(out -> {
      out.writeString(1, "a");
      out.writeBytes(10, ByteString.copyFromUtf8("one"));
      out.writeBool(3, true);
      out.writeInt64(2, 1);
      out.writeString(1, "bb");
      out.writeInt64(2, Long.MIN_VALUE);
      out.writeBytes(10, ByteString.copyFromUtf8("two"));
      out.writeBool(3, false);
      out.writeBytes(10, ByteString.EMPTY);
      out.writeInt64(2, 42);
    });
    WriteRequest p = assertParsesLikeProtobuf(serialized);
    assertThat(p.getResourceName()).isEqualTo("bb");
    assertThat(p.getWriteOffset()).isEqualTo(42);
    assertThat(p.getFinishWrite()).isFalse();
    assertThat(p.getData()).isEqualTo(ByteString.EMPTY);
  }

  @Test
  void nonCanonicalBooleanAndVarints() throws Exception {
    // finish_write = 2 is true; a 10-byte varint with high bits; an over-long encoded zero offset.
    byte[] serialized = concat(
        bytesOf(0x18, 0x02),
        bytesOf(0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00),
        bytesOf(0x0A, 0x01, 'z'));
    WriteRequest p = assertParsesLikeProtobuf(serialized);
    assertThat(p.getFinishWrite()).isTrue();
    assertThat(p.getWriteOffset()).isZero();
    assertThat(p.getResourceName()).isEqualTo("z");
  }

  @Test
  void unknownFieldsOfEveryWireTypeAreSkipped() throws Exception {
    Random r = new Random(5);
    WriteRequest known = randomRequest(r);
    UnknownFieldSet unknown = UnknownFieldSet.newBuilder()
        .addField(4, UnknownFieldSet.Field.newBuilder().addVarint(Long.MIN_VALUE).addVarint(7).build())
        .addField(5, UnknownFieldSet.Field.newBuilder().addFixed64(0x0102030405060708L).build())
        .addField(6, UnknownFieldSet.Field.newBuilder()
            .addLengthDelimited(ByteString.copyFrom(new byte[40_000])).build())
        .addField(9, UnknownFieldSet.Field.newBuilder().addFixed32(0xCAFEBABE).build())
        .addField(11, UnknownFieldSet.Field.newBuilder().addLengthDelimited(ByteString.EMPTY).build())
        .addField(536_870_911, UnknownFieldSet.Field.newBuilder().addVarint(1).build())
        .build();
    WriteRequest withUnknown = known.toBuilder().setUnknownFields(unknown).build();
    byte[] serialized = withUnknown.toByteArray();
    WriteRequest p = assertParsesLikeProtobuf(serialized);
    assertThat(p.getUnknownFields().asMap()).containsOnlyKeys(4, 5, 6, 9, 11, 536_870_911);
    assertThat(p.toBuilder().setUnknownFields(UnknownFieldSet.getDefaultInstance()).build())
        .isEqualTo(known);

    // Interleaved with the known fields, before, between and after them.
    byte[] data = new byte[20_000];
    r.nextBytes(data);
    byte[] interleaved = raw(out -> {
      out.writeFixed32(100, 1);
      out.writeString(1, "név");
      out.writeUInt64(12, -1L);
      out.writeFixed64(13, -1L);
      out.writeInt64(2, 99);
      out.writeBytes(14, ByteString.copyFrom(data, 0, 300));
      out.writeBytes(10, ByteString.copyFrom(data));
      out.writeFixed32(15, 0);
      out.writeBool(3, true);
      out.writeBytes(16, ByteString.copyFromUtf8("tail"));
    });
    WriteRequest q = assertParsesLikeProtobuf(interleaved);
    assertThat(q.getResourceName()).isEqualTo("név");
    assertThat(q.getWriteOffset()).isEqualTo(99);
    assertThat(q.getFinishWrite()).isTrue();
    assertThat(q.getData().toByteArray()).isEqualTo(data);
    assertThat(q.getUnknownFields().asMap()).hasSize(6);
  }

  @Test
  void knownFieldNumberWithTheWrongWireTypeIsSkipped() throws Exception {
    byte[] data = new byte[3000];
    new Random(9).nextBytes(data);
    byte[] serialized = raw(out -> {
      out.writeString(1, "good");
      out.writeInt64(2, 10);
      out.writeBool(3, true);
      out.writeBytes(10, ByteString.copyFrom(data));
      // Then the same field numbers again with other wire types: protobuf keeps them as unknown
      // fields and leaves the values above alone.
      out.writeUInt64(1, 77); // resource_name as a varint
      out.writeFixed32(1, 5);
      out.writeBytes(2, ByteString.copyFromUtf8("offset as bytes"));
      out.writeFixed64(2, 12345);
      out.writeFixed32(3, 0);
      out.writeBytes(3, ByteString.EMPTY);
      out.writeUInt64(10, 3); // data as a varint
      out.writeFixed64(10, 1);
      out.writeFixed32(10, 1);
    });
    WriteRequest p = assertParsesLikeProtobuf(serialized);
    assertThat(p.getResourceName()).isEqualTo("good");
    assertThat(p.getWriteOffset()).isEqualTo(10);
    assertThat(p.getFinishWrite()).isTrue();
    assertThat(p.getData().toByteArray()).isEqualTo(data);
    assertThat(p.getUnknownFields().asMap()).containsOnlyKeys(1, 2, 3, 10);

    // Only wrong-typed occurrences: the fields keep their defaults.
    byte[] onlyWrong = raw(out -> {
      out.writeFixed64(1, 1);
      out.writeBytes(2, ByteString.copyFromUtf8("x"));
      out.writeFixed32(3, 1);
      out.writeUInt64(10, 300);
    });
    WriteRequest q = assertParsesLikeProtobuf(onlyWrong);
    assertThat(q.getResourceName()).isEmpty();
    assertThat(q.getWriteOffset()).isZero();
    assertThat(q.getFinishWrite()).isFalse();
    assertThat(q.getData()).isEqualTo(ByteString.EMPTY);
  }

  // ---- malformed input -----------------------------------------------------------------------

  /** Asserts that protobuf and ours (at every piece size) refuse {@code serialized}. */
  static void assertBothRefuse(byte[] serialized) {
    assertThatThrownBy(() -> WriteRequest.parseFrom(serialized))
        .as("protobuf refuses it")
        .isInstanceOf(InvalidProtocolBufferException.class);
    assertOursRefuses(serialized);
  }

  static void assertOursRefuses(byte[] serialized) {
    for (int pieceSize : pieceSizes(serialized)) {
      assertThatThrownBy(() -> WriteChunk.parseInPieces(serialized, pieceSize))
          .as("WriteChunk refuses it at piece size " + pieceSize)
          .isInstanceOf(InvalidProtocolBufferException.class);
    }
  }

  @Test
  void truncatedVarintsAreRefused() {
    assertBothRefuse(bytesOf(0x10, 0x80)); // write_offset: continuation bit, then the end
    assertBothRefuse(bytesOf(0x10, 0xFF, 0xFF, 0xFF)); // write_offset, 3 of up to 10 bytes
    assertBothRefuse(bytesOf(0x18)); // finish_write tag without its value
    assertBothRefuse(bytesOf(0x80)); // a truncated tag
    assertBothRefuse(bytesOf(0x0A)); // resource_name tag without its length
    assertBothRefuse(bytesOf(0x52, 0x80)); // data: truncated length
    // More than 10 bytes of varint.
    assertBothRefuse(bytesOf(0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01));
    // A good message followed by a truncated one.
    byte[] good = WriteRequest.newBuilder().setResourceName("x").setData(ByteString.copyFromUtf8("abc"))
        .build().toByteArray();
    assertBothRefuse(concat(good, bytesOf(0x10, 0x81)));
  }

  @Test
  void lengthBeyondTheEndIsRefused() throws Exception {
    assertBothRefuse(bytesOf(0x52, 0x05, 1, 2)); // data of 5 with 2 bytes there
    assertBothRefuse(bytesOf(0x0A, 0x03, 'a', 'b')); // resource_name of 3 with 2
    assertBothRefuse(bytesOf(0x32, 0x02, 0)); // an unknown length-delimited field 6
    assertBothRefuse(bytesOf(0x29, 1, 2, 3, 4, 5, 6, 7)); // unknown fixed64 field 5, 7 of 8 bytes
    assertBothRefuse(bytesOf(0x4D, 1, 2, 3)); // unknown fixed32 field 9, 3 of 4 bytes
    assertBothRefuse(bytesOf(0x11, 1, 2, 3)); // write_offset as fixed64 (skipped), cut short
    // Negative (as int32) and huge lengths.
    assertBothRefuse(bytesOf(0x52, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 1, 2, 3));
    assertBothRefuse(bytesOf(0x52, 0xFF, 0xFF, 0xFF, 0xFF, 0x07, 1, 2, 3));
    // A large data field cut one byte short.
    byte[] big = WriteRequest.newBuilder().setData(ByteString.copyFrom(new byte[100_000])).build()
        .toByteArray();
    assertBothRefuse(java.util.Arrays.copyOf(big, big.length - 1));
  }

  @Test
  void fieldNumberZeroIsRefused() {
    assertBothRefuse(bytesOf(0x00)); // field 0, varint, no value
    assertBothRefuse(bytesOf(0x00, 0x01)); // field 0, varint 1
    assertBothRefuse(bytesOf(0x02, 0x00)); // field 0, length-delimited, empty
    assertBothRefuse(bytesOf(0x05, 0, 0, 0, 0)); // field 0, fixed32
    byte[] good = WriteRequest.newBuilder().setResourceName("x").build().toByteArray();
    assertBothRefuse(concat(good, bytesOf(0x00)));
  }

  @Test
  void overlongTagsAndLengthsAreReadAs32BitLikeProtobuf() throws Exception {
    // Tag 0xFFFFFFF8 (field 536870911, varint) encoded with a bit above bit 31 set, then a good field.
    byte[] bigTag = concat(bytesOf(0xF8, 0xFF, 0xFF, 0xFF, 0x7F, 0x05), bytesOf(0x0A, 0x01, 'x'));
    assertThat(WriteRequest.parseFrom(bigTag).getResourceName()).isEqualTo("x");
    assertParsesLikeProtobuf(bigTag);
    // data length 3 encoded as a 5-byte varint with bit 32 set.
    byte[] bigLength = bytesOf(0x52, 0x83, 0x80, 0x80, 0x80, 0x10, 1, 2, 3);
    assertThat(WriteRequest.parseFrom(bigLength).getData().size()).isEqualTo(3);
    assertParsesLikeProtobuf(bigLength);
  }

  @Test
  void tenByteVarintWithAContinuationBitIsRefused() throws Exception {
    // A varint has at most 10 bytes. protobuf-java's fast path ignores the continuation bit of the
    // 10th byte and goes on after it; we refuse the message (as the wire format spec says), which is
    // the one place where we are stricter than protobuf-java.
    byte[] b = bytesOf(0x10, 0xF4, 0xA6, 0xA8, 0x89, 0xF8, 0xFF, 0xFF, 0xFF, 0xFF, 0xD5, 0x52, 0x01, 0);
    assertThat(WriteRequest.parseFrom(b).getData().size()).isEqualTo(1);
    assertOursRefuses(b);
  }

  @Test
  void invalidUtf8InResourceNameIsRefused() {
    assertBothRefuse(bytesOf(0x0A, 0x02, 0xC3, 0x28)); // bad continuation byte
    assertBothRefuse(bytesOf(0x0A, 0x01, 0xFF)); // never valid in UTF-8
    assertBothRefuse(bytesOf(0x0A, 0x02, 0xC0, 0x80)); // over-long NUL
    assertBothRefuse(bytesOf(0x0A, 0x03, 0xED, 0xA0, 0x80)); // an encoded surrogate
    assertBothRefuse(bytesOf(0x0A, 0x02, 0xE2, 0x82)); // a 3-byte sequence cut short
    assertBothRefuse(bytesOf(0x0A, 0x04, 0xF4, 0x90, 0x80, 0x80)); // above U+10FFFF
    // Split across pieces: a valid 4-byte character is fine, its prefix alone is not.
    byte[] emoji = "💾".getBytes(StandardCharsets.UTF_8);
    assertThatCode(() -> assertParsesLikeProtobuf(concat(bytesOf(0x0A, 0x04), emoji)))
        .doesNotThrowAnyException();
    assertBothRefuse(concat(bytesOf(0x0A, 0x03), java.util.Arrays.copyOf(emoji, 3)));
  }

  @Test
  void invalidUtf8InDataOrUnknownFieldsIsFine() throws Exception {
    // Only resource_name is a string; bytes and unknown fields may hold anything.
    assertParsesLikeProtobuf(bytesOf(0x52, 0x02, 0xC3, 0x28));
    assertParsesLikeProtobuf(bytesOf(0x32, 0x01, 0xFF, 0x0A, 0x01, 'k'));
  }

  @Test
  void groupsAreRefusedThoughProtobufAcceptsThem() throws Exception {
    int start = WireFormat.WIRETYPE_START_GROUP;
    int end = WireFormat.WIRETYPE_END_GROUP;
    // An unknown field 7 as an (empty) group, and one holding a varint field, after a good field.
    byte[] emptyGroup = concat(bytesOf(0x0A, 0x01, 'x'), bytesOf(7 << 3 | start, 7 << 3 | end));
    byte[] fullGroup = concat(bytesOf(7 << 3 | start, 0x08, 0x01, 7 << 3 | end), bytesOf(0x18, 0x01));
    // A known field number (finish_write) with the group wire type.
    byte[] knownAsGroup = bytesOf(3 << 3 | start, 3 << 3 | end);
    for (byte[] b : List.of(emptyGroup, fullGroup, knownAsGroup)) {
      assertThatCode(() -> WriteRequest.parseFrom(b)).as("protobuf skips groups")
          .doesNotThrowAnyException();
      assertOursRefuses(b);
    }
    assertThat(WriteRequest.parseFrom(emptyGroup).getResourceName()).isEqualTo("x");
    assertThat(WriteRequest.parseFrom(fullGroup).getFinishWrite()).isTrue();
  }

  @ParameterizedTest
  @ValueSource(ints = {4, 6, 7})
  void strayEndGroupAndUndefinedWireTypesAreRefused(int wireType) {
    // Field 7 with wire type 4 (an end-group without its start), 6 or 7 (not defined).
    assertBothRefuse(bytesOf(7 << 3 | wireType, 0, 0, 0, 0, 0, 0, 0, 0));
    assertBothRefuse(bytesOf(0x0A, 0x01, 'x', 1 << 3 | wireType));
  }

  @Test
  void randomCorruptionNeverParsesDifferentlyFromProtobuf() throws Exception {
    // Flip or cut bytes of valid messages: whenever protobuf accepts the result (and it holds no
    // group), ours gives the same fields; whenever protobuf refuses it, ours refuses it too.
    // Offsets are not negative here: a 10-byte varint could be corrupted into the one case where
    // protobuf-java is more lenient than we are (see tenByteVarintWithAContinuationBitIsRefused).
    Random r = new Random(77);
    int accepted = 0;
    int refused = 0;
    for (int i = 0; i < 400; i++) {
      WriteRequest req = WriteRequest.newBuilder().setResourceName("uploads/" + r.nextInt(1000)).setWriteOffset(randomOffset(r) & Long.MAX_VALUE)
          .setFinishWrite(r.nextBoolean()).setData(ByteString.copyFrom(new byte[r.nextInt(40)]))
          .build();
      byte[] b = req.toByteArray();
      if (b.length == 0) {
        continue;
      }
      if (r.nextBoolean()) {
        b[r.nextInt(b.length)] = (byte) r.nextInt(256);
      } else {
        b = java.util.Arrays.copyOf(b, r.nextInt(b.length));
      }
      WriteRequest expected;
      try {
        expected = WriteRequest.parseFrom(b);
      } catch (InvalidProtocolBufferException e) {
        assertOursRefuses(b);
        refused++;
        continue;
      }
      if (hasGroup(expected.getUnknownFields())) {
        continue;
      }
      for (int pieceSize : new int[] {1, 3, Math.max(1, b.length)}) {
        String what = "corrupt #" + i + " " + java.util.HexFormat.of().formatHex(b);
        WriteChunk c;
        try {
          c = WriteChunk.parseInPieces(b, pieceSize);
        } catch (InvalidProtocolBufferException e) {
          throw new AssertionError(what + ": protobuf accepts it, ours refuses: " + e.getMessage(), e);
        }
        assertSame(c, expected, what);
      }
      accepted++;
    }
    assertThat(accepted).isGreaterThan(50);
    assertThat(refused).isGreaterThan(20);
  }

  private static boolean hasGroup(UnknownFieldSet s) {
    for (UnknownFieldSet.Field f : s.asMap().values()) {
      if (!f.getGroupList().isEmpty()) {
        return true;
      }
    }
    return false;
  }
}
