package io.bazelcache.http;

import com.github.luben.zstd.ZstdIOException;
import com.github.luben.zstd.ZstdInputStreamNoFinalizer;
import com.github.luben.zstd.ZstdOutputStreamNoFinalizer;
import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.http.HttpConnection.ClientGoneException;
import io.bazelcache.http.HttpConnection.Exchange;
import io.bazelcache.http.HttpConnection.MalformedBodyException;
import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.BlobSizeMismatchException;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.BlobTooLargeException;
import io.bazelcache.storage.BlobWriter;
import io.bazelcache.storage.DigestMismatchException;
import io.bazelcache.storage.FileSlice;
import io.bazelcache.storage.InsufficientStorageException;
import io.bazelcache.storage.InvalidEntryException;
import io.bazelcache.storage.Kind;
import io.bazelcache.storage.StoreStats;
import io.netty.buffer.ByteBuf;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import java.io.ByteArrayOutputStream;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import java.util.Optional;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The cache semantics of the HTTP endpoint (bazel-remote's, with stricter status codes), run on a connection's
 * virtual thread. See {@link HttpCacheServer} for the summary.
 */
final class CacheService {
  private static final Logger log = LoggerFactory.getLogger(CacheService.class);
  private static final String OCTET = "application/octet-stream";
  private static final String JSON = "application/json";
  private static final String X_DIGEST_SIZE = "X-Digest-SizeBytes";

  private final BlobStore casStore;
  private final BlobStore acStore;
  private final HttpCacheOptions options;
  private final Supplier<StoreStats> stats;
  private final AcCodec acCodec;
  /** Set when the server is about to stop: {@code /status} answers 503 so load balancers stop sending work. */
  private volatile boolean draining;

  CacheService(BlobStore casStore, BlobStore acStore, HttpCacheOptions options, Supplier<StoreStats> stats,
      AcCodec acCodec) {
    this.casStore = casStore;
    this.acStore = acStore;
    this.options = options;
    this.stats = stats;
    this.acCodec = acCodec;
  }

  /** Where an entry lives: its key and the store that holds it. */
  private record Location(BlobKey key, BlobStore store) {
    boolean validatedAc() {
      return key.kind() == Kind.AC;
    }
  }

  void handle(Exchange ex) throws IOException {
    HttpRequest req = ex.request();
    HttpMethod m = req.method();
    boolean read = m.equals(HttpMethod.GET) || m.equals(HttpMethod.HEAD);
    CachePath.Target target;
    CachePath.BadPathException badPath = null;
    try {
      target = CachePath.parse(req.uri());
    } catch (CachePath.BadPathException e) {
      target = null;
      badPath = e;
    }
    HttpCacheOptions.Authorizer auth = options.authorizer();
    // GET/HEAD /status stays open for readiness probes; everything else (bad paths too) asks the authorizer first.
    if (auth != null && !(read && target instanceof CachePath.Status)) {
      HttpCacheOptions.Access access = read ? HttpCacheOptions.Access.READ : HttpCacheOptions.Access.WRITE;
      if (!auth.permits(access, req.headers().get(HttpHeaderNames.AUTHORIZATION), ex.tlsSession())) {
        ex.sendUnauthorized();
        return;
      }
    }
    if (badPath != null) {
      ex.sendError(HttpResponseStatus.BAD_REQUEST, badPath.getMessage());
      return;
    }
    switch (target) {
      case CachePath.Status s -> {
        ex.handler = "status";
        if (m.equals(HttpMethod.GET) || m.equals(HttpMethod.HEAD)) {
          status(ex);
        } else {
          ex.sendError(HttpResponseStatus.METHOD_NOT_ALLOWED, "Method '" + m.name() + "' not supported.");
        }
      }
      case CachePath.Unknown u -> {
        if (u.path().equals("/metrics")) {
          ex.handler = "metrics";
          metrics(ex);
        } else {
          // bazel-remote answers 400 for every path outside [prefix/](ac|cas)/<hash>, /status and /metrics.
          ex.sendError(HttpResponseStatus.BAD_REQUEST, "Invalid path: want [instance/](ac|cas)/<64 hex>");
        }
      }
      case CachePath.Cache c -> {
        Location loc;
        try {
          loc = locate(c.path());
        } catch (Digest.InvalidDigestException e) {
          ex.sendError(HttpResponseStatus.BAD_REQUEST, e.getMessage());
          return;
        }
        try {
          if (m.equals(HttpMethod.GET)) {
            get(ex, loc);
          } else if (m.equals(HttpMethod.HEAD)) {
            head(ex, loc);
          } else if (m.equals(HttpMethod.PUT)) {
            put(ex, loc);
          } else {
            ex.sendError(HttpResponseStatus.METHOD_NOT_ALLOWED, "Method '" + m.name() + "' not supported.");
          }
        } catch (ClientGoneException e) {
          throw e;
        } catch (IOException | IllegalArgumentException e) {
          fail(ex, loc, e);
        }
      }
    }
  }

  private Location locate(CachePath p) {
    if (p.area() == CachePath.Area.CAS) {
      return new Location(new BlobKey(Kind.CAS, DigestFunction.SHA256, p.hash()), casStore);
    }
    String hash = options.enableAcKeyInstanceMangling() ? CachePath.mangleAcHash(p.hash(), p.instance()) : p.hash();
    if (options.disableHttpAcValidation()) {
      return new Location(new BlobKey(Kind.RAW, DigestFunction.SHA256, hash), casStore);
    }
    return new Location(new BlobKey(Kind.AC, DigestFunction.SHA256, hash), acStore);
  }

  /** Maps a failure to its status, or rethrows when the response has already started. */
  private void fail(Exchange ex, Location loc, Exception e) throws IOException {
    if (ex.responded) {
      if (e instanceof IOException io) {
        throw io;
      }
      throw new IOException(e);
    }
    HttpResponseStatus status;
    String msg = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    String method = ex.request().method().name();
    if (e instanceof DigestMismatchException || e instanceof BlobSizeMismatchException
        || e instanceof InvalidEntryException || e instanceof Digest.InvalidDigestException
        || e instanceof MalformedBodyException) {
      status = HttpResponseStatus.BAD_REQUEST;
      log.debug("{} {}: {}", method, loc.key(), msg);
    } else if (e instanceof ZstdIOException) {
      status = HttpResponseStatus.BAD_REQUEST;
      msg = "invalid zstd-encoded request body: " + msg;
      log.debug("{} {}: {}", method, loc.key(), msg);
    } else if (e instanceof BlobTooLargeException) {
      status = HttpResponseStatus.REQUEST_ENTITY_TOO_LARGE;
      log.debug("{} {}: {}", method, loc.key(), msg);
    } else if (e instanceof InsufficientStorageException) {
      status = HttpResponseStatus.INSUFFICIENT_STORAGE;
      log.info("{} {}: {}", method, loc.key(), msg);
    } else if (e instanceof BadRequest) {
      status = HttpResponseStatus.BAD_REQUEST;
      log.debug("{} {}: {}", method, loc.key(), msg);
    } else {
      status = HttpResponseStatus.INTERNAL_SERVER_ERROR;
      log.error("{} {}: {}", method, loc.key(), msg, e);
      msg = "internal error: " + shorten(msg);
    }
    if (e instanceof MalformedBodyException) {
      ex.keepAlive = false;
    }
    ex.sendError(status, msg);
  }

  // ------------------------------------------------------------------------------------------------ GET / HEAD

  private void get(Exchange ex, Location loc) throws IOException {
    Blob blob = loc.store().get(loc.key());
    if (blob == null) {
      ex.sendError(HttpResponseStatus.NOT_FOUND, "Not found");
      return;
    }
    try {
      if (loc.validatedAc()) {
        byte[] data = readAc(blob);
        if (accepts(ex.request().headers().get(HttpHeaderNames.ACCEPT), JSON)) {
          ex.sendFull(HttpResponseStatus.OK, JSON, acCodec.toJson(data));
        } else {
          ex.sendFull(HttpResponseStatus.OK, OCTET, data);
        }
        return;
      }
      boolean zstd = loc.key().kind() == Kind.CAS
          && accepts(ex.request().headers().get(HttpHeaderNames.ACCEPT_ENCODING), "zstd");
      serveBlob(ex, blob, zstd);
    } finally {
      blob.close();
    }
  }

  private byte[] readAc(Blob blob) throws IOException {
    if (blob.size() > options.maxActionResultSize()) {
      throw new IOException("stored action result of " + blob.size() + " bytes exceeds the in-memory limit");
    }
    return blob.readAllBytes();
  }

  private void serveBlob(Exchange ex, Blob blob, boolean zstd) throws IOException {
    long size = blob.size();
    if (!zstd && size == 0) {
      ex.sendFull(HttpResponseStatus.OK, OCTET, new byte[0]);
      return;
    }
    HttpResponse head = new DefaultHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK);
    head.headers().set(HttpHeaderNames.CONTENT_TYPE, OCTET);
    if (zstd) {
      head.headers().set(HttpHeaderNames.CONTENT_ENCODING, "zstd");
      Optional<FileSlice> stored = blob.zstdFile();
      if (stored.isPresent()) {
        sendSlice(ex, head, stored.get());
        return;
      }
      HttpUtil.setTransferEncodingChunked(head, true);
      OutputStream out = ex.startBody(head);
      try {
        try (InputStream in = blob.openStream(0);
            OutputStream z = new ZstdOutputStreamNoFinalizer(new NonClosing(out), options.zstdLevel())) {
          copyExactly(in, z, size);
        }
        out.close();
      } catch (IOException | RuntimeException e) {
        ex.abandon(out);
        throw e;
      }
      return;
    }
    HttpUtil.setContentLength(head, size);
    Optional<FileSlice> raw = blob.rawFile();
    if (raw.isPresent()) {
      sendSlice(ex, head, raw.get());
      return;
    }
    if (size <= HttpConnection.CHUNK) {
      byte[] small;
      try (InputStream in = blob.openStream(0)) {
        small = in.readNBytes((int) size + 1);
      }
      if (small.length != size) {
        throw new IOException("stored blob has " + small.length + " bytes, not its size " + size);
      }
      ex.sendFull(HttpResponseStatus.OK, OCTET, small);
      return;
    }
    OutputStream out = ex.startBody(head);
    try {
      try (InputStream in = blob.openStream(0)) {
        copyExactly(in, out, size);
      }
      out.close();
    } catch (IOException | RuntimeException e) {
      ex.abandon(out);
      throw e;
    }
  }

  private void sendSlice(Exchange ex, HttpResponse head, FileSlice slice) throws IOException {
    HttpUtil.setContentLength(head, slice.count());
    if (ex.zeroCopyAllowed()) {
      ex.sendFile(head, slice);
      return;
    }
    OutputStream out = ex.startBody(head);
    try {
      ByteBuffer buf = ByteBuffer.allocate(HttpConnection.CHUNK);
      long pos = slice.position();
      long end = slice.position() + slice.count();
      while (pos < end) {
        buf.clear().limit((int) Math.min(buf.capacity(), end - pos));
        int n = slice.channel().read(buf, pos);
        if (n < 0) {
          throw new IOException("file ended " + (end - pos) + " bytes early");
        }
        out.write(buf.array(), 0, n);
        pos += n;
      }
      out.close();
    } catch (IOException | RuntimeException e) {
      ex.abandon(out);
      throw e;
    }
  }

  private static void copyExactly(InputStream in, OutputStream out, long size) throws IOException {
    byte[] buf = new byte[HttpConnection.CHUNK];
    long copied = 0;
    int n;
    while ((n = in.read(buf)) > 0) {
      copied += n;
      if (copied > size) {
        throw new IOException("stored blob is longer than its size " + size);
      }
      out.write(buf, 0, n);
    }
    if (copied != size) {
      throw new IOException("stored blob ended after " + copied + " of " + size + " bytes");
    }
  }

  private void head(Exchange ex, Location loc) throws IOException {
    Blob blob = loc.store().get(loc.key());
    if (blob == null) {
      ex.sendHeadersOnly(HttpResponseStatus.NOT_FOUND, 0);
      return;
    }
    try {
      ex.sendHeadersOnly(HttpResponseStatus.OK, blob.size());
    } finally {
      blob.close();
    }
  }

  // ------------------------------------------------------------------------------------------------ PUT

  /** A request the client got wrong, detected by the HTTP layer itself. */
  static final class BadRequest extends IOException {
    BadRequest(String message) {
      super(message);
    }
  }

  private void put(Exchange ex, Location loc) throws IOException {
    HttpRequest req = ex.request();
    String ce = req.headers().get(HttpHeaderNames.CONTENT_ENCODING);
    boolean zstd;
    if (ce == null || ce.isBlank() || ce.trim().equalsIgnoreCase("identity")) {
      zstd = false;
    } else if (ce.trim().equalsIgnoreCase("zstd")) {
      zstd = true;
    } else {
      throw new BadRequest("Unsupported content-encoding: \"" + printable(ce) + "\"");
    }
    long contentLength = HttpUtil.getContentLength(req, -1L);
    String sizeHeader = req.headers().get(X_DIGEST_SIZE);
    long size;
    if (sizeHeader != null) {
      size = parseSize(sizeHeader);
      if (!zstd && contentLength >= 0 && contentLength != size) {
        throw new BadRequest(
            "Content-Length " + contentLength + " does not match " + X_DIGEST_SIZE + " " + size);
      }
    } else if (zstd) {
      throw new BadRequest("PUT with Content-Encoding: zstd needs the " + X_DIGEST_SIZE + " header");
    } else if (contentLength < 0) {
      throw new BadRequest("PUT without Content-Length (key = " + loc.key() + ")");
    } else {
      size = contentLength;
    }
    if (size > options.maxBlobSize()) {
      throw new BlobTooLargeException(
          "Blob size " + size + " exceeds maximum allowed size " + options.maxBlobSize());
    }
    if (zstd && contentLength > compressedBound(size)) {
      throw new BadRequest("zstd body of " + contentLength + " bytes is far larger than any encoding of " + size
          + " bytes");
    }
    if (size == 0 && loc.key().kind() == Kind.CAS && !loc.key().isEmptyCasBlob()) {
      throw new BadRequest("Invalid empty blob hash: \"" + loc.key().hash() + "\"");
    }
    if (loc.validatedAc()) {
      putAc(ex, loc, size, zstd);
    } else {
      putStream(ex, loc, size, zstd);
    }
    ex.sendFull(HttpResponseStatus.OK, null, new byte[0]);
  }

  private static long parseSize(String s) throws BadRequest {
    String t = s.trim();
    if (t.isEmpty() || t.length() > 18 || !t.chars().allMatch(c -> c >= '0' && c <= '9')) {
      throw new BadRequest("PUT with unparseable " + X_DIGEST_SIZE + " header: \"" + printable(s) + "\"");
    }
    return Long.parseLong(t);
  }

  /** Streams the body (decompressing zstd on the way) into a writer of the CAS/RAW store. */
  private void putStream(Exchange ex, Location loc, long size, boolean zstd) throws IOException {
    try (BlobWriter w = loc.store().newWriter(loc.key(), size)) {
      ex.sendContinueIfExpected();
      if (zstd) {
        byte[] buf = new byte[HttpConnection.CHUNK];
        try (InputStream in = new ZstdInputStreamNoFinalizer(limitCompressed(ex, size))) {
          int n;
          while ((n = in.read(buf)) > 0) {
            w.write(ByteBuffer.wrap(buf, 0, n));
          }
        }
      } else {
        ByteBuf chunk;
        while ((chunk = ex.body.readChunk()) != null) {
          try {
            for (ByteBuffer bb : chunk.nioBuffers()) {
              w.write(bb);
            }
          } finally {
            chunk.release();
          }
        }
      }
      w.commit();
    }
  }

  /** Reads, validates and stores an action result (small: held in memory, bounded). */
  private void putAc(Exchange ex, Location loc, long size, boolean zstd) throws IOException {
    if (size > options.maxActionResultSize()) {
      throw new BlobTooLargeException("action result of " + size + " bytes exceeds the limit of "
          + options.maxActionResultSize());
    }
    ex.sendContinueIfExpected();
    byte[] data;
    if (zstd) {
      try (InputStream in = new ZstdInputStreamNoFinalizer(limitCompressed(ex, size))) {
        data = readAtMost(in, size);
      }
    } else {
      data = readAtMost(ex.body, size);
    }
    if (data.length != size) {
      throw new BlobSizeMismatchException("sizes don't match. Expected " + size + ", found " + data.length);
    }
    String ct = ex.request().headers().get(HttpHeaderNames.CONTENT_TYPE);
    boolean json = ct != null && mediaType(ct).equals(JSON);
    byte[] normalized = acCodec.normalize(data, json, ex.remoteAddress());
    loc.store().put(loc.key(), normalized);
  }

  /** Reads to the end, failing as soon as more than {@code limit} bytes arrive. */
  private static byte[] readAtMost(InputStream in, long limit) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream((int) Math.min(limit, 1 << 16));
    byte[] buf = new byte[8192];
    int n;
    while ((n = in.read(buf)) > 0) {
      if (out.size() + (long) n > limit) {
        throw new BlobSizeMismatchException("body is longer than the announced " + limit + " bytes");
      }
      out.write(buf, 0, n);
    }
    return out.toByteArray();
  }

  /** More than zstd's worst-case expansion of {@code size} bytes, with room for a few skippable frames. */
  private static long compressedBound(long size) {
    return size + (size >> 7) + (1 << 20);
  }

  /** The compressed body, cut off where no honest zstd encoding of {@code size} bytes could still be going. */
  private static InputStream limitCompressed(Exchange ex, long size) {
    long bound = compressedBound(size);
    InputStream body = ex.body;
    return new InputStream() {
      long read;

      @Override
      public int read() throws IOException {
        byte[] one = new byte[1];
        return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
      }

      @Override
      public int read(byte[] b, int off, int len) throws IOException {
        int n = body.read(b, off, len);
        if (n > 0) {
          read += n;
          if (read > bound) {
            throw new BlobSizeMismatchException(
                "zstd body is far larger than any encoding of " + size + " bytes");
          }
        }
        return n;
      }
    };
  }

  // ------------------------------------------------------------------------------------------------ /status

  void setDraining() {
    draining = true;
  }

  private void status(Exchange ex) throws IOException {
    // While draining the same document is sent with 503: readiness probes fail, requests still work.
    HttpResponseStatus code = draining ? HttpResponseStatus.SERVICE_UNAVAILABLE : HttpResponseStatus.OK;
    StoreStats s = stats.get();
    String body = StatusPage.render(s, System.currentTimeMillis() / 1000, options.gitCommit(), options.gitTags(),
        java.lang.management.ManagementFactory.getThreadMXBean().getThreadCount());
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    if (ex.request().method().equals(HttpMethod.HEAD)) {
      ex.sendHeadersOnly(code, bytes.length);
    } else {
      ex.sendFull(code, JSON, bytes);
    }
  }

  private void metrics(Exchange ex) throws IOException {
    Supplier<String> page = options.metricsPage();
    if (page == null) {
      ex.sendError(HttpResponseStatus.NOT_FOUND, "Endpoint metrics are not enabled on this server.");
      return;
    }
    HttpMethod m = ex.request().method();
    if (!m.equals(HttpMethod.GET) && !m.equals(HttpMethod.HEAD)) {
      ex.sendError(HttpResponseStatus.METHOD_NOT_ALLOWED, "Method '" + m.name() + "' not supported.");
      return;
    }
    byte[] bytes = page.get().getBytes(StandardCharsets.UTF_8);
    if (m.equals(HttpMethod.HEAD)) {
      ex.sendHeadersOnly(HttpResponseStatus.OK, bytes.length);
    } else {
      ex.sendFull(HttpResponseStatus.OK, "text/plain; version=0.0.4; charset=utf-8", bytes);
    }
  }

  // ------------------------------------------------------------------------------------------------ helpers

  /** Whether a header like Accept or Accept-Encoding lists {@code token} (case-insensitive) without q=0. */
  static boolean accepts(String header, String token) {
    if (header == null) {
      return false;
    }
    for (String part : header.split(",")) {
      String[] params = part.split(";");
      if (!params[0].trim().equalsIgnoreCase(token)) {
        continue;
      }
      boolean zeroQ = false;
      for (int i = 1; i < params.length; i++) {
        String p = params[i].trim().toLowerCase(Locale.ROOT);
        if (p.startsWith("q=")) {
          try {
            zeroQ = Double.parseDouble(p.substring(2).trim()) <= 0;
          } catch (NumberFormatException e) {
            zeroQ = true;
          }
        }
      }
      if (!zeroQ) {
        return true;
      }
    }
    return false;
  }

  private static String mediaType(String contentType) {
    int semi = contentType.indexOf(';');
    return (semi < 0 ? contentType : contentType.substring(0, semi)).trim().toLowerCase(Locale.ROOT);
  }

  private static String printable(String s) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < s.length() && i < 64; i++) {
      char c = s.charAt(i);
      sb.append(c >= 0x20 && c < 0x7f ? c : '?');
    }
    return sb.toString();
  }

  private static String shorten(String s) {
    return printable(s.length() > 200 ? s.substring(0, 200) : s);
  }

  /** Keeps the zstd stream's close from ending the HTTP body. */
  private static final class NonClosing extends FilterOutputStream {
    NonClosing(OutputStream out) {
      super(out);
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
      out.write(b, off, len);
    }

    @Override
    public void close() {}
  }
}
