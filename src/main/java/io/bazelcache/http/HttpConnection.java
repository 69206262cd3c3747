package io.bazelcache.http;

import io.bazelcache.storage.FileSlice;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.codec.DecoderResult;
import io.netty.handler.codec.TooLongFrameException;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.DefaultHttpContent;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpObject;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.handler.codec.http.TooLongHttpHeaderException;
import io.netty.handler.codec.http.TooLongHttpLineException;
import io.netty.handler.timeout.IdleState;
import io.netty.handler.timeout.IdleStateEvent;
import io.netty.util.ReferenceCountUtil;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.nio.channels.ClosedChannelException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One HTTP/1.1 connection. The event loop only decodes and enqueues; a virtual thread per connection takes the
 * decoded messages in order and serves the requests one after the other (so pipelining and keep-alive need nothing
 * special), doing the blocking store work there. Request bodies flow through a queue whose size is bounded by turning
 * the channel's autoRead off while it holds more than {@link #HIGH_WATER} bytes. Responses are written from the
 * virtual thread, waiting while the channel is not writable.
 */
final class HttpConnection extends ChannelInboundHandlerAdapter {
  private static final Logger log = LoggerFactory.getLogger(HttpConnection.class);
  private static final Logger accessLog = LoggerFactory.getLogger("io.bazelcache.http.access");

  static final int HIGH_WATER = 1 << 20;
  static final int LOW_WATER = 256 << 10;
  static final int CHUNK = 64 << 10;
  /** Bodies of at most this many unread bytes are drained after a response instead of closing the connection. */
  private static final long DRAIN_LIMIT = 64 << 10;
  private static final int REQUEST_WEIGHT = 512;
  private static final long LINGER_DISCARD_LIMIT = 64L << 20;

  private static final Object CLOSED = new Object();

  private final HttpCacheServer server;
  private final LinkedBlockingQueue<Object> inbound = new LinkedBlockingQueue<>();
  private final AtomicLong pendingBytes = new AtomicLong();
  private final AtomicInteger requestsPending = new AtomicInteger();
  private final ReentrantLock writeLock = new ReentrantLock();
  private final Condition writable = writeLock.newCondition();
  private volatile boolean readingPaused;
  /** The worker waits for request body bytes from the client. */
  private volatile boolean awaitingBody;
  /** The worker waits for the client to take response bytes. */
  private volatile boolean awaitingOutput;
  private volatile Channel channel;
  private boolean closedSeen;
  /** Whether the last request's body was left (partly) unread. */
  private boolean unreadInput;

  HttpConnection(HttpCacheServer server) {
    this.server = server;
  }

  Channel channel() {
    return channel;
  }

  /** Asks the connection to end once idle; called by the server's shutdown. Runs the check on the event loop. */
  void closeWhenIdle() {
    Channel ch = channel;
    if (ch == null) {
      return;
    }
    ch.eventLoop().execute(() -> {
      if (requestsPending.get() == 0) {
        ch.close();
      }
    });
  }

  // ---------------------------------------------------------------- event loop side

  @Override
  public void channelActive(ChannelHandlerContext ctx) throws Exception {
    channel = ctx.channel();
    server.connectionOpened(this);
    Thread.ofVirtual().name("http-" + ctx.channel().remoteAddress()).start(this::serve);
    super.channelActive(ctx);
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (!(msg instanceof HttpObject)) {
      ReferenceCountUtil.release(msg);
      return;
    }
    if (msg instanceof HttpRequest) {
      requestsPending.incrementAndGet();
    }
    long total = pendingBytes.addAndGet(weight(msg));
    server.notePendingBodyBytes(total);
    inbound.add(msg);
    if (total > HIGH_WATER && !readingPaused) {
      readingPaused = true;
      ctx.channel().config().setAutoRead(false);
    }
  }

