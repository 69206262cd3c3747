package io.bazelcache.asset;

import com.sun.net.httpserver.Headers;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;

/**
 * A loopback HTTP origin for download tests: serves byte arrays by path, records each request's path and
 * headers; {@code /redirect/X} answers 302 to {@code /X}, {@code /slow/X} waits 10 s first, paths under
 * {@code /chunked/} are sent without Content-Length. Unknown paths are 404.
 */
public final class Origin implements AutoCloseable {
  public record Request(String path, Headers headers) {}

  public final Map<String, byte[]> files = new ConcurrentHashMap<>();
  public final List<Request> requests = new CopyOnWriteArrayList<>();
  private final HttpServer server;

  public Origin() throws IOException {
    server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
    server.createContext("/", ex -> {
      String path = ex.getRequestURI().getPath();
      requests.add(new Request(path, ex.getRequestHeaders()));
      try (ex) {
        if (path.startsWith("/redirect/")) {
          ex.getResponseHeaders().add("Location", "/" + path.substring("/redirect/".length()));
          ex.sendResponseHeaders(302, -1);
          return;
        }
        if (path.startsWith("/slow/")) {
          try {
            Thread.sleep(10_000);
          } catch (InterruptedException e) {
            return;
          }
          path = "/" + path.substring("/slow/".length());
        }
        boolean chunked = path.startsWith("/chunked/");
        if (chunked) {
          path = "/" + path.substring("/chunked/".length());
        }
        byte[] body = files.get(path);
        if (body == null) {
          ex.sendResponseHeaders(404, -1);
          return;
        }
        ex.sendResponseHeaders(200, chunked ? 0 : body.length);
        try (OutputStream out = ex.getResponseBody()) {
          out.write(body);
        } catch (IOException e) {
          // the client gave up (size limit): fine
        }
      }
    });
    server.start();
  }

  public String url(String path) {
    return "http://127.0.0.1:" + server.getAddress().getPort() + path;
  }

  public long hits(String path) {
    return requests.stream().filter(r -> r.path().equals(path)).count();
  }

  @Override
  public void close() {
    server.stop(0);
  }
}
