package io.bazelcache.bench;

import com.github.luben.zstd.Zstd;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * HTTP load generator for Bazel HTTP caches ({@code GET|PUT /cas/<sha256>}), comparing several servers in one run:
 * every test row is run against each target in turn (interleaved, so slow drift of the machine's load hits all of
 * them alike), with the same deterministic blobs, and the table gives each target's numbers as a ratio to the first
 * target (the baseline, e.g. nginx WebDAV).
 *
 * <p>Client: raw HTTP/1.1 over plain sockets with keep-alive, one virtual thread per connection, a fixed number of
 * connections per test. Every test stops by itself: after a bounded number of requests or a bounded time, whichever
 * comes first. Only loopback targets are accepted.
 *
 * <p>Blobs: content-addressed ({@code /cas/<sha256 of the body>}). Each blob is an 8-byte index header followed by a
 * slice of one seeded random (or, for the "text" set, repetitive log-like text) pool at an offset that depends on the
 * index; all blobs of a test are distinct, the random ones are incompressible. Bodies are written straight from the
 * pool, so the client does no per-request generation or hashing. After each upload test, a sample of the stored blobs
 * is read back untimed and checked against its SHA-256 (after zstd decoding if the server sent
 * {@code Content-Encoding: zstd}); a mismatch fails the run.
 *
 * <p>With {@code --pids name=pid,pid...} the server's CPU time (user + system, from /proc) during each test is also
 * reported per request: far less sensitive to other load on the machine than wall-clock rates.
 *
 * <p>Usage: {@code HttpLoadBench [--quick] [--only put-4k,get-4k,...] [--seed N] [--out table.md]
 * [--pids name=pid,...] --target name=http://127.0.0.1:PORT ...}
 */
public final class HttpLoadBench {
  private static final int KIB = 1024;
  private static final int MIB = 1024 * 1024;
  private static final HexFormat HEX = HexFormat.of();

  /** A server under test. */
  record Target(String name, String host, int port, long[] pids) {}

  /** One measured test, run against every target. */
  record Test(String id, String label, Kind kind, BlobSet set, int connections, int maxRequests, double maxSeconds,
      boolean acceptZstd) {}

  enum Kind { PUT, GET, MISS }

  /** Result of one test against one target. */
  record Result(long ok, long errors, double seconds, long logicalBytes, long wireBytes, long p50Nanos,
      long p99Nanos, double cpuSeconds, String firstError) {
    double reqPerSec() {
      return ok / seconds;
    }

    double mbPerSec() {
      return logicalBytes / seconds / 1e6;
    }
  }

  public static void main(String[] args) throws Exception {
    boolean quick = false;
    long seed = 20261123L;
    Path out = null;
    List<String> only = null;
    List<String> targetSpecs = new ArrayList<>();
    Map<String, long[]> pids = new LinkedHashMap<>();
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--quick" -> quick = true;
        case "--seed" -> seed = Long.parseLong(args[++i]);
        case "--out" -> out = Path.of(args[++i]);
        case "--target" -> targetSpecs.add(args[++i]);
        case "--only" -> only = List.of(args[++i].split(","));
        case "--pids" -> {
          String[] kv = args[++i].split("=", 2);
          pids.put(kv[0], Arrays.stream(kv[1].split(",")).filter(s -> !s.isBlank()).mapToLong(Long::parseLong)
              .toArray());
        }
        default -> usage("unknown argument: " + args[i]);
      }
    }
    if (targetSpecs.isEmpty()) {
      usage("at least one --target name=http://127.0.0.1:PORT is needed");
    }
    List<Target> targets = new ArrayList<>();
    for (String spec : targetSpecs) {
      targets.add(parseTarget(spec, pids));
    }

    double sec = quick ? 2.0 : 20.0;
    BlobSet small = new BlobSet("random", 4 * KIB, quick ? 4000 : 60_000, seed, false);
    BlobSet medium = new BlobSet("random", MIB, quick ? 120 : 1000, seed + 1, false);
    BlobSet large = new BlobSet("random", 64 * MIB, quick ? 4 : 16, seed + 2, false);
    BlobSet text = new BlobSet("text", MIB, quick ? 120 : 1000, seed + 3, true);
    BlobSet warm = new BlobSet("random", 64 * KIB, quick ? 200 : 2000, seed + 4, false);
    List<Test> all = List.of(
        new Test("put-4k", "PUT 4 KiB random", Kind.PUT, small, 16, small.count, sec, false),
        new Test("get-4k", "GET 4 KiB (stored, warm page cache)", Kind.GET, small, 16, quick ? 20_000 : 400_000, sec,
            false),
        new Test("miss", "GET miss (404)", Kind.MISS, small, 16, quick ? 20_000 : 400_000, sec, false),
        new Test("put-1m", "PUT 1 MiB random", Kind.PUT, medium, 8, medium.count, sec, false),
        new Test("get-1m", "GET 1 MiB (stored, warm page cache)", Kind.GET, medium, 8, quick ? 2_000 : 40_000, sec,
            false),
        new Test("put-64m", "PUT 64 MiB random", Kind.PUT, large, 2, large.count, quick ? 4.0 : 30.0, false),
        new Test("get-64m", "GET 64 MiB (stored, warm page cache)", Kind.GET, large, 2, quick ? 8 : 200,
            quick ? 4.0 : 30.0, false),
        new Test("put-text", "PUT 1 MiB text (compressible)", Kind.PUT, text, 8, text.count, sec, false),
        new Test("get-text-zstd", "GET 1 MiB text, Accept-Encoding: zstd", Kind.GET, text, 8, quick ? 2_000 : 40_000,
            sec, true));
    List<String> selected = only;
    List<Test> tests = selected == null ? all : all.stream().filter(t -> selected.contains(t.id())).toList();
    if (tests.isEmpty()) {
      usage("--only matches no test; tests: " + all.stream().map(Test::id).toList());
    }

    PrintStream o = System.out;
    o.printf("HttpLoadBench %s: %s, seed %d, cores %d, java %s, load average %s%n", quick ? "quick" : "full",
        LocalDateTime.now().format(DateTimeFormatter.ISO_LOCAL_DATE_TIME), seed,
        Runtime.getRuntime().availableProcessors(), System.getProperty("java.version"), loadAverage());
    for (Target t : targets) {
      o.printf("  target %-14s http://%s:%d  pids %s%n", t.name(), t.host(), t.port(), Arrays.toString(t.pids()));
    }

    // Warm-up (not reported): JIT of the client and of JVM servers, connection paths, directory creation.
    Test warmPut = new Test("warm-put", "warm-up PUT", Kind.PUT, warm, 8, warm.count, quick ? 2 : 10, false);
    Test warmGet = new Test("warm-get", "warm-up GET", Kind.GET, warm, 8, quick ? 5_000 : 50_000, quick ? 2 : 10,
        false);
    Map<Target, Map<BlobSet, int[]>> stored = new LinkedHashMap<>();
    for (Target t : targets) {
      stored.put(t, new LinkedHashMap<>());
      runAndStore(t, warmPut, stored, o);
      Result r = run(t, warmGet, stored.get(t).get(warm));
      o.printf("  warm-up %-14s GET %d ok, %d errors%n", t.name(), r.ok(), r.errors());
    }

    Map<Test, Map<Target, Result>> results = new LinkedHashMap<>();
    for (Test test : tests) {
      Map<Target, Result> row = new LinkedHashMap<>();
      for (Target t : targets) {
        Result r;
        if (test.kind() == Kind.PUT) {
          r = runAndStore(t, test, stored, o);
        } else {
          if (test.kind() == Kind.GET && !stored.get(t).containsKey(test.set())) {
            // --only without the matching upload: store the blobs first (untimed)
            runAndStore(t, new Test("fill", "fill", Kind.PUT, test.set(), test.connections(), test.set().count,
                600, false), stored, o);
          }
          int[] have = test.kind() == Kind.MISS ? null : stored.get(t).get(test.set());
          r = run(t, test, have);
        }
        row.put(t, r);
        o.printf("  %-16s %-14s %8d ok %5d err %7.2f s %9.1f req/s %9.1f MB/s  p50 %8.3f ms  p99 %8.3f ms"
                + "  cpu %6.2f s%s%n", test.id(), t.name(), r.ok(), r.errors(), r.seconds(), r.reqPerSec(),
            r.mbPerSec(), r.p50Nanos() / 1e6, r.p99Nanos() / 1e6, r.cpuSeconds(),
            r.firstError() == null ? "" : "  first error: " + r.firstError());
      }
      results.put(test, row);
    }

    String table = table(targets, results, quick, seed);
    o.println();
    o.println(table);
    if (out != null) {
      Files.writeString(out, table);
    }
    boolean failed = results.values().stream().flatMap(m -> m.values().stream()).anyMatch(r -> r.errors() > 0);
    if (failed) {
      o.println("SOME REQUESTS FAILED: see the error column");
      System.exit(1);
    }
  }

  private static void usage(String msg) {
    System.err.println(msg);
    System.err.println("usage: HttpLoadBench [--quick] [--only test,test] [--seed N] [--out FILE] [--pids name=pid,...] "
        + "--target name=http://127.0.0.1:PORT [--target ...]   (the first target is the baseline)");
    System.exit(2);
  }

  static Target parseTarget(String spec, Map<String, long[]> pids) {
    String[] kv = spec.split("=", 2);
    if (kv.length != 2) {
      usage("bad --target (want name=url): " + spec);
    }
    URI u = URI.create(kv[1]);
    if (!"http".equals(u.getScheme()) || u.getPort() <= 0) {
      usage("target must be http://HOST:PORT: " + spec);
    }
    String host = u.getHost();
    if (!host.equals("127.0.0.1") && !host.equals("localhost")) {
      usage("only loopback targets are allowed: " + spec);
    }
    return new Target(kv[0], "127.0.0.1", u.getPort(), pids.getOrDefault(kv[0], new long[0]));
  }

  /** Runs an upload test and records which blobs the target now holds (verified by a sample read-back). */
  static Result runAndStore(Target t, Test test, Map<Target, Map<BlobSet, int[]>> stored, PrintStream o)
      throws Exception {
    test.set().precompute(); // hashing is not part of the measurement
    boolean[] ok = new boolean[test.set().count];
    Result r = run(t, test, null, ok);
    int[] have = new int[r.ok() > Integer.MAX_VALUE ? 0 : (int) r.ok()];
    int n = 0;
    for (int i = 0; i < ok.length; i++) {
      if (ok[i]) {
        have[n++] = i;
      }
    }
    have = Arrays.copyOf(have, n);
    stored.get(t).put(test.set(), have);
    String verify = verifySample(t, test.set(), have);
    if (verify != null) {
      throw new IllegalStateException(t.name() + " " + test.id() + ": read-back check failed: " + verify);
    }
    return r;
  }

  // ---------------------------------------------------------------- running a test

  static Result run(Target t, Test test, int[] have) throws Exception {
    return run(t, test, have, null);
  }

  /**
   * Runs one test against one target: {@code test.connections()} connections take request numbers from one counter
   * until {@code maxRequests} are taken or {@code maxSeconds} have passed (requests in flight then complete).
   */
  static Result run(Target t, Test test, int[] have, boolean[] putOk) throws Exception {
    int max = test.maxRequests();
    if (test.kind() == Kind.GET) {
      if (have == null || have.length == 0) {
        return new Result(0, 1, 1, 0, 0, 0, 0, 0, "nothing stored to GET");
      }
    }
    long[] lat = new long[max];
    AtomicInteger next = new AtomicInteger();
    AtomicLong ok = new AtomicLong();
    AtomicLong errors = new AtomicLong();
    AtomicLong logical = new AtomicLong();
    AtomicLong wire = new AtomicLong();
    String[] firstError = new String[1];
    long start = System.nanoTime();
    long deadline = start + (long) (test.maxSeconds() * 1e9);
    double cpu0 = cpuSeconds(t.pids());
    List<Thread> threads = new ArrayList<>();
    for (int c = 0; c < test.connections(); c++) {
      threads.add(Thread.ofVirtual().name("load-" + c).start(() -> {
        Conn conn = null;
        try {
          while (true) {
            int i = next.getAndIncrement();
            if (i >= max || System.nanoTime() > deadline) {
              break;
            }
            if (conn == null) {
              conn = new Conn(t);
            }
            long t0 = System.nanoTime();
            String err;
            long lb = 0;
            long wb = 0;
            try {
              switch (test.kind()) {
                case PUT -> {
                  BlobSet s = test.set();
                  Response resp = conn.put(s.path(i), s, i);
                  err = resp.status / 100 == 2 ? null : "PUT status " + resp.status;
                  lb = wb = s.size;
                }
                case GET -> {
                  BlobSet s = test.set();
                  int b = have[i % have.length];
                  Response resp = conn.get(s.path(b), test.acceptZstd(), null);
                  if (resp.status != 200) {
                    err = "GET status " + resp.status;
                  } else if (!resp.zstd && resp.bodyBytes != s.size) {
                    err = "GET length " + resp.bodyBytes + " != " + s.size;
                  } else {
                    err = null;
                  }
                  lb = s.size;
                  wb = resp.bodyBytes;
                }
                default -> {
                  Response resp = conn.get(missPath(i), false, null);
                  err = resp.status == 404 ? null : "miss status " + resp.status;
                }
              }
            } catch (IOException e) {
              err = e.toString();
              conn.close();
              conn = null;
            }
            long t1 = System.nanoTime();
            if (conn != null && conn.mustClose) {
              conn.close();
              conn = null;
            }
            if (err == null) {
              lat[i] = t1 - t0;
              ok.incrementAndGet();
              logical.addAndGet(lb);
              wire.addAndGet(wb);
              if (putOk != null) {
                putOk[i] = true;
              }
            } else {
              lat[i] = -1;
              errors.incrementAndGet();
              synchronized (firstError) {
                if (firstError[0] == null) {
                  firstError[0] = err;
                }
              }
            }
          }
        } catch (IOException e) {
          errors.incrementAndGet();
          synchronized (firstError) {
            if (firstError[0] == null) {
              firstError[0] = "connect: " + e;
            }
          }
        } finally {
          if (conn != null) {
            conn.close();
          }
        }
      }));
    }
    for (Thread th : threads) {
      th.join();
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    double cpu = cpuSeconds(t.pids()) - cpu0;
    int issued = Math.min(next.get(), max);
    long[] good = Arrays.stream(lat, 0, issued).filter(x -> x > 0).sorted().toArray();
    long p50 = good.length == 0 ? 0 : good[(good.length - 1) / 2];
    long p99 = good.length == 0 ? 0 : good[(int) Math.ceil(good.length * 0.99) - 1];
    return new Result(ok.get(), errors.get(), seconds, logical.get(), wire.get(), p50, p99, cpu, firstError[0]);
  }

  static String missPath(int i) {
    return "/cas/" + HEX.formatHex(sha256(("missing blob " + i).getBytes(StandardCharsets.UTF_8)));
  }

  /** Reads back up to 8 stored blobs (first, last and spread between) and checks their SHA-256; null if all match. */
  static String verifySample(Target t, BlobSet s, int[] have) throws IOException {
    if (have.length == 0) {
      return "nothing was stored";
    }
    int n = Math.min(s.size >= 16 * MIB ? 2 : 8, have.length);
    try (Conn conn = new Conn(t)) {
      for (int k = 0; k < n; k++) {
        int b = have[(int) ((long) k * (have.length - 1) / Math.max(1, n - 1))];
        for (boolean zstd : new boolean[] {false, true}) {
          ByteArrayOutputStream body = new ByteArrayOutputStream(s.size);
          Response r = conn.get(s.path(b), zstd, body);
          if (r.status != 200) {
            return "GET " + s.path(b) + ": status " + r.status;
          }
          byte[] bytes = body.toByteArray();
          if (r.zstd) {
            bytes = Zstd.decompress(bytes, s.size);
          }
          byte[] d = sha256(bytes, 0, bytes.length);
          if (!Arrays.equals(d, s.digest(b))) {
            return "GET " + s.path(b) + (r.zstd ? " (zstd)" : "") + ": body does not match its SHA-256";
          }
        }
      }
    }
    return null;
  }

  // ---------------------------------------------------------------- blobs

  /**
   * {@code count} distinct blobs of {@code size} bytes: blob i is an 8-byte header (the set's seed mixed with i)
   * followed by {@code size - 8} bytes of the pool starting at {@code i * stride}. Digests are computed on first use.
   */
  static final class BlobSet {
    final String content;
    final int size;
    final int count;
    final long seed;
    final byte[] pool;
    final int stride;
    private final byte[][] digests;
    private final String[] paths;

    BlobSet(String content, int size, int count, long seed, boolean text) {
      this.content = content;
      this.size = size;
      this.count = count;
      this.seed = seed;
      this.stride = size >= MIB ? 4096 : 64;
      long poolSize = (long) size + (long) count * stride;
      if (poolSize > Integer.MAX_VALUE - 16) {
        throw new IllegalArgumentException("pool too large");
      }
      this.pool = new byte[(int) poolSize];
      Random r = new Random(seed);
      if (text) {
        fillText(pool, r);
      } else {
        r.nextBytes(pool);
      }
      this.digests = new byte[count][];
      this.paths = new String[count];
    }

    private static void fillText(byte[] pool, Random r) {
      String[] levels = {"INFO", "INFO", "INFO", "DEBUG", "WARN"};
      String[] verbs = {"compiled", "linked", "tested", "fetched", "cached"};
      StringBuilder sb = new StringBuilder();
      int pos = 0;
      long ms = 0;
      while (pos < pool.length) {
        sb.setLength(0);
        ms += r.nextInt(50);
        sb.append("2026-11-23T21:").append(10 + (ms / 60000) % 50).append(':').append((ms / 1000) % 60)
            .append('.').append(ms % 1000).append(' ').append(levels[r.nextInt(levels.length)])
            .append(" [worker-").append(r.nextInt(16)).append("] ").append(verbs[r.nextInt(verbs.length)])
            .append(" //src/main/java/io/bazelcache/pkg").append(r.nextInt(40)).append(":target_")
            .append(r.nextInt(400)).append(" in ").append(r.nextInt(2000)).append(" ms\n");
        byte[] line = sb.toString().getBytes(StandardCharsets.US_ASCII);
        int n = Math.min(line.length, pool.length - pos);
        System.arraycopy(line, 0, pool, pos, n);
        pos += n;
      }
    }

    void header(int i, byte[] dst, int off) {
      long h = seed * 0x9E3779B97F4A7C15L + i;
      for (int k = 0; k < 8; k++) {
        dst[off + k] = (byte) (h >>> (56 - 8 * k));
      }
    }

    int poolOffset(int i) {
      return i * stride;
    }

    /** Computes every digest and path up front, so that no hashing happens while requests are timed. */
    void precompute() {
      for (int i = 0; i < count; i++) {
        path(i);
      }
    }

    synchronized byte[] digest(int i) {
      if (digests[i] == null) {
        byte[] head = new byte[8];
        header(i, head, 0);
        MessageDigest md = newSha256();
        md.update(head);
        md.update(pool, poolOffset(i), size - 8);
        digests[i] = md.digest();
      }
      return digests[i];
    }

    String path(int i) {
      String p = paths[i];
      if (p == null) {
        p = "/cas/" + HEX.formatHex(digest(i));
        paths[i] = p;
      }
      return p;
    }
  }

  static MessageDigest newSha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }

  static byte[] sha256(byte[] b) {
    return sha256(b, 0, b.length);
  }

  static byte[] sha256(byte[] b, int off, int len) {
    MessageDigest md = newSha256();
    md.update(b, off, len);
    return md.digest();
  }

  // ---------------------------------------------------------------- HTTP/1.1 client

  static final class Response {
    int status;
    long bodyBytes;
    boolean zstd;
  }

  /** One keep-alive connection. Not thread-safe. */
  static final class Conn implements AutoCloseable {
    private final Socket socket;
    private final InputStream in;
    private final OutputStream out;
    private final String hostHeader;
    private final byte[] wbuf = new byte[64 * KIB];
    private final byte[] rbuf = new byte[64 * KIB];
    private int rpos;
    private int rlim;
    boolean mustClose;

    Conn(Target t) throws IOException {
      socket = new Socket();
      socket.setTcpNoDelay(true);
      socket.connect(new InetSocketAddress(t.host(), t.port()), 5000);
      socket.setSoTimeout(120_000);
      in = socket.getInputStream();
      out = socket.getOutputStream();
      hostHeader = t.host() + ":" + t.port();
    }

    Response put(String path, BlobSet s, int i) throws IOException {
      byte[] head = ("PUT " + path + " HTTP/1.1\r\nHost: " + hostHeader + "\r\nContent-Length: " + s.size
          + "\r\nContent-Type: application/octet-stream\r\n\r\n").getBytes(StandardCharsets.US_ASCII);
      int n = head.length;
      System.arraycopy(head, 0, wbuf, 0, n);
      s.header(i, wbuf, n);
      n += 8;
      int off = s.poolOffset(i);
      int left = s.size - 8;
      // Headers and the start of the body in one write (a small blob goes out in one segment).
      int first = Math.min(left, wbuf.length - n);
      System.arraycopy(s.pool, off, wbuf, n, first);
      out.write(wbuf, 0, n + first);
      if (left > first) {
        out.write(s.pool, off + first, left - first);
      }
      out.flush();
      return readResponse(false, null);
    }

    Response get(String path, boolean acceptZstd, OutputStream sink) throws IOException {
      String req = "GET " + path + " HTTP/1.1\r\nHost: " + hostHeader + "\r\n"
          + (acceptZstd ? "Accept-Encoding: zstd\r\n" : "") + "\r\n";
      byte[] b = req.getBytes(StandardCharsets.US_ASCII);
      out.write(b);
      out.flush();
      return readResponse(false, sink);
    }

    private Response readResponse(boolean head, OutputStream sink) throws IOException {
      Response r = new Response();
      String status = readLine();
      if (!status.startsWith("HTTP/1.")) {
        throw new IOException("bad status line: " + status);
      }
      r.status = Integer.parseInt(status.substring(9, 12));
      boolean http10 = status.startsWith("HTTP/1.0");
      long length = -1;
      boolean chunked = false;
      boolean close = http10;
      while (true) {
        String line = readLine();
        if (line.isEmpty()) {
          break;
        }
        int colon = line.indexOf(':');
        if (colon <= 0) {
          continue;
        }
        String name = line.substring(0, colon).trim().toLowerCase(Locale.ROOT);
        String value = line.substring(colon + 1).trim();
        switch (name) {
          case "content-length" -> length = Long.parseLong(value);
          case "transfer-encoding" -> chunked = value.toLowerCase(Locale.ROOT).contains("chunked");
          case "content-encoding" -> r.zstd = value.equalsIgnoreCase("zstd");
          case "connection" -> {
            String v = value.toLowerCase(Locale.ROOT);
            if (v.contains("close")) {
              close = true;
            } else if (v.contains("keep-alive")) {
              close = false;
            }
          }
          default -> { }
        }
      }
      if (head || r.status == 204 || r.status == 304 || r.status / 100 == 1) {
        r.bodyBytes = 0;
      } else if (chunked) {
        long total = 0;
        while (true) {
          String sizeLine = readLine();
          int semi = sizeLine.indexOf(';');
          long n = Long.parseLong((semi >= 0 ? sizeLine.substring(0, semi) : sizeLine).trim(), 16);
          if (n == 0) {
            while (!readLine().isEmpty()) {
              // trailers
            }
            break;
          }
          skip(n, sink);
          total += n;
          if (!readLine().isEmpty()) {
            throw new IOException("bad chunk end");
          }
        }
        r.bodyBytes = total;
      } else if (length >= 0) {
        skip(length, sink);
        r.bodyBytes = length;
      } else {
        throw new IOException("response without length (status " + r.status + ")");
      }
      mustClose = close;
      return r;
    }

    private void skip(long n, OutputStream sink) throws IOException {
      while (n > 0) {
        if (rpos == rlim) {
          fill();
        }
        int k = (int) Math.min(n, rlim - rpos);
        if (sink != null) {
          sink.write(rbuf, rpos, k);
        }
        rpos += k;
        n -= k;
      }
    }

    private void fill() throws IOException {
      int k = in.read(rbuf, 0, rbuf.length);
      if (k < 0) {
        throw new EOFException("connection closed by server");
      }
      rpos = 0;
      rlim = k;
    }

    private String readLine() throws IOException {
      StringBuilder sb = new StringBuilder(64);
      while (true) {
        if (rpos == rlim) {
          fill();
        }
        byte c = rbuf[rpos++];
        if (c == '\n') {
          int len = sb.length();
          if (len > 0 && sb.charAt(len - 1) == '\r') {
            sb.setLength(len - 1);
          }
          return sb.toString();
        }
        if (sb.length() > 16 * KIB) {
          throw new IOException("header line too long");
        }
        sb.append((char) (c & 0xff));
      }
    }

    @Override
    public void close() {
      try {
        socket.close();
      } catch (IOException e) {
        // ignore
      }
    }
  }

  // ---------------------------------------------------------------- reporting

  /** User + system CPU seconds of the given processes, from /proc/PID/stat (0 if none or unreadable). */
  static double cpuSeconds(long[] pids) {
    long ticks = 0;
    for (long pid : pids) {
      try {
        String s = Files.readString(Path.of("/proc/" + pid + "/stat"));
        String[] f = s.substring(s.lastIndexOf(')') + 2).split(" ");
        // After "(comm) ", field 3 (state) is f[0]; utime is field 14 -> f[11], stime field 15 -> f[12].
        ticks += Long.parseLong(f[11]) + Long.parseLong(f[12]);
      } catch (IOException | RuntimeException e) {
        // process gone or not Linux: no CPU figure
      }
    }
    return ticks / 100.0; // USER_HZ is 100 on Linux
  }

  static String loadAverage() {
    try {
      String[] f = Files.readString(Path.of("/proc/loadavg")).split(" ");
      return f[0] + " " + f[1] + " " + f[2];
    } catch (IOException e) {
      return "?";
    }
  }

  static String table(List<Target> targets, Map<Test, Map<Target, Result>> results, boolean quick, long seed) {
    Target base = targets.get(0);
    boolean cpu = targets.stream().allMatch(t -> t.pids().length > 0);
    StringBuilder sb = new StringBuilder();
    sb.append(String.format("Run %s, %s mode, seed %d, load average at the end %s. Ratios: target / %s.%n%n",
        LocalDateTime.now().format(DateTimeFormatter.ISO_LOCAL_DATE_TIME), quick ? "quick" : "full", seed,
        loadAverage(), base.name()));
    sb.append("| test | conns | metric | ").append(base.name());
    for (Target t : targets.subList(1, targets.size())) {
      sb.append(" | ").append(t.name()).append(" | ratio");
    }
    sb.append(" |\n|---|---|---|---:");
    for (int k = 1; k < targets.size(); k++) {
      sb.append("|---:|---:");
    }
    sb.append("|\n");
    for (var e : results.entrySet()) {
      Test test = e.getKey();
      Map<Target, Result> row = e.getValue();
      List<String> metrics = new ArrayList<>();
      if (test.kind() != Kind.MISS) {
        metrics.add("MB/s");
      }
      metrics.add("req/s");
      metrics.add("p50 ms");
      metrics.add("p99 ms");
      if (cpu) {
        metrics.add("server CPU ms/req");
      }
      if (test.acceptZstd()) {
        metrics.add("wire bytes/req");
      }
      metrics.add("ok / errors");
      for (String m : metrics) {
        sb.append("| ").append(test.label()).append(" | ").append(test.connections()).append(" | ").append(m);
        Result rb = row.get(base);
        sb.append(" | ").append(value(m, rb));
        for (Target t : targets.subList(1, targets.size())) {
          Result r = row.get(t);
          sb.append(" | ").append(value(m, r)).append(" | ").append(ratio(m, r, rb));
        }
        sb.append(" |\n");
      }
    }
    sb.append("\nMB/s counts uncompressed blob bytes (10^6 bytes/s). Latency ratios above 1 mean slower;"
        + " throughput ratios above 1 mean faster.\n");
    return sb.toString();
  }

  private static double metric(String m, Result r) {
    return switch (m) {
      case "MB/s" -> r.mbPerSec();
      case "req/s" -> r.reqPerSec();
      case "p50 ms" -> r.p50Nanos() / 1e6;
      case "p99 ms" -> r.p99Nanos() / 1e6;
      case "server CPU ms/req" -> r.ok() == 0 ? 0 : r.cpuSeconds() * 1e3 / r.ok();
      case "wire bytes/req" -> r.ok() == 0 ? 0 : (double) r.wireBytes() / r.ok();
      default -> Double.NaN;
    };
  }

  private static String value(String m, Result r) {
    if (m.equals("ok / errors")) {
      return r.ok() + " / " + r.errors();
    }
    double v = metric(m, r);
    if (m.equals("wire bytes/req")) {
      return String.format("%.0f", v);
    }
    return v >= 100 ? String.format("%.0f", v) : v >= 10 ? String.format("%.1f", v) : String.format("%.3f", v);
  }

  private static String ratio(String m, Result r, Result base) {
    if (m.equals("ok / errors")) {
      return "";
    }
    double b = metric(m, base);
    double v = metric(m, r);
    return b > 0 ? String.format("%.2f", v / b) : "n/a";
  }
}
