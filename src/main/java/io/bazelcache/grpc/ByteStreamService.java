package io.bazelcache.grpc;

import com.google.bytestream.ByteStreamGrpc;
import com.google.bytestream.ByteStreamProto.QueryWriteStatusRequest;
import com.google.bytestream.ByteStreamProto.QueryWriteStatusResponse;
import com.google.bytestream.ByteStreamProto.ReadRequest;
import com.google.bytestream.ByteStreamProto.ReadResponse;
import com.google.bytestream.ByteStreamProto.WriteRequest;
import com.google.bytestream.ByteStreamProto.WriteResponse;
import com.google.protobuf.UnsafeByteOperations;
import io.bazelcache.digest.Digest;
import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.BlobWriter;
import io.bazelcache.storage.FileSlice;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * ByteStream for CAS blobs: Read, Write (plain and {@code compressed-blobs/zstd}) and QueryWriteStatus,
 * with resumable uploads.
 *
 * <p><b>Read.</b> {@code read_offset} outside [0, size] or a negative {@code read_limit} is OUT_OF_RANGE.
 * For compressed reads the offset is in uncompressed bytes and a nonzero limit is INVALID_ARGUMENT; the
 * stored zstd form ({@link Blob#zstdFile()}) is sent as is when reading from offset 0, otherwise the
 * content is compressed on the fly. Responses carry at most {@link #CHUNK_SIZE} bytes and are sent only
 * as fast as the client takes them.
 *
 * <p><b>Write.</b> If the blob already exists the call returns at once with {@code committed_size} = the
 * blob's size (uncompressed) or -1 (compressed). Offsets must follow on exactly: the first request's
 * {@code write_offset} is 0 (new upload) or the committed size of an interrupted upload of the same
 * resource name (resumption); each later one is the first plus the {@code data} bytes sent so far (for
 * compressed uploads: compressed bytes, as the spec says). Anything else is INVALID_ARGUMENT.
 * finish_write checks size and digest; on a mismatch nothing is stored (INVALID_ARGUMENT). No room
 * is RESOURCE_EXHAUSTED.
 *
 * <p><b>Resumption.</b> An upload whose stream ends without finish_write (client cancelled, deadline
 * exceeded, connection lost, or half-closed early) keeps its received bytes for {@link
 * GrpcOptions#uploadResumeWindow()}; see {@link UploadRegistry}. QueryWriteStatus reports (size, true) if
 * the blob exists, else (uncompressed bytes received, false) for a kept upload, else (0, false). A
 * compressed upload resumes at an uncompressed offset with a new zstd stream of the remaining bytes.
 * After the window nothing of the interrupted upload remains.
 */
final class ByteStreamService extends ByteStreamGrpc.ByteStreamImplBase {
  private static final Logger log = LoggerFactory.getLogger(ByteStreamService.class);

  /** Largest data chunk of a ReadResponse. */
  static final int CHUNK_SIZE = 1024 * 1024;

  private final BlobStore cas;
  private final GrpcOptions options;
  private final UploadRegistry uploads;

  ByteStreamService(BlobStore cas, GrpcOptions options, UploadRegistry uploads) {
    this.cas = cas;
    this.options = options;
    this.uploads = uploads;
  }

  // ---------------------------------------------------------------------------------------------
  // Read

  @Override
  public void read(ReadRequest request, StreamObserver<ReadResponse> out) {
    ResourceName rn;
    try {
      rn = ResourceName.parseRead(request.getResourceName());
      if (request.getReadOffset() < 0) {
        throw Status.OUT_OF_RANGE.withDescription("negative read_offset").asRuntimeException();
      }
      if (request.getReadLimit() < 0) {
        throw Status.OUT_OF_RANGE.withDescription("negative read_limit").asRuntimeException();
      }
      if (rn.compressed() && request.getReadLimit() != 0) {
        throw Statuses.invalid("read_limit must be 0 for compressed-blobs reads");
      }
      if (request.getReadOffset() > rn.digest().sizeBytes()) {
        throw Status.OUT_OF_RANGE.withDescription("read_offset " + request.getReadOffset()
            + " is beyond the blob's size " + rn.digest().sizeBytes()).asRuntimeException();
      }
    } catch (Exception e) {
      out.onError(Statuses.exception(e));
      return;
    }
    FlowSender.start(out, "ByteStream.Read", sender -> {
      try (Blob blob = cas.get(BlobKey.cas(rn.digest()))) {
        if (blob == null || blob.size() != rn.digest().sizeBytes()) {
          throw Status.NOT_FOUND.withDescription("blob " + rn.digest() + " not found")
              .asRuntimeException();
        }
        if (rn.compressed()) {
          sendCompressed(sender, blob, request.getReadOffset());
        } else {
          long end = request.getReadLimit() == 0
              ? blob.size()
              : Math.min(blob.size(), request.getReadOffset() + request.getReadLimit());
          sendRaw(sender, blob, request.getReadOffset(), end);
        }
      }
    });
  }

  private static void sendRaw(FlowSender<ReadResponse> sender, Blob blob, long offset, long end)
      throws IOException {
    Optional<FileSlice> file = blob.rawFile();
    if (file.isPresent()) {
      sendSlice(sender, file.get(), offset, end);
      return;
    }
    try (InputStream in = blob.openStream(offset)) {
      long pos = offset;
      while (pos < end) {
        int n = (int) Math.min(CHUNK_SIZE, end - pos);
        byte[] buf = in.readNBytes(n);
        if (buf.length != n) {
          throw new IOException("stored blob ended early at " + (pos + buf.length));
        }
        sender.send(ReadResponse.newBuilder().setData(UnsafeByteOperations.unsafeWrap(buf)).build());
        pos += n;
      }
    }
  }

  /** Sends bytes [from, to) of a file region. */
  private static void sendSlice(FlowSender<ReadResponse> sender, FileSlice slice, long from, long to)
      throws IOException {
    long pos = from;
    while (pos < to) {
      int n = (int) Math.min(CHUNK_SIZE, to - pos);
      ByteBuffer buf = ByteBuffer.allocate(n);
      while (buf.hasRemaining()) {
        int r = slice.channel().read(buf, slice.position() + pos + buf.position());
        if (r < 0) {
          throw new IOException("stored file ended early");
        }
      }
      buf.flip();
      sender.send(ReadResponse.newBuilder().setData(UnsafeByteOperations.unsafeWrap(buf)).build());
      pos += n;
    }
  }

  private static void sendCompressed(FlowSender<ReadResponse> sender, Blob blob, long offset)
      throws IOException {
    Optional<FileSlice> z = offset == 0 ? blob.zstdFile() : Optional.empty();
    if (z.isPresent()) {
      sendSlice(sender, z.get(), 0, z.get().count());
      return;
    }
    try (Zstd.StreamCompressor c = new Zstd.StreamCompressor(blob.openStream(offset), CHUNK_SIZE)) {
      ByteBuffer chunk;
      while ((chunk = c.next()) != null) {
        if (chunk.hasRemaining()) {
          sender.send(
              ReadResponse.newBuilder().setData(UnsafeByteOperations.unsafeWrap(chunk)).build());
        }
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // QueryWriteStatus

  @Override
  public void queryWriteStatus(
      QueryWriteStatusRequest request, StreamObserver<QueryWriteStatusResponse> out) {
    try {
      ResourceName rn = ResourceName.parseWrite(request.getResourceName());
      QueryWriteStatusResponse.Builder resp = QueryWriteStatusResponse.newBuilder();
      if (cas.contains(BlobKey.cas(rn.digest()))) {
        resp.setCommittedSize(rn.digest().sizeBytes()).setComplete(true);
      } else {
        resp.setCommittedSize(Math.max(0, uploads.committed(request.getResourceName())));
      }
      out.onNext(resp.build());
      out.onCompleted();
    } catch (Exception e) {
      out.onError(Statuses.exception(e));
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Write

  @Override
  public StreamObserver<WriteRequest> write(StreamObserver<WriteResponse> out) {
    return new WriteCall(out);
  }

  private final class WriteCall implements StreamObserver<WriteRequest> {
    private final StreamObserver<WriteResponse> out;
    private String name;
    private ResourceName rn;
    private UploadRegistry.Upload upload;
    private Zstd.Decompressor decompressor;
    private long nextOffset;
    private boolean done;

    WriteCall(StreamObserver<WriteResponse> out) {
      this.out = out;
    }

    @Override
    public void onNext(WriteRequest req) {
      if (done) {
        return;
      }
      try {
        if (rn == null) {
          if (!begin(req)) {
            return;
          }
        } else {
          if (!req.getResourceName().isEmpty() && !req.getResourceName().equals(name)) {
            throw Statuses.invalid("resource_name changed within one Write stream");
          }
          if (req.getWriteOffset() != nextOffset) {
            throw Statuses.invalid(
                "write_offset " + req.getWriteOffset() + ", expected " + nextOffset);
          }
        }
        if (!req.getData().isEmpty()) {
          ByteBuffer data = req.getData().asReadOnlyByteBuffer();
          BlobWriter w = upload.writer;
          if (decompressor != null) {
            decompressor.feed(data, w::write);
          } else {
            w.write(data);
          }
          upload.committed = w.bytesWritten();
          nextOffset += req.getData().size();
        }
        if (req.getFinishWrite()) {
          finish();
        }
      } catch (Exception e) {
        fail(e);
      }
    }

    /** Handles the first request; false if the call already ended (early return or error). */
    private boolean begin(WriteRequest req) throws IOException {
      name = req.getResourceName();
      rn = ResourceName.parseWrite(name);
      Digest digest = rn.digest();
      if (options.tooLarge(digest.sizeBytes())) {
        throw Statuses.invalid("blob of " + digest.sizeBytes()
            + " bytes is over max_cas_blob_size_bytes " + options.maxBlobSize());
      }
      if (req.getWriteOffset() < 0) {
        throw Statuses.invalid("negative write_offset");
      }
      BlobKey key = BlobKey.cas(digest);
      if (cas.contains(key)) {
        earlyReturn();
        return false;
      }
      if (req.getWriteOffset() == 0) {
        upload = uploads.start(name, cas.newWriter(key, digest.sizeBytes()));
      } else {
        switch (uploads.resume(name)) {
          case UploadRegistry.Resumed r -> {
            if (r.upload().committed != req.getWriteOffset()) {
              uploads.park(r.upload());
              done = true;
              out.onError(Statuses.invalid("write_offset " + req.getWriteOffset()
                  + " does not match the " + r.upload().committed
                  + " bytes committed (see QueryWriteStatus)"));
              return false;
            }
            upload = r.upload();
          }
          case UploadRegistry.Busy b -> {
            done = true;
            out.onError(Status.ABORTED
                .withDescription("another Write stream is feeding this upload").asRuntimeException());
            return false;
          }
          case UploadRegistry.NotFound n -> {
            done = true;
            out.onError(Statuses.invalid("write_offset " + req.getWriteOffset()
                + " but no upload of this name to resume (QueryWriteStatus reports 0)"));
            return false;
          }
        }
      }
      if (rn.compressed()) {
        decompressor = new Zstd.Decompressor();
      }
      nextOffset = req.getWriteOffset();
      return true;
    }

    private void earlyReturn() {
      done = true;
      long committed = rn.compressed() ? -1 : rn.digest().sizeBytes();
      out.onNext(WriteResponse.newBuilder().setCommittedSize(committed).build());
      out.onCompleted();
    }

    private void finish() throws IOException {
      if (decompressor != null && !decompressor.atFrameBoundary()) {
        throw Statuses.invalid("compressed data ends inside a zstd frame");
      }
      done = true;
      UploadRegistry.Upload u = upload;
      try {
        u.writer.commit();
      } finally {
        uploads.finish(u);
        u.writer.close();
        closeDecompressor();
      }
      // Uncompressed: the blob's size. Compressed: the offset after the last byte received.
      out.onNext(WriteResponse.newBuilder()
          .setCommittedSize(rn.compressed() ? nextOffset : rn.digest().sizeBytes()).build());
      out.onCompleted();
    }

    /** A request error: the upload is discarded (nothing stored) and the call fails. */
    private void fail(Exception e) {
      Status status = Statuses.of(e);
      done = true;
      if (upload != null) {
        uploads.finish(upload);
        upload.writer.close();
        upload = null;
      }
      closeDecompressor();
      try {
        out.onError(status.asRuntimeException());
      } catch (IllegalStateException alreadyClosed) {
        log.debug("write call already closed", alreadyClosed);
      }
    }

    /** The client cancelled, the deadline passed or the connection broke. */
    @Override
    public void onError(Throwable t) {
      if (done) {
        return;
      }
      done = true;
      closeDecompressor();
      if (upload != null) {
        uploads.park(upload);
      }
    }

    /** The client half-closed; fine only after finish_write. */
    @Override
    public void onCompleted() {
      if (done) {
        return;
      }
      done = true;
      closeDecompressor();
      if (upload != null) {
        uploads.park(upload);
      }
      out.onError(Statuses.invalid("Write stream closed without finish_write"));
    }

    private void closeDecompressor() {
      if (decompressor != null) {
        decompressor.close();
        decompressor = null;
      }
    }
  }
}