  @Override
  public void channelWritabilityChanged(ChannelHandlerContext ctx) throws Exception {
    signalWritable();
    super.channelWritabilityChanged(ctx);
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) throws Exception {
    inbound.add(CLOSED);
    signalWritable();
    super.channelInactive(ctx);
  }

  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
    if (evt instanceof IdleStateEvent e) {
      String why = null;
      if (e.state() == IdleState.READER_IDLE) {
        if (requestsPending.get() == 0) {
          why = "idle between requests";
        } else if (awaitingBody && inbound.isEmpty()) {
          why = "request body stalled";
        }
      } else if (e.state() == IdleState.WRITER_IDLE && awaitingOutput) {
        why = "client stopped reading the response";
      }
      if (why != null) {
        log.debug("closing connection {}: {}", ctx.channel().remoteAddress(), why);
        ctx.close();
      }
      return;
    }
    super.userEventTriggered(ctx, evt);
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    if (cause instanceof IOException) {
      log.debug("connection {}: {}", ctx.channel().remoteAddress(), cause.toString());
    } else {
      log.warn("connection {}: unexpected error", ctx.channel().remoteAddress(), cause);
    }
    ctx.close();
  }

  private static long weight(Object msg) {
    long w = 0;
    if (msg instanceof HttpContent c) {
      w += c.content().readableBytes() + 32;
    }
    if (msg instanceof HttpRequest) {
      w += REQUEST_WEIGHT;
    }
    return w;
  }

  private void resumeReadingIfDrained() {
    if (readingPaused && pendingBytes.get() < LOW_WATER) {
      readingPaused = false;
      channel.config().setAutoRead(true);
    }
  }

  private void signalWritable() {
    writeLock.lock();
    try {
      writable.signalAll();
    } finally {
      writeLock.unlock();
    }
  }

  // ---------------------------------------------------------------- worker side

  /** Next inbound message, or {@link #CLOSED} forever once the channel is gone. */
  private Object take() throws InterruptedException {
    if (closedSeen) {
      return CLOSED;
    }
    Object m = inbound.take();
    return accountTaken(m);
  }

  private Object poll(long millis) throws InterruptedException {
    if (closedSeen) {
      return CLOSED;
    }
    Object m = inbound.poll(millis, TimeUnit.MILLISECONDS);
    return m == null ? null : accountTaken(m);
  }

  private Object accountTaken(Object m) {
    if (m == CLOSED) {
      closedSeen = true;
      return m;
    }
    long left = pendingBytes.addAndGet(-weight(m));
    if (readingPaused && left < LOW_WATER) {
      channel.eventLoop().execute(this::resumeReadingIfDrained);
    }
    return m;
  }

  private void serve() {
    server.workerStarted();
    try {
      while (true) {
        Object m = take();
        if (m == CLOSED) {
          break;
        }
        if (!(m instanceof HttpRequest req)) {
          // Leftover body of a request whose response was already sent; cannot happen with draining, but be safe.
          ReferenceCountUtil.release(m);
          continue;
        }
        boolean keepOpen;
        try {
          keepOpen = handle(req);
        } finally {
          requestsPending.decrementAndGet();
        }
        if (!keepOpen || server.isShuttingDown()) {
          lingeringClose();
          break;
        }
      }
    } catch (InterruptedException e) {
      channel.close();
    } catch (Throwable t) {
      log.error("HTTP connection worker failed", t);
      channel.close();
    } finally {
      // Once the close has completed on the event loop nothing more is read, so the queue can be emptied for good.
      channel.close().addListener(f -> {
        Object m;
        while ((m = inbound.poll()) != null) {
          ReferenceCountUtil.release(m);
        }
        server.connectionClosed(this);
      });
    }
  }

  /**
   * Closes after a response, but if the client may still be sending a body we did not read, first half-closes and
   * discards input for a moment: closing a socket with unread input sends a reset, which can destroy the response
   * (e.g. a 413) before the client reads it.
   */
  private void lingeringClose() throws InterruptedException {
    if (unreadInput && channel.isActive() && channel instanceof DuplexChannel d) {
      d.shutdownOutput().await(1, TimeUnit.SECONDS);
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
      long discarded = 0;
      while (discarded < LINGER_DISCARD_LIMIT) {
        long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
        if (left <= 0) {
          break;
        }
        Object m = poll(left);
        if (m == null || m == CLOSED) {
          break;
        }
        discarded += weight(m);
        if (m instanceof HttpRequest) {
          requestsPending.decrementAndGet();
        }
        ReferenceCountUtil.release(m);
      }
    }
    channel.close();
  }

  /** Serves one request; returns whether the connection may carry another. */
  private boolean handle(HttpRequest req) throws InterruptedException {
    long start = System.nanoTime();
    Exchange ex = new Exchange(req);
    try {
      return serveOne(req, ex);
    } finally {
      unreadInput = !ex.body.isDone();
      long nanos = System.nanoTime() - start;
      if (server.options().accessLog() && accessLog.isInfoEnabled()) {
        accessLog.info("{} {} {} {}", req.method().name(), ex.status, clientHost(), req.uri());
      }
      try {
        server.options().observer().onRequest(ex.handler, req.method().name(), ex.status, nanos);
      } catch (RuntimeException e) {
        log.warn("request observer failed", e);
      }
    }
  }

  private String clientHost() {
    if (channel.remoteAddress() instanceof java.net.InetSocketAddress a && a.getAddress() != null) {
      return a.getAddress().getHostAddress();
    }
    return String.valueOf(channel.remoteAddress());
  }

  private boolean serveOne(HttpRequest req, Exchange ex) throws InterruptedException {
    try {
      DecoderResult dr = req.decoderResult();
      if (dr.isFailure()) {
        Throwable cause = dr.cause();
        HttpResponseStatus status;
        if (cause instanceof TooLongHttpLineException) {
          status = HttpResponseStatus.REQUEST_URI_TOO_LONG;
        } else if (cause instanceof TooLongHttpHeaderException) {
          status = HttpResponseStatus.REQUEST_HEADER_FIELDS_TOO_LARGE;
        } else if (cause instanceof TooLongFrameException) {
          status = HttpResponseStatus.REQUEST_HEADER_FIELDS_TOO_LARGE;
        } else {
          status = HttpResponseStatus.BAD_REQUEST;
        }
        ex.keepAlive = false;
        ex.sendError(status, "malformed request: " + cause.getMessage());
        return false;
      }
      if (isUnsupportedExpectation(req)) {
        ex.keepAlive = false;
        ex.sendError(HttpResponseStatus.EXPECTATION_FAILED, "unsupported Expect header");
        return false;
      }
      server.service().handle(ex);
    } catch (ClientGoneException e) {
      log.debug("{} {}: client went away: {}", req.method(), req.uri(), e.getMessage());
      return false;
    } catch (Exception e) {
      if (!ex.responded) {
        log.error("{} {}: unexpected error", req.method(), req.uri(), e);
        try {
          ex.keepAlive = false;
          ex.sendError(HttpResponseStatus.INTERNAL_SERVER_ERROR, "internal error");
        } catch (Exception e2) {
          log.debug("could not send error response", e2);
        }
      } else {
        log.warn("{} {}: failed after the response started: {}", req.method(), req.uri(), e.toString());
      }
      return false;
    } finally {
      ex.body.releaseHeld();
    }
    if (!ex.keepAlive || !ex.responded) {
      return false;
    }
    return ex.body.finishQuietly();
  }

  private static boolean isUnsupportedExpectation(HttpRequest req) {
    String expect = req.headers().get(HttpHeaderNames.EXPECT);
    return expect != null && !expect.trim().equalsIgnoreCase("100-continue");
  }

  /** Thrown when the peer closed the connection while we were reading its request or writing our response. */
  static final class ClientGoneException extends IOException {
    ClientGoneException(String message) {
      super(message);
    }
  }

  /** One request/response on this connection, as seen by {@link CacheService}. */
  final class Exchange {
    final HttpRequest request;
    final BodyStream body;
    boolean keepAlive;
    boolean responded;
    /** Status of the response sent, 0 before. */
    int status;
    /** Metric label: the method for cache requests, "status" or "metrics" for those pages. */
    String handler;
    private boolean continueSent;

    Exchange(HttpRequest request) {
      this.request = request;
      this.keepAlive = HttpUtil.isKeepAlive(request);
      this.handler = request.method().name();
      this.body = new BodyStream(request);
    }

    HttpRequest request() {
      return request;
    }

    InputStream body() {
      return body;
    }

    /** The peer as {@code host:port} ({@code [v6]:port}), like Go's RemoteAddr. */
    String remoteAddress() {
      if (channel.remoteAddress() instanceof java.net.InetSocketAddress a && a.getAddress() != null) {
        String host = a.getAddress().getHostAddress();
        return (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + a.getPort();
      }
      return String.valueOf(channel.remoteAddress());
    }

    /** The connection's TLS session, or null over plain HTTP. */
    javax.net.ssl.SSLSession tlsSession() {
      io.netty.handler.ssl.SslHandler ssl = channel.pipeline().get(io.netty.handler.ssl.SslHandler.class);
      return ssl == null ? null : ssl.engine().getSession();
    }

    boolean zeroCopyAllowed() {
      return server.options().zeroCopy() && channel.pipeline().get(io.netty.handler.ssl.SslHandler.class) == null;
    }

    /** Before reading a body whose sender waits for {@code 100 Continue}: tell it to go on. */
    void sendContinueIfExpected() throws IOException {
      if (!continueSent && !body.done && HttpUtil.is100ContinueExpected(request)) {
        continueSent = true;
        await(write(new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.CONTINUE,
            Unpooled.EMPTY_BUFFER)));
      }
    }

    void sendError(HttpResponseStatus status, String message) throws IOException {
      sendFull(status, "text/plain; charset=utf-8", (message + "\n").getBytes(StandardCharsets.UTF_8));
    }

    void sendUnauthorized() throws IOException {
      byte[] content = "Unauthorized\n".getBytes(StandardCharsets.UTF_8);
      FullHttpResponse resp = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.UNAUTHORIZED,
          Unpooled.wrappedBuffer(content));
      resp.headers().set(HttpHeaderNames.CONTENT_TYPE, "text/plain; charset=utf-8");
      resp.headers().set(HttpHeaderNames.WWW_AUTHENTICATE, "Basic realm=\"bazel-cache\"");
      HttpUtil.setContentLength(resp, content.length);
      sendFull(resp);
    }

    void sendFull(HttpResponseStatus status, String contentType, byte[] content) throws IOException {
      FullHttpResponse resp = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status,
          Unpooled.wrappedBuffer(content));
      if (contentType != null) {
        resp.headers().set(HttpHeaderNames.CONTENT_TYPE, contentType);
      }
      if (status.code() >= 400) {
        resp.headers().set("X-Content-Type-Options", "nosniff");
      }
      HttpUtil.setContentLength(resp, content.length);
      sendFull(resp);
    }

    /** For HEAD: a response with headers (Content-Length as given) and no body. */
    void sendHeadersOnly(HttpResponseStatus status, long contentLength) throws IOException {
      FullHttpResponse resp = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status, Unpooled.EMPTY_BUFFER);
      HttpUtil.setContentLength(resp, contentLength);
      sendFull(resp);
    }

    private void sendFull(FullHttpResponse resp) throws IOException {
      if (resp.status().code() >= 400 && !body.done && !body.drainable()) {
        keepAlive = false; // an unread upload follows; closing is the only way to skip it
      }
      prepare(resp);
      responded = true;
      await(write(resp));
    }

    private void prepare(HttpResponse resp) {
      status = resp.status().code();
      if (server.isShuttingDown()) {
        keepAlive = false;
      }
      if (!keepAlive) {
        resp.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
      } else if (request.protocolVersion().equals(HttpVersion.HTTP_1_0)) {
        resp.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.KEEP_ALIVE);
      }
    }

    /** Sends {@code head} (with Content-Length set by the caller) followed by a file region, without copying. */
    void sendFile(HttpResponse head, FileSlice slice) throws IOException {
      prepare(head);
      responded = true;
      channel.write(head);
      channel.write(new SliceFileRegion(slice));
      await(write(LastHttpContent.EMPTY_LAST_CONTENT));
    }

    /**
     * Sends {@code head} and returns a stream for the body; each {@link OutputStream#write} is passed on in chunks,
     * waiting while the channel is not writable. {@code close()} ends the body and waits until it is sent.
     */
    OutputStream startBody(HttpResponse head) throws IOException {
      prepare(head);
      responded = true;
      channel.write(head); // flushed with the first chunk
      return new ChunkOutputStream();
    }

    private ChannelFuture write(Object msg) throws IOException {
      awaitWritable();
      return channel.writeAndFlush(msg);
    }

    private void awaitWritable() throws IOException {
      if (channel.isWritable()) {
        return;
      }
      writeLock.lock();
      awaitingOutput = true;
      try {
        while (!channel.isWritable()) {
          if (!channel.isActive()) {
            throw new ClientGoneException("connection closed while sending");
          }
          writable.await(100, TimeUnit.MILLISECONDS);
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("interrupted while sending");
      } finally {
        awaitingOutput = false;
        writeLock.unlock();
      }
    }

    private void await(ChannelFuture f) throws IOException {
      awaitingOutput = true;
      try {
        f.await();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("interrupted while sending");
      } finally {
        awaitingOutput = false;
      }
      if (!f.isSuccess()) {
        Throwable c = f.cause();
        if (c instanceof ClosedChannelException || c instanceof IOException) {
          throw new ClientGoneException("send failed: " + c);
        }
        throw new IOException("send failed", c);
      }
    }

    private final class ChunkOutputStream extends OutputStream {
      private ByteBuf buf;
      private boolean closed;

      @Override
      public void write(int b) throws IOException {
        write(new byte[] {(byte) b}, 0, 1);
      }

      @Override
      public void write(byte[] b, int off, int len) throws IOException {
        if (closed) {
          throw new IOException("stream closed");
        }
        while (len > 0) {
          if (buf == null) {
            buf = channel.alloc().buffer(CHUNK, CHUNK);
          }
          int n = Math.min(len, buf.writableBytes());
          buf.writeBytes(b, off, n);
          off += n;
          len -= n;
          if (!buf.isWritable()) {
            flushChunk();
          }
        }
      }

      private void flushChunk() throws IOException {
        ByteBuf b = buf;
        buf = null;
        if (b != null && b.isReadable()) {
          Exchange.this.write(new DefaultHttpContent(b));
        } else if (b != null) {
          b.release();
        }
      }

      @Override
      public void flush() throws IOException {
        flushChunk();
      }

      @Override
      public void close() throws IOException {
        if (closed) {
          return;
        }
        closed = true;
        flushChunk();
        await(Exchange.this.write(LastHttpContent.EMPTY_LAST_CONTENT));
      }

      /** Drops buffered bytes without sending (on failure). */
      void abandon() {
        closed = true;
        if (buf != null) {
          buf.release();
          buf = null;
        }
      }
    }

    /** Releases what a failed streaming response had buffered; the caller then closes the connection. */
    void abandon(OutputStream out) {
      if (out instanceof ChunkOutputStream c) {
        c.abandon();
      }
      keepAlive = false;
    }
  }

  /** The body of the current request, read from the inbound queue. Never reads into the next request. */
  final class BodyStream extends InputStream {
    private final HttpRequest request;
    private ByteBuf current;
    private boolean done;
    private long consumed;

    BodyStream(HttpRequest request) {
      this.request = request;
      if (request instanceof LastHttpContent) {
        done = true; // a complete request object: nothing follows
      }
    }

    boolean isDone() {
      return done;
    }

    long consumed() {
      return consumed;
    }

    /** Whether what remains unread is known to be small and already on its way, so draining beats closing. */
    boolean drainable() {
      if (done) {
        return true;
      }
      if (HttpUtil.is100ContinueExpected(request)) {
        return false; // the client waits for our go-ahead before sending the body
      }
      if (HttpUtil.isTransferEncodingChunked(request)) {
        return false; // unknown length
      }
      long cl = HttpUtil.getContentLength(request, 0L); // neither header: no body
      return cl - consumed <= DRAIN_LIMIT;
    }

    private boolean fill() throws IOException {
      while (current == null || !current.isReadable()) {
        if (current != null) {
          current.release();
          current = null;
        }
        if (done) {
          return false;
        }
        Object m;
        awaitingBody = true;
        try {
          m = take();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new InterruptedIOException("interrupted while reading the request body");
        } finally {
          awaitingBody = false;
        }
        if (m == CLOSED) {
          throw new ClientGoneException("connection closed after " + consumed + " body bytes");
        }
        if (m instanceof HttpRequest) {
          // Impossible: the decoder always ends a body with LastHttpContent before the next request.
          ReferenceCountUtil.release(m);
          throw new IOException("request body ended without LastHttpContent");
        }
        HttpContent c = (HttpContent) m;
        if (c.decoderResult().isFailure()) {
          c.release();
          done = true;
          throw new MalformedBodyException("malformed request body: " + c.decoderResult().cause().getMessage());
        }
        if (c instanceof LastHttpContent) {
          done = true;
        }
        current = c.content();
      }
      return true;
    }

    @Override
    public int read() throws IOException {
      if (!fill()) {
        return -1;
      }
      consumed++;
      return current.readUnsignedByte();
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      if (len == 0) {
        return 0;
      }
      if (!fill()) {
        return -1;
      }
      int n = Math.min(len, current.readableBytes());
      current.readBytes(b, off, n);
      consumed += n;
      return n;
    }

    /**
     * Reads the next chunk of the body as a buffer the caller must release, or null at the end. Avoids a copy when
     * the consumer takes ByteBuffers.
     */
    ByteBuf readChunk() throws IOException {
      if (!fill()) {
        return null;
      }
      ByteBuf c = current;
      current = null;
      consumed += c.readableBytes();
      return c;
    }

    void releaseHeld() {
      if (current != null) {
        current.release();
        current = null;
      }
    }

    /** After the response: skips a small unread rest of the body; false if the connection must close instead. */
    boolean finishQuietly() throws InterruptedException {
      if (done) {
        return true;
      }
      if (!drainable()) {
        return false;
      }
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
      while (!done) {
        long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
        if (left <= 0) {
          return false;
        }
        Object m = poll(left);
        if (m == null || m == CLOSED || m instanceof HttpRequest) {
          if (m instanceof HttpRequest) {
            ReferenceCountUtil.release(m);
          }
          return false;
        }
        HttpContent c = (HttpContent) m;
        boolean failed = c.decoderResult().isFailure();
        consumed += c.content().readableBytes();
        done = c instanceof LastHttpContent;
        c.release();
        if (failed || consumed > DRAIN_LIMIT + HttpUtil.getContentLength(request, 0L)) {
          return false;
        }
      }
      return true;
    }

    @Override
    public void close() {
      releaseHeld();
    }
  }

  /** A body that is not valid HTTP framing (e.g. a broken chunk): 400, and the connection closes. */
  static final class MalformedBodyException extends IOException {
    MalformedBodyException(String message) {
      super(message);
    }
  }
}
