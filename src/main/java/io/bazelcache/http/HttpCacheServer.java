package io.bazelcache.http;

import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.StoreStats;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerDomainSocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http.HttpDecoderConfig;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.timeout.IdleStateHandler;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnixDomainSocketAddress;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The HTTP/1.1 cache endpoint, compatible with bazel-remote's:
 *
 * <ul>
 *   <li>{@code GET|HEAD|PUT [/instance...]/cas/<sha256>} and {@code .../ac/<sha256>}; other methods 405. The hash must
 *       be 64 lowercase hex characters; malformed cache paths, dot segments, bad escapes: 400. Unknown paths: 404.
 *   <li>GET CAS with {@code Accept-Encoding: zstd}: {@code Content-Encoding: zstd} (the store's compressed file if it
 *       has one, sent with sendfile, else compressed on the fly, chunked); otherwise the raw bytes with Content-Length,
 *       with sendfile when the store offers a file.
 *   <li>PUT needs Content-Length or {@code X-Digest-SizeBytes} (required with {@code Content-Encoding: zstd}, and then
 *       the uncompressed size); the body is streamed to the store, never held whole. Over the max blob size: 413. CAS
 *       content that does not match its hash, wrong sizes, invalid action results: 400. No room: 507. Nothing is
 *       stored unless the whole body arrived and checked out.
 *   <li>AC entries are validated action results (binary or JSON), read through the AC store (which may check
 *       completeness), and rendered as JSON for {@code Accept: application/json}. With {@code disableHttpAcValidation}
 *       they are RAW entries of the CAS/RAW store instead. With {@code enableAcKeyInstanceMangling} an AC hash under a
 *       non-empty instance is replaced by {@code hex(sha256(hash + instance))}.
 *   <li>{@code /status}: bazel-remote's JSON document, values from the status supplier; 503 with the same document
 *       once {@link #startDraining()} was called.
 * </ul>
 *
 * <p>Netty decodes on the event loop; each connection's requests run one after the other on a virtual thread, with
 * request bodies streamed through a bounded queue (autoRead is turned off while it is full).
 */
public final class HttpCacheServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(HttpCacheServer.class);

  private final SocketAddress bindAddress;
  private final HttpCacheOptions options;
  private final CacheService service;
  private final Set<HttpConnection> connections = ConcurrentHashMap.newKeySet();
  private final AtomicInteger liveWorkers = new AtomicInteger();
  private final AtomicLong maxPendingBytes = new AtomicLong();
  private final Object lifecycle = new Object();
  private volatile boolean shuttingDown;
  private EventLoopGroup bossGroup;
  private EventLoopGroup workerGroup;
  private Channel serverChannel;

  /**
   * @param bindAddress where to listen: an {@link InetSocketAddress} (port 0: any free port, see {@link #port()}) or a
   *     {@link UnixDomainSocketAddress} (the socket file must not exist yet)
   * @param casStore CAS entries, and RAW entries when AC validation is disabled
   * @param acStore AC entries (typically a completeness-checking decorator)
   * @param options limits and switches
   * @param status sizes reported by {@code /status}
   */
  public HttpCacheServer(SocketAddress bindAddress, BlobStore casStore, BlobStore acStore,
      HttpCacheOptions options, Supplier<StoreStats> status) {
    this(bindAddress, casStore, acStore, options, status, new ProtoAcCodec());
  }

  HttpCacheServer(SocketAddress bindAddress, BlobStore casStore, BlobStore acStore, HttpCacheOptions options,
      Supplier<StoreStats> status, AcCodec acCodec) {
    this.bindAddress = Objects.requireNonNull(bindAddress);
    this.options = Objects.requireNonNull(options);
    this.service = new CacheService(Objects.requireNonNull(casStore), Objects.requireNonNull(acStore), options,
        Objects.requireNonNull(status), acCodec);
  }

  /** Binds and starts serving. */
  public HttpCacheServer start() throws IOException {
    synchronized (lifecycle) {
      if (serverChannel != null) {
        throw new IllegalStateException("already started");
      }
      bossGroup = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
      workerGroup = new MultiThreadIoEventLoopGroup(options.ioThreads(), NioIoHandler.newFactory());
      HttpDecoderConfig decoder = new HttpDecoderConfig()
          .setMaxInitialLineLength(options.maxInitialLineLength())
          .setMaxHeaderSize(options.maxHeaderSize())
          .setMaxChunkSize(HttpConnection.CHUNK);
      boolean unix = bindAddress instanceof UnixDomainSocketAddress;
      ServerBootstrap b = new ServerBootstrap()
          .group(bossGroup, workerGroup)
          .channel(unix ? NioServerDomainSocketChannel.class : NioServerSocketChannel.class)
          .option(ChannelOption.SO_BACKLOG, 1024)
          .childOption(ChannelOption.WRITE_BUFFER_WATER_MARK, new WriteBufferWaterMark(256 << 10, 1 << 20))
          .childHandler(new ChannelInitializer<Channel>() {
            @Override
            protected void initChannel(Channel ch) {
              if (shuttingDown) {
                ch.close();
                return;
              }
              if (options.sslContext() != null) {
                ch.pipeline().addLast("tls", options.sslContext().newHandler(ch.alloc()));
              }
              long read = options.readTimeout().toMillis();
              long write = options.writeTimeout().toMillis();
              if (read > 0 || write > 0) {
                ch.pipeline().addLast("idle", new IdleStateHandler(true, read, write, 0, TimeUnit.MILLISECONDS));
              }
              ch.pipeline().addLast("http", new HttpServerCodec(decoder));
              ch.pipeline().addLast("cache", new HttpConnection(HttpCacheServer.this));
            }
          });
      if (!unix) {
        b.childOption(ChannelOption.TCP_NODELAY, true);
      }
      try {
        serverChannel = b.bind(bindAddress).sync().channel();
      } catch (Exception e) {
        bossGroup.shutdownGracefully(0, 1, TimeUnit.SECONDS);
        workerGroup.shutdownGracefully(0, 1, TimeUnit.SECONDS);
        serverChannel = null;
        throw new IOException("cannot listen on " + bindAddress + ": " + e.getMessage(), e);
      }
      log.info("HTTP cache listening on {}", serverChannel.localAddress());
      return this;
    }
  }

  /** The TCP port actually bound. */
  public int port() {
    if (!(localAddress() instanceof InetSocketAddress a)) {
      throw new IllegalStateException("not listening on TCP");
    }
    return a.getPort();
  }

  /** The address actually bound. */
  public SocketAddress localAddress() {
    Channel ch = serverChannel;
    if (ch == null) {
      throw new IllegalStateException("not started");
    }
    return ch.localAddress();
  }

  /**
   * Marks the server as about to stop: from now on {@code /status} answers 503 (same body), so a readiness probe
   * fails and a load balancer stops routing new requests here, while every request is still served normally.
   * {@link #close()} follows.
   */
  public void startDraining() {
    service.setDraining();
  }

  /**
   * Stops accepting connections, closes idle ones, lets requests in flight finish (at most
   * {@link HttpCacheOptions#shutdownGrace()}), then closes everything.
   */
  @Override
  public void close() {
    synchronized (lifecycle) {
      if (serverChannel == null || shuttingDown) {
        return;
      }
      shuttingDown = true;
      serverChannel.close().awaitUninterruptibly();
      for (HttpConnection c : connections) {
        c.closeWhenIdle();
      }
      long deadline = System.nanoTime() + options.shutdownGrace().toNanos();
      while ((!connections.isEmpty() || liveWorkers.get() > 0) && System.nanoTime() < deadline) {
        for (HttpConnection c : connections) {
          c.closeWhenIdle();
        }
        try {
          Thread.sleep(10);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          break;
        }
      }
      if (!connections.isEmpty()) {
        log.warn("closing {} HTTP connection(s) with requests still in flight", connections.size());
        for (HttpConnection c : connections) {
          Channel ch = c.channel();
          if (ch != null) {
            ch.close();
          }
        }
      }
      bossGroup.shutdownGracefully(0, 2, TimeUnit.SECONDS).awaitUninterruptibly();
      workerGroup.shutdownGracefully(0, 2, TimeUnit.SECONDS).awaitUninterruptibly();
      log.info("HTTP cache stopped");
    }
  }

  // ---------------------------------------------------------------- for HttpConnection

  HttpCacheOptions options() {
    return options;
  }

  CacheService service() {
    return service;
  }

  boolean isShuttingDown() {
    return shuttingDown;
  }

  void connectionOpened(HttpConnection c) {
    connections.add(c);
    if (shuttingDown) {
      c.closeWhenIdle();
    }
  }

  /** Records the largest inbound backlog seen on any connection (bytes queued for a request's virtual thread). */
  void notePendingBodyBytes(long bytes) {
    maxPendingBytes.accumulateAndGet(bytes, Math::max);
  }

  /** The largest inbound backlog of any connection so far; shows that backpressure bounds memory per upload. */
  long maxPendingBodyBytes() {
    return maxPendingBytes.get();
  }

  void workerStarted() {
    liveWorkers.incrementAndGet();
  }

  void connectionClosed(HttpConnection c) {
    connections.remove(c);
    liveWorkers.decrementAndGet();
  }
}
