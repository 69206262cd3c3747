package io.bazelcache.grpc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import build.bazel.remote.execution.v2.Digest;
import build.bazel.remote.execution.v2.FindMissingBlobsRequest;
import build.bazel.remote.execution.v2.FindMissingBlobsResponse;
import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.UnknownFieldSet;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class FindMissingWireTest {

  static List<ByteBuffer> pieces(byte[] bytes, int size) {
    List<ByteBuffer> out = new ArrayList<>();
    for (int p = 0; p < bytes.length; p += size) {
      int n = Math.min(size, bytes.length - p);
      ByteBuffer b = ByteBuffer.allocateDirect(n + 3);
      b.position(3); // pieces need not start at 0, as gRPC's do not
      b.put(bytes, p, n).flip().position(3);
      out.add(b.slice());
    }
    return out;
  }

  static void assertSame(FindMissingBlobsRequest expected, FindMissingWire.Request got) {
    assertThat(got.instanceName()).isEqualTo(expected.getInstanceName());
    assertThat(got.digestFunction()).isEqualTo(expected.getDigestFunctionValue());
    assertThat(got.count()).isEqualTo(expected.getBlobDigestsCount());
    for (int i = 0; i < got.count(); i++) {
      assertThat(got.hash(i)).isEqualTo(expected.getBlobDigests(i).getHash());
      assertThat(got.sizes()[i]).isEqualTo(expected.getBlobDigests(i).getSizeBytes());
    }
  }

  @Test
  void parsesLikeProtobufInAnyPieces() throws Exception {
    Random r = new Random(7);
    for (int round = 0; round < 60; round++) {
      FindMissingBlobsRequest.Builder b = FindMissingBlobsRequest.newBuilder()
          .setInstanceName(round % 3 == 0 ? "" : "inst/ä" + round)
          .setDigestFunctionValue(round % 4 == 0 ? 0 : r.nextInt(12));
      int n = r.nextInt(300);
      for (int i = 0; i < n; i++) {
        byte[] h = new byte[32];
        r.nextBytes(h);
        b.addBlobDigests(Digest.newBuilder().setHash(i % 50 == 7 ? "not hex" : HexFormat.of().formatHex(h))
            .setSizeBytes(i % 10 == 0 ? 0 : (i % 13 == 0 ? -5 : r.nextLong(1L << 40))));
      }
      FindMissingBlobsRequest req = b.build();
      byte[] bytes = req.toByteArray();
      for (int size : new int[] {1, 5, 64, 16384, Math.max(1, bytes.length)}) {
        assertSame(req, FindMissingWire.parse(pieces(bytes, size)));
      }
    }
  }

  @Test
  void lastOccurrenceWinsAndUnknownFieldsAreSkipped() throws Exception {
    Digest d = Digest.newBuilder().setHash("a".repeat(64)).setSizeBytes(3)
        .setUnknownFields(UnknownFieldSet.newBuilder()
            .addField(9, UnknownFieldSet.Field.newBuilder().addVarint(5).addFixed32(1).addFixed64(2)
                .addLengthDelimited(ByteString.copyFromUtf8("x")).build()).build())
        .build();
    FindMissingBlobsRequest first = FindMissingBlobsRequest.newBuilder().setInstanceName("one")
        .setDigestFunctionValue(9).addBlobDigests(d)
        .setUnknownFields(UnknownFieldSet.newBuilder()
            .addField(77, UnknownFieldSet.Field.newBuilder().addLengthDelimited(ByteString.copyFromUtf8("zz"))
                .build()).build())
        .build();
    FindMissingBlobsRequest second = FindMissingBlobsRequest.newBuilder().setInstanceName("two")
        .addBlobDigests(Digest.newBuilder().setHash("b".repeat(64))).build();
    byte[] both = first.toByteString().concat(second.toByteString()).toByteArray();
    FindMissingBlobsRequest expected = FindMissingBlobsRequest.parseFrom(both);
    assertThat(expected.getInstanceName()).isEqualTo("two");
    assertSame(expected, FindMissingWire.parse(pieces(both, 3)));
    // A known field number with another wire type is skipped, as protobuf does.
    byte[] wrongType = {0x08, 0x01, 0x18, 0x02};
    assertSame(FindMissingBlobsRequest.parseFrom(wrongType), FindMissingWire.parse(pieces(wrongType, 1)));
  }

  @Test
  void malformedInputIsRefused() {
    byte[][] bad = {
        {0x12, 0x05, 0x0a}, // digest longer than the input
        {0x12, 0x02, 0x0a, 0x05}, // hash longer than its digest
        {0x18, (byte) 0x80}, // truncated varint
        {0x00, 0x01}, // field number 0
        {0x0a, 0x02, (byte) 0xc3, 0x28}, // instance_name not UTF-8
        {0x12, 0x03, 0x0a, 0x01, (byte) 0xff}, // hash not UTF-8
    };
    for (byte[] b : bad) {
      assertThatThrownBy(() -> FindMissingBlobsRequest.parseFrom(b))
          .isInstanceOf(InvalidProtocolBufferException.class);
      assertThatThrownBy(() -> FindMissingWire.parse(pieces(b, 1)))
          .isInstanceOf(InvalidProtocolBufferException.class);
    }
    // Groups: protobuf skips them, this parser refuses them (proto3 has none).
    assertThatThrownBy(() -> FindMissingWire.parse(pieces(new byte[] {0x2b, 0x2c}, 1)))
        .isInstanceOf(InvalidProtocolBufferException.class);
  }

  @Test
  void responseIsWhatProtobufWouldWrite() throws Exception {
    Random r = new Random(3);
    int n = 500;
    String[] hashes = new String[n];
    long[] sizes = new long[n];
    for (int i = 0; i < n; i++) {
      byte[] h = new byte[32];
      r.nextBytes(h);
      hashes[i] = HexFormat.of().formatHex(h);
      sizes[i] = i % 7 == 0 ? 0 : r.nextLong(Long.MAX_VALUE);
    }
    FindMissingWire.Request req = FindMissingWire.Request.of("", 0, hashes, sizes, n);
    int[] picked = {0, 3, 7, 499, 250};
    byte[] wire = FindMissingWire.response(req, picked, picked.length);
    FindMissingBlobsResponse.Builder expected = FindMissingBlobsResponse.newBuilder();
    for (int i : picked) {
      expected.addMissingBlobDigests(Digest.newBuilder().setHash(hashes[i]).setSizeBytes(sizes[i]));
    }
    assertThat(wire).isEqualTo(expected.build().toByteArray());
    assertThat(FindMissingWire.response(req, new int[0], 0)).isEmpty();
  }
}
