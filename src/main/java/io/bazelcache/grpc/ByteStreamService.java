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
import java.util.ArrayList;
import java.util.List;
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

  /**
   * Uploads of this size or more hash and write on a thread of their own while the call's thread takes
   * the next requests off the transport; smaller ones (nearly all blobs of a build) are written inline.
   */
  static final long PIPELINE_MIN_SIZE = 2L * 1024 * 1024;

  /** Bytes of requests a Write stream asks the transport for ahead of time (see {@code requestAhead}). */
  static final long REQUEST_AHEAD_BYTES = 1L << 20;

  /** At most this many requests are asked for ahead of time. */
  static final int MAX_REQUESTS_AHEAD = 64;

  /**
   * A waiting writer thread is woken once this many bytes are queued for it (or the upload's last request
   * or an event): one wake-up per 256 KiB instead of one per 16 KiB request.
   */
  static final long WAKE_BYTES = 256L * 1024;

  /** Received bytes an upload's writer thread may lag behind (queued; see {@link HandOff}). */
  static final long HANDOFF_BYTES = 4L * 1024 * 1024;

  private final BlobStore cas;
  private final GrpcOptions options;
  private final UploadRegistry uploads;
  ByteStreamService(BlobStore cas, GrpcOptions options, UploadRegistry uploads) {
    this.cas = cas;
    this.options = options;
    this.uploads = uploads;
  }

  /**
   * The service with Write taking {@link WriteChunk}s: requests parsed in place in the transport's
   * buffers, whose data is hashed and written from there without a copy.
   */
  static io.grpc.ServerServiceDefinition bind(BlobStore cas, GrpcOptions options, UploadRegistry uploads) {
    ByteStreamService service = new ByteStreamService(cas, options, uploads);
    io.grpc.MethodDescriptor<WriteRequest, WriteResponse> generated = ByteStreamGrpc.getWriteMethod();
    io.grpc.MethodDescriptor<WriteChunk, WriteResponse> write =
        generated.toBuilder(WriteChunk.MARSHALLER, generated.getResponseMarshaller()).build();
    return Methods.replace(service.bindService(), io.grpc.ServerMethodDefinition.create(write,
        io.grpc.stub.ServerCalls.asyncClientStreamingCall(service::writeChunks)));
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

  StreamObserver<WriteChunk> writeChunks(StreamObserver<WriteResponse> out) {
    return new WriteCall(out);
  }

  /** A Write stream's end, as seen by the gRPC thread, for the thread that owns the upload. */
  private enum StreamEnd { CLIENT_GONE, HALF_CLOSED }

  /** A request error found by the gRPC thread, for the thread that owns the upload. */
  private record Failure(Exception error) {}

  /**
   * One Write stream. The gRPC callback thread parses and checks each request (resource name, offsets);
   * the upload itself (writer, decompressor, responses) belongs to one thread at a time: the callback
   * thread for small blobs, and for blobs of {@link #PIPELINE_MIN_SIZE} or more a writer thread of the
   * call's own, fed through a {@link HandOff}, so that receiving the next chunks overlaps with hashing
   * and writing the ones before. Once that thread exists the callback thread only queues requests and
   * events for it.
   */
  private final class WriteCall implements StreamObserver<WriteChunk> {
    private final StreamObserver<WriteResponse> out;
    private final io.grpc.stub.ServerCallStreamObserver<WriteResponse> call; // null outside a server call
    // The callback thread's:
    private int requested; // requests asked of the transport and not yet delivered
    private String name;
    private ResourceName rn;
    private long nextOffset;
    private boolean ended; // finish_write seen, or a request error
    private HandOff<Object> handOff; // set once a writer thread owns the upload
    // The owning thread's:
    private UploadRegistry.Upload upload;
    private Zstd.Decompressor decompressor;
    private volatile boolean done; // the call has its outcome (response, error or client gone)

    WriteCall(StreamObserver<WriteResponse> out) {
      this.out = out;
      this.call = out instanceof io.grpc.stub.ServerCallStreamObserver<WriteResponse> s ? s : null;
      if (call != null) {
        call.disableAutoRequest();
        call.request(1);
        requested = 1;
      }
    }

    /**
     * Asks the transport for more requests before they are needed: up to {@link #REQUEST_AHEAD_BYTES} of
     * requests the size of {@code last}, topped up once half are delivered. gRPC's default asks for one
     * more after each request, and each ask wakes the transport's event loop: for Bazel's 16 KiB chunks
     * that is 4,096 wake-ups per 64 MiB.
     */
    private void requestAhead(WriteChunk last) {
      requested--;
      if (call == null || done) {
        return;
      }
      long perRequest = Math.max(1, last.dataSize());
      int target = (int) Math.max(1, Math.min(MAX_REQUESTS_AHEAD, REQUEST_AHEAD_BYTES / perRequest));
      if (requested <= target / 2) {
        call.request(target - requested);
        requested = target;
      }
    }

    @Override
    public void onNext(WriteChunk req) {
      boolean handedOver = false;
      try {
        requestAhead(req);
        if (ended || done) {
          return;
        }
        if (rn == null) {
          if (!begin(req)) {
            return;
          }
        } else {
          if (!req.resourceName().isEmpty() && !req.resourceName().equals(name)) {
            throw Statuses.invalid("resource_name changed within one Write stream");
          }
          if (req.writeOffset() != nextOffset) {
            throw Statuses.invalid(
                "write_offset " + req.writeOffset() + ", expected " + nextOffset);
          }
        }
        nextOffset += req.dataSize();
        ended = req.finishWrite();
        if (handOff == null && (ended || rn.digest().sizeBytes() < PIPELINE_MIN_SIZE)) {
          write(req.data());
          if (ended) {
            finish(req);
          }
          return;
        }
        if (handOff == null) {
          handOff = new HandOff<>(HANDOFF_BYTES, WAKE_BYTES, item -> {
            if (item instanceof WriteChunk c) {
              c.close();
            }
          });
          Thread.ofVirtual().name("ByteStream.Write " + rn.digest()).start(this::drain);
        }
        handedOver = true; // put releases it if the writer thread is gone
        handOff.put(req, req.dataSize(), ended); // the writer wakes per WAKE_BYTES, or for the last
      } catch (Exception e) {
        ended = true;
        if (handOff == null) {
          fail(e);
        } else {
          giveToWriter(new Failure(e));
        }
      } finally {
        if (!handedOver) {
          req.close();
        }
      }
    }

    /** The writer thread: applies queued requests in order until the call has its outcome. */
    private void drain() {
      List<WriteChunk> run = new ArrayList<>();
      try {
        while (!done) {
          List<Object> batch = handOff.takeAll();
          for (int i = 0; i < batch.size(); i++) {
            switch (batch.get(i)) {
              case WriteChunk r -> {
                // Consecutive chunks are written together: one store call (one gathering write, one
                // hand-over to the file side) for everything that queued up meanwhile.
                run.add(r);
                boolean last = r.finishWrite() || i + 1 == batch.size()
                    || !(batch.get(i + 1) instanceof WriteChunk);
                if (last) {
                  applyAll(run);
                  run.clear();
                }
              }
              case Failure f -> fail(f.error());
              case StreamEnd e -> streamEnded(e);
              default -> throw new IllegalStateException("unexpected " + batch.get(i));
            }
          }
        }
      } catch (InterruptedException e) {
        fail(Status.CANCELLED.withDescription("server shutting down").asRuntimeException());
      } catch (RuntimeException | Error e) {
        fail(e instanceof Exception ex ? ex : new RuntimeException(e));
        throw e;
      } finally {
        run.forEach(WriteChunk::close);
        handOff.close();
      }
    }

    /**
     * Writes chunks received in a row (the last may finish the upload). The store releases them once
     * written, which may be after this returns: hashing the next chunks need not wait for the file.
     */
    private void applyAll(List<WriteChunk> run) {
      List<WriteChunk> chunks = List.copyOf(run);
      run.clear();
      boolean handedOver = false;
      try {
        if (done) {
          return;
        }
        List<ByteBuffer> all = new ArrayList<>();
        for (WriteChunk r : chunks) {
          all.addAll(r.data());
        }
        handedOver = true;
        write(all, () -> chunks.forEach(WriteChunk::close));
        WriteChunk last = chunks.get(chunks.size() - 1);
        if (last.finishWrite()) {
          finish(last);
        }
      } catch (Exception e) {
        fail(e);
      } finally {
        if (!handedOver) {
          chunks.forEach(WriteChunk::close);
        }
      }
    }

    private void giveToWriter(Object event) {
      try {
        handOff.put(event, 0);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }

    /** Handles the first request; false if the call already ended (early return or error). */
    private boolean begin(WriteChunk req) throws IOException {
      name = req.resourceName();
      rn = ResourceName.parseWrite(name);
      Digest digest = rn.digest();
      if (options.tooLarge(digest.sizeBytes())) {
        throw Statuses.invalid("blob of " + digest.sizeBytes()
            + " bytes is over max_cas_blob_size_bytes " + options.maxBlobSize());
      }
      if (req.writeOffset() < 0) {
        throw Statuses.invalid("negative write_offset");
      }
      BlobKey key = BlobKey.cas(digest);
      if (cas.contains(key)) {
        earlyReturn();
        return false;
      }
      if (req.writeOffset() == 0) {
        upload = uploads.start(name, cas.newWriter(key, digest.sizeBytes()));
      } else {
        switch (uploads.resume(name)) {
          case UploadRegistry.Resumed r -> {
            if (r.upload().committed != req.writeOffset()) {
              uploads.park(r.upload());
              done = true;
              out.onError(Statuses.invalid("write_offset " + req.writeOffset()
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
            out.onError(Statuses.invalid("write_offset " + req.writeOffset()
                + " but no upload of this name to resume (QueryWriteStatus reports 0)"));
            return false;
          }
        }
      }
      if (rn.compressed()) {
        decompressor = new Zstd.Decompressor();
      }
      nextOffset = req.writeOffset();
      return true;
    }

    private void earlyReturn() {
      done = true;
      long committed = rn.compressed() ? -1 : rn.digest().sizeBytes();
      out.onNext(WriteResponse.newBuilder().setCommittedSize(committed).build());
      out.onCompleted();
    }

    /** Writes received data, of one request or several in a row (the owning thread), before returning. */
    private void write(List<ByteBuffer> data) throws IOException {
      write(data, null);
    }

    /**
     * Like {@link #write(List)}, but a non-null {@code release} lets the store keep the buffers after this
     * returns: it runs once the store is done with them.
     */
    private void write(List<ByteBuffer> data, Runnable release) throws IOException {
      BlobWriter w = upload.writer;
      try {
        if (decompressor != null) {
          for (ByteBuffer b : data) {
            decompressor.feed(b.duplicate(), w::write);
          }
        } else if (release != null) {
          Runnable r = release;
          release = null; // the store runs it now
          w.write(data, r);
        } else if (!data.isEmpty()) {
          w.write(data);
        }
      } finally {
        if (release != null) {
          release.run();
        }
      }
      upload.committed = w.bytesWritten();
    }

    /** Commits the upload after the request with finish_write (the owning thread). */
    private void finish(WriteChunk last) throws IOException {
      if (decompressor != null && !decompressor.atFrameBoundary()) {
        throw Statuses.invalid("compressed data ends inside a zstd frame");
      }
      UploadRegistry.Upload u = upload;
      upload = null; // committed or discarded below; fail() has nothing left to discard
      try {
        u.writer.commit();
      } finally {
        uploads.finish(u);
        u.writer.close();
        closeDecompressor();
      }
      done = true;
      // Uncompressed: the blob's size. Compressed: the offset after the last byte received.
      out.onNext(WriteResponse.newBuilder()
          .setCommittedSize(rn.compressed()
              ? last.writeOffset() + last.dataSize()
              : rn.digest().sizeBytes())
          .build());
      out.onCompleted();
    }

    /** A request error: the upload is discarded (nothing stored) and the call fails (the owning thread). */
    private void fail(Exception e) {
      if (done) {
        return;
      }
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

    /** The stream ended without finish_write: keep the upload for resumption (the owning thread). */
    private void streamEnded(StreamEnd how) {
      if (done) {
        return;
      }
      done = true;
      closeDecompressor();
      if (upload != null) {
        uploads.park(upload);
      }
      if (how == StreamEnd.HALF_CLOSED) {
        out.onError(Statuses.invalid("Write stream closed without finish_write"));
      }
    }

    /** The client cancelled, the deadline passed or the connection broke. */
    @Override
    public void onError(Throwable t) {
      endOfStream(StreamEnd.CLIENT_GONE);
    }

    /** The client half-closed; fine only after finish_write. */
    @Override
    public void onCompleted() {
      endOfStream(StreamEnd.HALF_CLOSED);
    }

    private void endOfStream(StreamEnd how) {
      if (handOff == null) {
        streamEnded(how);
        return;
      }
      if (upload != null) {
        upload.streamEnded = true; // QueryWriteStatus waits for the writer thread to park it
      }
      giveToWriter(how);
    }

    private void closeDecompressor() {
      if (decompressor != null) {
        decompressor.close();
        decompressor = null;
      }
    }
  }
}
