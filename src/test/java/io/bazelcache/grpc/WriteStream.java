package io.bazelcache.grpc;

import com.google.bytestream.ByteStreamGrpc;
import com.google.bytestream.ByteStreamProto.WriteRequest;
import com.google.bytestream.ByteStreamProto.WriteResponse;
import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/** An open ByteStream Write stream driven by a test: requests sent one by one, the outcome awaited. */
class WriteStream {
  final LastResponse<WriteResponse> responses = new LastResponse<>();
  final CompletableFuture<WriteResponse> result = responses.result;
  final ClientCallStreamObserver<WriteRequest> requests;
  final String name;
  long offset;
  boolean first = true;
  int messages;

  WriteStream(ByteStreamGrpc.ByteStreamStub async, String name, long startOffset) {
    this.name = name;
    this.offset = startOffset;
    requests = (ClientCallStreamObserver<WriteRequest>) async.write(responses);
  }

  /** Sends {@code data[from, to)} as one request. */
  WriteStream send(byte[] data, int from, int to, boolean finish) {
    return send(data, from, to, Math.max(1, to - from), finish);
  }

  /** Sends {@code data[from, to)} in chunks of 64 KiB (one empty request if the range is empty). */
  WriteStream sendAll(byte[] data, int from, int to, boolean finish) {
    return send(data, from, to, 65536, finish);
  }

  /** Sends {@code data[from, to)} in chunks of {@code chunk}; the last one with finish_write if asked. */
  WriteStream send(byte[] data, int from, int to, int chunk, boolean finish) {
    int p = from;
    do {
      int e = Math.min(to, p + chunk);
      WriteRequest.Builder b = WriteRequest.newBuilder().setWriteOffset(offset)
          .setData(ByteString.copyFrom(data, p, e - p)).setFinishWrite(finish && e == to);
      if (first) {
        b.setResourceName(name);
        first = false;
      }
      requests.onNext(b.build());
      messages++;
      offset += e - p;
      p = e;
    } while (p < to);
    return this;
  }

  WriteResponse finish() throws Exception {
    requests.onCompleted();
    return result.get(60, TimeUnit.SECONDS);
  }

  Status.Code failure() throws Exception {
    requests.onCompleted();
    return code(result);
  }

  static Status.Code code(CompletableFuture<?> result) throws Exception {
    try {
      result.get(60, TimeUnit.SECONDS);
      return Status.Code.OK;
    } catch (ExecutionException e) {
      return Status.fromThrowable(e.getCause()).getCode();
    }
  }
}
