package io.bazelcache.asset;

import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.digest.Hasher;
import io.grpc.Status;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpHeaders;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Downloads one http(s) URI into a temporary file, hashing it on the way with the CAS digest function and,
 * when asked, one SRI algorithm. Redirects are followed (not from https to http). The body is bounded in
 * size and the whole download (connect, headers, body) in time.
 */
final class Downloader implements AutoCloseable {
  /** A completed download; delete {@link #file} when done. */
  record Result(Path file, Digest digest, byte[] sriHash) {}

  /** An origin failure, with the Remote Asset status code it is reported as. */
  static final class OriginException extends Exception {
    final Status.Code code;

    OriginException(Status.Code code, String message) {
      super(message);
      this.code = code;
    }
  }

  private final ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
  private final HttpClient client;
  private final Path scratch;

  Downloader(Path scratch, Duration connectTimeout) {
    this.scratch = scratch;
    this.client = HttpClient.newBuilder()
        .followRedirects(HttpClient.Redirect.NORMAL)
        .connectTimeout(connectTimeout)
        .executor(executor)
        .build();
  }

  /**
   * Downloads {@code uri} with {@code headers} (each value sent as one header line) before {@code deadline}.
   *
   * @param sriAlgorithm also hash with this algorithm (null: none)
   */
  Result download(String uri, Map<String, String> headers, Instant deadline, long maxSize,
      DigestFunction function, Sri.Algorithm sriAlgorithm) throws OriginException, IOException {
    URI u;
    try {
      u = URI.create(uri);
    } catch (IllegalArgumentException e) {
      throw new OriginException(Status.Code.INVALID_ARGUMENT, uri + ": not a valid URI");
    }
    String scheme = u.getScheme() == null ? "" : u.getScheme().toLowerCase(java.util.Locale.ROOT);
    if (!scheme.equals("http") && !scheme.equals("https")) {
      throw new OriginException(Status.Code.INVALID_ARGUMENT, uri + ": only http and https URIs are fetched");
    }
    Duration left = Duration.between(Instant.now(), deadline);
    if (left.isNegative() || left.isZero()) {
      throw new OriginException(Status.Code.DEADLINE_EXCEEDED, uri + ": no time left to fetch");
    }
    HttpRequest.Builder rb;
    try {
      rb = HttpRequest.newBuilder(u).GET().timeout(left);
      headers.forEach(rb::header);
    } catch (IllegalArgumentException e) {
      throw new OriginException(Status.Code.INVALID_ARGUMENT, uri + ": " + e.getMessage());
    }
    HttpRequest request = rb.build();
    Path tmp = Files.createTempFile(Files.createDirectories(scratch), "fetch-", ".part");
    Future<Result> f = executor.submit(() -> transfer(request, tmp, maxSize, function, sriAlgorithm));
    boolean ok = false;
    try {
      Result r = f.get(Math.max(1, Duration.between(Instant.now(), deadline).toMillis()), TimeUnit.MILLISECONDS);
      ok = true;
      return r;
    } catch (TimeoutException e) {
      f.cancel(true);
      throw new OriginException(Status.Code.DEADLINE_EXCEEDED, uri + ": timed out");
    } catch (InterruptedException e) {
      f.cancel(true);
      Thread.currentThread().interrupt();
      throw new OriginException(Status.Code.CANCELLED, uri + ": interrupted");
    } catch (ExecutionException e) {
      Throwable c = e.getCause();
      if (c instanceof OriginException oe) {
        throw oe;
      }
      if (c instanceof HttpTimeoutException) {
        throw new OriginException(Status.Code.DEADLINE_EXCEEDED, uri + ": timed out");
      }
      if (c instanceof ConnectException) {
        throw new OriginException(Status.Code.UNAVAILABLE, uri + ": cannot connect: " + describe(c));
      }
      if (c instanceof IOException) {
        throw new OriginException(Status.Code.UNAVAILABLE, uri + ": " + describe(c));
      }
      throw new IOException(uri + ": " + describe(c), c);
    } finally {
      if (!ok) {
        // the transfer may still be unwinding after a cancel; delete what it left, now and when it ends
        Files.deleteIfExists(tmp);
      }
    }
  }

  private static String describe(Throwable t) {
    String m = t.getMessage();
    return t.getClass().getSimpleName() + (m == null ? "" : ": " + m);
  }

  private Result transfer(HttpRequest request, Path tmp, long maxSize, DigestFunction function,
      Sri.Algorithm sriAlgorithm) throws Exception {
    HttpResponse<InputStream> resp = client.send(request, HttpResponse.BodyHandlers.ofInputStream());
    String uri = request.uri().toString();
    try (InputStream in = resp.body()) {
      int code = resp.statusCode();
      if (code / 100 != 2) {
        Status.Code c = switch (code) {
          case 404, 410 -> Status.Code.NOT_FOUND;
          case 401, 403 -> Status.Code.PERMISSION_DENIED;
          case 429 -> Status.Code.RESOURCE_EXHAUSTED;
          default -> Status.Code.UNAVAILABLE;
        };
        throw new OriginException(c, uri + ": HTTP " + code + finalUri(resp));
      }
      long announced = contentLength(resp.headers());
      if (announced > maxSize) {
        throw new OriginException(Status.Code.RESOURCE_EXHAUSTED,
            uri + ": " + announced + " bytes is over the max blob size " + maxSize);
      }
      Hasher hasher = function.newHasher();
      MessageDigest sri = sriAlgorithm == null ? null : sriAlgorithm.newDigest();
      long n = 0;
      byte[] buf = new byte[64 * 1024];
      // WRITE without CREATE: if the caller gave up and deleted the file, fail instead of leaking a new one
      try (OutputStream out = Files.newOutputStream(tmp, StandardOpenOption.WRITE,
          StandardOpenOption.TRUNCATE_EXISTING)) {
        int r;
        while ((r = in.read(buf)) > 0) {
          n += r;
          if (n > maxSize) {
            throw new OriginException(Status.Code.RESOURCE_EXHAUSTED,
                uri + ": body is over the max blob size " + maxSize);
          }
          if (Thread.currentThread().isInterrupted()) {
            throw new InterruptedException();
          }
          hasher.update(buf, 0, r);
          if (sri != null) {
            sri.update(buf, 0, r);
          }
          out.write(buf, 0, r);
        }
      }
      if (announced >= 0 && n != announced) {
        throw new OriginException(Status.Code.UNAVAILABLE,
            uri + ": body has " + n + " bytes, Content-Length said " + announced);
      }
      Digest d = new Digest(function, HexFormat.of().formatHex(hasher.finish()), n);
      return new Result(tmp, d, sri == null ? null : sri.digest());
    }
  }

  private static String finalUri(HttpResponse<?> resp) {
    return resp.previousResponse().isPresent() ? " (redirected to " + resp.uri() + ")" : "";
  }

  private static long contentLength(HttpHeaders h) {
    return h.firstValueAsLong("content-length").orElse(-1L);
  }

  @Override
  public void close() {
    client.shutdownNow();
    executor.shutdownNow();
  }
}
