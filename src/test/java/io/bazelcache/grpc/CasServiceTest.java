package io.bazelcache.grpc;

import static io.bazelcache.grpc.GrpcServerFixture.proto;
import static io.bazelcache.grpc.GrpcServerFixture.random;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import build.bazel.remote.execution.v2.BatchReadBlobsRequest;
import build.bazel.remote.execution.v2.BatchReadBlobsResponse;
import build.bazel.remote.execution.v2.BatchUpdateBlobsRequest;
import build.bazel.remote.execution.v2.BatchUpdateBlobsResponse;
import build.bazel.remote.execution.v2.Compressor;
import build.bazel.remote.execution.v2.ContentAddressableStorageGrpc;
import build.bazel.remote.execution.v2.ContentAddressableStorageGrpc.ContentAddressableStorageBlockingStub;
import build.bazel.remote.execution.v2.Digest;
import build.bazel.remote.execution.v2.Directory;
import build.bazel.remote.execution.v2.DirectoryNode;
import build.bazel.remote.execution.v2.FileNode;
import build.bazel.remote.execution.v2.FindMissingBlobsRequest;
import build.bazel.remote.execution.v2.FindMissingBlobsResponse;
import build.bazel.remote.execution.v2.GetTreeRequest;
import build.bazel.remote.execution.v2.GetTreeResponse;
import build.bazel.remote.execution.v2.SplitBlobRequest;
import com.github.luben.zstd.Zstd;
import com.google.protobuf.ByteString;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.BlobKey;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class CasServiceTest {
  GrpcServerFixture f;
  ContentAddressableStorageBlockingStub cas;
  InstrumentedStore instrumented;

  @BeforeEach
  void setUp() throws Exception {
    f = new GrpcServerFixture(GrpcOptions.defaults().withMaxBlobSize(1 << 20), true,
        s -> instrumented = new InstrumentedStore(s));
    cas = ContentAddressableStorageGrpc.newBlockingStub(f.channel);
  }

  @AfterEach
  void tearDown() throws Exception {
    f.close();
  }

  static Status.Code code(Runnable r) {
    try {
      r.run();
    } catch (StatusRuntimeException e) {
      return e.getStatus().getCode();
    }
    return Status.Code.OK;
  }

  void put(byte[] data) throws Exception {
    f.store.put(BlobKey.cas(io.bazelcache.digest.Digest.of(DigestFunction.SHA256, data)), data);
  }

  @Test
  void findMissingBlobs() throws Exception {
    byte[] a = random(100, 1);
    byte[] b = random(200, 2);
    put(a);
    Digest empty = proto(new byte[0]);
    FindMissingBlobsResponse r = cas.findMissingBlobs(FindMissingBlobsRequest.newBuilder()
        .addBlobDigests(proto(a)).addBlobDigests(proto(b)).addBlobDigests(empty).build());
    assertThat(r.getMissingBlobDigestsList()).containsExactly(proto(b));
    // One store call for the whole request, no per-digest lookups.
    assertThat(instrumented.findMissingCalls.get()).isEqualTo(1);
    assertThat(instrumented.containsCalls.get()).isZero();
  }

  @Test
  void batchUpdateOnAFullStoreIsResourceExhaustedPerItem() {
    instrumented.full.set(true);
    byte[] a = random(100, 50);
    BatchUpdateBlobsResponse r = cas.batchUpdateBlobs(BatchUpdateBlobsRequest.newBuilder()
        .addRequests(req(proto(a), a, Compressor.Value.IDENTITY))
        .addRequests(req(proto(new byte[0]), new byte[0], Compressor.Value.IDENTITY)).build());
    assertThat(r.getResponses(0).getStatus().getCode())
        .isEqualTo(Status.Code.RESOURCE_EXHAUSTED.value());
    assertThat(r.getResponses(1).getStatus().getCode()).isZero(); // the empty blob needs no room
    assertThat(f.store.entries()).isEmpty();
  }

  @Test
  void getTreePagesStayUnderTheMessageLimit() throws Exception {
    // 40 directories of about 200 KiB each: 8 MiB in all, more than one 4 MiB message.
    Directory.Builder root = Directory.newBuilder();
    for (int i = 0; i < 40; i++) {
      Directory.Builder big = Directory.newBuilder();
      for (int j = 0; j < 800; j++) {
        big.addFiles(FileNode.newBuilder().setName(i + "-" + j + "-" + "n".repeat(180))
            .setDigest(proto(new byte[] {(byte) j})));
      }
      byte[] b = big.build().toByteArray();
      put(b);
      root.addDirectories(DirectoryNode.newBuilder().setName("d" + i).setDigest(proto(b)));
    }
    byte[] r = root.build().toByteArray();
    put(r);
    Iterator<GetTreeResponse> it = cas.getTree(GetTreeRequest.newBuilder().setRootDigest(proto(r)).build());
    int pages = 0;
    int dirs = 0;
    while (it.hasNext()) {
      GetTreeResponse p = it.next();
      assertThat(p.getSerializedSize()).isLessThanOrEqualTo(4 * 1024 * 1024);
      pages++;
      dirs += p.getDirectoriesCount();
    }
    assertThat(dirs).isEqualTo(41);
    assertThat(pages).isGreaterThanOrEqualTo(2);
  }

  @Test
  void findMissingBlobsRejectsBadDigest() {
    Digest bad = Digest.newBuilder().setHash("xyz").setSizeBytes(1).build();
    assertThat(code(() -> cas.findMissingBlobs(
        FindMissingBlobsRequest.newBuilder().addBlobDigests(bad).build())))
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    Digest negative = Digest.newBuilder().setHash("a".repeat(64)).setSizeBytes(-1).build();
    assertThat(code(() -> cas.findMissingBlobs(
        FindMissingBlobsRequest.newBuilder().addBlobDigests(negative).build())))
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    // An unknown digest function number.
    assertThat(code(() -> cas.findMissingBlobs(FindMissingBlobsRequest.newBuilder()
        .setDigestFunctionValue(42).addBlobDigests(proto(new byte[] {1})).build())))
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    // SHA-1 is a known function that this server does not serve.
    assertThat(code(() -> cas.findMissingBlobs(FindMissingBlobsRequest.newBuilder()
        .setDigestFunction(build.bazel.remote.execution.v2.DigestFunction.Value.SHA1)
        .addBlobDigests(proto(new byte[] {1})).build())))
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
  }

  @Test
  void batchUpdateStoresItemsAndReportsPerItemStatus() {
    byte[] a = random(1000, 3);
    byte[] b = random(5000, 4);
    byte[] c = random(300, 5);
    byte[] bCompressed = Zstd.compress(b);
    BatchUpdateBlobsResponse r = cas.batchUpdateBlobs(BatchUpdateBlobsRequest.newBuilder()
        .addRequests(req(proto(a), a, Compressor.Value.IDENTITY))
        .addRequests(req(proto(b), bCompressed, Compressor.Value.ZSTD))
        // Wrong content for the digest.
        .addRequests(req(proto(c), random(300, 6), Compressor.Value.IDENTITY))
        // Wrong length.
        .addRequests(req(proto(c), new byte[10], Compressor.Value.IDENTITY))
        // Unsupported compressor.
        .addRequests(req(proto(c), c, Compressor.Value.DEFLATE))
        // Corrupt zstd.
        .addRequests(req(proto(c), c, Compressor.Value.ZSTD))
        .build());
    List<Integer> codes = r.getResponsesList().stream().map(x -> x.getStatus().getCode()).toList();
    int invalid = Status.Code.INVALID_ARGUMENT.value();
    assertThat(codes).containsExactly(0, 0, invalid, invalid, invalid, invalid);
    assertThat(r.getResponses(1).getDigest()).isEqualTo(proto(b));
    assertThat(f.store.entries()).hasSize(2);
    assertThat(f.store.entries().get(key(a))).isEqualTo(a);
    assertThat(f.store.entries().get(key(b))).isEqualTo(b);
  }

  @Test
  void batchUpdateOverLimitsIsRejected() {
    // Over max_batch_total_size_bytes (4 MiB) in total: the whole call fails, nothing stored.
    BatchUpdateBlobsRequest.Builder big = BatchUpdateBlobsRequest.newBuilder();
    for (int i = 0; i < 5; i++) {
      byte[] d = random(1000 * 1000, 10 + i);
      big.addRequests(req(proto(d), d, Compressor.Value.IDENTITY));
    }
    assertThat(code(() -> cas.batchUpdateBlobs(big.build()))).isEqualTo(Status.Code.INVALID_ARGUMENT);
    // A malformed digest fails the whole call.
    byte[] ok = random(10, 20);
    assertThat(code(() -> cas.batchUpdateBlobs(BatchUpdateBlobsRequest.newBuilder()
        .addRequests(req(proto(ok), ok, Compressor.Value.IDENTITY))
        .addRequests(req(Digest.newBuilder().setHash("nope").build(), ok, Compressor.Value.IDENTITY))
        .build()))).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(f.store.entries()).isEmpty();
    // Over max blob size (1 MiB here): per-item INVALID_ARGUMENT.
    byte[] tooBig = random((1 << 20) + 1, 21);
    BatchUpdateBlobsResponse r = cas.batchUpdateBlobs(BatchUpdateBlobsRequest.newBuilder()
        .addRequests(req(proto(tooBig), tooBig, Compressor.Value.IDENTITY)).build());
    assertThat(r.getResponses(0).getStatus().getCode())
        .isEqualTo(Status.Code.INVALID_ARGUMENT.value());
    assertThat(f.store.entries()).isEmpty();
  }

  @Test
  void batchReadReturnsDataMissingAndCompressed() throws Exception {
    byte[] a = new byte[20000]; // compressible
    byte[] b = random(100, 7);
    put(a);
    put(b);
    byte[] missing = random(10, 8);
    BatchReadBlobsResponse r = cas.batchReadBlobs(BatchReadBlobsRequest.newBuilder()
        .addDigests(proto(a)).addDigests(proto(b)).addDigests(proto(missing))
        .addDigests(proto(new byte[0])).build());
    assertThat(r.getResponsesList()).hasSize(4);
    assertThat(r.getResponses(0).getData().toByteArray()).isEqualTo(a);
    assertThat(r.getResponses(0).getCompressor()).isEqualTo(Compressor.Value.IDENTITY);
    assertThat(r.getResponses(1).getData().toByteArray()).isEqualTo(b);
    assertThat(r.getResponses(2).getStatus().getCode()).isEqualTo(Status.Code.NOT_FOUND.value());
    assertThat(r.getResponses(3).getStatus().getCode()).isZero();
    assertThat(r.getResponses(3).getData().size()).isZero();

    BatchReadBlobsResponse z = cas.batchReadBlobs(BatchReadBlobsRequest.newBuilder()
        .addDigests(proto(a)).addAcceptableCompressors(Compressor.Value.ZSTD).build());
    assertThat(z.getResponses(0).getCompressor()).isEqualTo(Compressor.Value.ZSTD);
    assertThat(z.getResponses(0).getData().size()).isLessThan(a.length);
    assertThat(Zstd.decompress(z.getResponses(0).getData().toByteArray(), a.length)).isEqualTo(a);

    assertThat(code(() -> cas.batchReadBlobs(BatchReadBlobsRequest.newBuilder()
        .addDigests(Digest.newBuilder().setHash("zz").build()).build())))
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
  }

  @Test
  void batchReadSendsTheStoredZstdForm() throws Exception {
    byte[] a = new byte[50_000];
    put(a);
    instrumented.fileBacked.set(true);
    BatchReadBlobsResponse z = cas.batchReadBlobs(BatchReadBlobsRequest.newBuilder()
        .addDigests(proto(a)).addAcceptableCompressors(Compressor.Value.ZSTD).build());
    assertThat(z.getResponses(0).getCompressor()).isEqualTo(Compressor.Value.ZSTD);
    assertThat(z.getResponses(0).getData().toByteArray()).isEqualTo(Zstd.compress(a));
    assertThat(instrumented.zstdFileUses.get()).isEqualTo(1);
    BatchReadBlobsResponse plain = cas.batchReadBlobs(
        BatchReadBlobsRequest.newBuilder().addDigests(proto(a)).build());
    assertThat(plain.getResponses(0).getData().toByteArray()).isEqualTo(a);
  }

  @Test
  void blake3BatchRoundTripIsKeptApartFromSha256() {
    byte[] data = random(500, 30);
    io.bazelcache.digest.Digest b3 = io.bazelcache.digest.Digest.of(DigestFunction.BLAKE3, data);
    BatchUpdateBlobsResponse u = cas.batchUpdateBlobs(BatchUpdateBlobsRequest.newBuilder()
        .setDigestFunction(build.bazel.remote.execution.v2.DigestFunction.Value.BLAKE3)
        .addRequests(req(proto(b3), data, Compressor.Value.IDENTITY)).build());
    assertThat(u.getResponses(0).getStatus().getCode()).isZero();
    assertThat(f.store.entries()).containsOnlyKeys(BlobKey.cas(b3));

    // Same hex string looked up as SHA-256: missing.
    FindMissingBlobsResponse m = cas.findMissingBlobs(FindMissingBlobsRequest.newBuilder()
        .addBlobDigests(proto(b3)).build());
    assertThat(m.getMissingBlobDigestsList()).containsExactly(proto(b3));
    m = cas.findMissingBlobs(FindMissingBlobsRequest.newBuilder()
        .setDigestFunction(build.bazel.remote.execution.v2.DigestFunction.Value.BLAKE3)
        .addBlobDigests(proto(b3)).build());
    assertThat(m.getMissingBlobDigestsList()).isEmpty();

    BatchReadBlobsResponse r = cas.batchReadBlobs(BatchReadBlobsRequest.newBuilder()
        .setDigestFunction(build.bazel.remote.execution.v2.DigestFunction.Value.BLAKE3)
        .addDigests(proto(b3)).build());
    assertThat(r.getResponses(0).getData().toByteArray()).isEqualTo(data);

    // A SHA-256 upload of data under its BLAKE3 hash is a digest mismatch.
    BatchUpdateBlobsResponse wrong = cas.batchUpdateBlobs(BatchUpdateBlobsRequest.newBuilder()
        .addRequests(req(proto(b3), data, Compressor.Value.IDENTITY)).build());
    assertThat(wrong.getResponses(0).getStatus().getCode())
        .isEqualTo(Status.Code.INVALID_ARGUMENT.value());
  }

  @Test
  void getTreePaginatesOverEveryDirectoryOnce() throws Exception {
    // A tree of 1 + 10 + 10*10 directories, plus a shared subdirectory referenced twice and a missing
    // subtree that must be omitted.
    byte[] shared = Directory.newBuilder()
        .addFiles(FileNode.newBuilder().setName("s").setDigest(proto(new byte[] {9}))).build()
        .toByteArray();
    put(shared);
    Digest missing = proto(Directory.newBuilder()
        .addFiles(FileNode.newBuilder().setName("gone")).build().toByteArray());
    Set<Digest> all = new HashSet<>();
    all.add(proto(shared));
    Directory.Builder root = Directory.newBuilder();
    for (int i = 0; i < 10; i++) {
      Directory.Builder mid = Directory.newBuilder();
      for (int j = 0; j < 10; j++) {
        byte[] leaf = Directory.newBuilder()
            .addFiles(FileNode.newBuilder().setName("f" + i + "_" + j)
                .setDigest(proto(new byte[] {(byte) i, (byte) j})))
            .build().toByteArray();
        put(leaf);
        all.add(proto(leaf));
        mid.addDirectories(DirectoryNode.newBuilder().setName("d" + j).setDigest(proto(leaf)));
      }
      mid.addDirectories(DirectoryNode.newBuilder().setName("shared").setDigest(proto(shared)));
      if (i == 3) {
        mid.addDirectories(DirectoryNode.newBuilder().setName("x").setDigest(missing));
      }
      byte[] m = mid.build().toByteArray();
      put(m);
      all.add(proto(m));
      root.addDirectories(DirectoryNode.newBuilder().setName("m" + i).setDigest(proto(m)));
    }
    byte[] r = root.build().toByteArray();
    put(r);
    all.add(proto(r));
    assertThat(all).hasSize(112);

    List<Directory> seen = new ArrayList<>();
    String token = "";
    int calls = 0;
    do {
      // Each call streams from the token on; take only its first page to exercise the tokens.
      Iterator<GetTreeResponse> it = cas.getTree(GetTreeRequest.newBuilder()
          .setRootDigest(proto(r)).setPageSize(7).setPageToken(token).build());
      GetTreeResponse page = it.next();
      assertThat(page.getDirectoriesCount()).isBetween(1, 7);
      seen.addAll(page.getDirectoriesList());
      token = page.getNextPageToken();
      calls++;
      while (it.hasNext()) {
        it.next();
      }
    } while (!token.isEmpty());
    assertThat(calls).isEqualTo((112 + 6) / 7);
    Set<Digest> got = new HashSet<>();
    for (Directory d : seen) {
      assertThat(got.add(proto(d.toByteArray()))).isTrue();
    }
    assertThat(got).isEqualTo(all);

    // One call without a token streams every page.
    List<Directory> streamed = new ArrayList<>();
    Iterator<GetTreeResponse> it = cas.getTree(
        GetTreeRequest.newBuilder().setRootDigest(proto(r)).setPageSize(10).build());
    int pages = 0;
    while (it.hasNext()) {
      GetTreeResponse p = it.next();
      pages++;
      streamed.addAll(p.getDirectoriesList());
      assertThat(p.getNextPageToken().isEmpty()).isEqualTo(!it.hasNext());
    }
    assertThat(pages).isEqualTo(12);
    assertThat(streamed).isEqualTo(seen);
  }

  @Test
  void getTreeErrors() throws Exception {
    byte[] root = Directory.newBuilder().build().toByteArray();
    Digest absent = proto(random(50, 40));
    assertThat(code(() -> cas.getTree(GetTreeRequest.newBuilder().setRootDigest(absent).build())
        .hasNext())).isEqualTo(Status.Code.NOT_FOUND);
    byte[] dir = Directory.newBuilder().addFiles(FileNode.newBuilder().setName("a")).build()
        .toByteArray();
    put(dir);
    assertThat(code(() -> cas.getTree(GetTreeRequest.newBuilder().setRootDigest(proto(dir))
        .setPageToken("garbage").build()).hasNext())).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(code(() -> cas.getTree(GetTreeRequest.newBuilder().setRootDigest(proto(dir))
        .setPageSize(-1).build()).hasNext())).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(code(() -> cas.getTree(GetTreeRequest.newBuilder()
        .setRootDigest(Digest.newBuilder().setHash("q")).build()).hasNext()))
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    // A token from another root is refused.
    String otherToken = CasService.encodeToken(
        io.bazelcache.digest.Digest.of(DigestFunction.SHA256, root), 1);
    assertThat(code(() -> cas.getTree(GetTreeRequest.newBuilder().setRootDigest(proto(dir))
        .setPageToken(otherToken).build()).hasNext())).isEqualTo(Status.Code.INVALID_ARGUMENT);
  }

  @Test
  void splitBlobIsUnimplemented() {
    assertThat(code(() -> cas.splitBlob(SplitBlobRequest.getDefaultInstance())))
        .isEqualTo(Status.Code.UNIMPLEMENTED);
  }

  @Test
  void getTreeEmptyBlobAsRootIsAnEmptyDirectory() {
    Iterator<GetTreeResponse> it = cas.getTree(
        GetTreeRequest.newBuilder().setRootDigest(proto(new byte[0])).build());
    GetTreeResponse p = it.next();
    assertThat(p.getDirectoriesList()).containsExactly(Directory.getDefaultInstance());
    assertThat(p.getNextPageToken()).isEmpty();
    assertThat(it.hasNext()).isFalse();
  }

  // ---------------------------------------------------------------------------------------------
  // withoutRepeats and repeated digests in FindMissingBlobs

  static io.bazelcache.storage.DigestBatch batchOf(String... hashes) {
    List<io.bazelcache.digest.Digest> ds = new ArrayList<>();
    for (String h : hashes) {
      ds.add(new io.bazelcache.digest.Digest(DigestFunction.SHA256, h, 10));
    }
    return io.bazelcache.storage.DigestBatch.of(DigestFunction.SHA256, ds);
  }

  static final String A = "0123456789abcdef" + "a".repeat(48);
  static final String B = "fedcba9876543210" + "b".repeat(48);
  static final String C = "2222222222222222" + "c".repeat(48);
  /** Same first word as {@link #A}, different in the others. */
  static final String A_FIRST_WORD = "0123456789abcdef" + "a".repeat(47) + "0";
  static final String A_MIDDLE = "0123456789abcdef" + "a".repeat(16) + "1".repeat(16) + "a".repeat(16);

  @Test
  void withoutRepeatsReturnsTheSameArrayWhenNothingRepeats() {
    io.bazelcache.storage.DigestBatch batch = batchOf(A, B, C, A);
    int[] distinct = {0, 1, 2};
    assertThat(CasService.withoutRepeats(batch, distinct)).isSameAs(distinct).containsExactly(0, 1, 2);
    int[] one = {3};
    assertThat(CasService.withoutRepeats(batch, one)).isSameAs(one).containsExactly(3);
    int[] none = {};
    assertThat(CasService.withoutRepeats(batch, none)).isSameAs(none).isEmpty();
    // A and its repeat, but only one of them missing: nothing to drop.
    int[] oneOfTwo = {1, 2, 3};
    assertThat(CasService.withoutRepeats(batch, oneOfTwo)).isSameAs(oneOfTwo).containsExactly(1, 2, 3);
  }

  @Test
  void withoutRepeatsKeepsDifferentHashesThatShareTheFirstWord() {
    io.bazelcache.storage.DigestBatch batch = batchOf(A, A_FIRST_WORD, B, A_MIDDLE);
    assertThat(batch.word(0, 0)).isEqualTo(batch.word(1, 0)).isEqualTo(batch.word(3, 0));
    assertThat(CasService.withoutRepeats(batch, new int[] {0, 1, 2, 3})).containsExactly(0, 1, 2, 3);
    assertThat(CasService.withoutRepeats(batch, new int[] {1, 3})).containsExactly(1, 3);
  }

  @Test
  void withoutRepeatsDropsOnlyLaterTrueRepeatsInOrder() {
    //                                              0  1  2             3  4  5  6         7  8
    io.bazelcache.storage.DigestBatch batch = batchOf(A, B, A_FIRST_WORD, A, C, B, A_MIDDLE, A, C);
    assertThat(CasService.withoutRepeats(batch, new int[] {0, 1, 2, 3, 4, 5, 6, 7, 8}))
        .containsExactly(0, 1, 2, 4, 6);
    // The first missing occurrence is the one kept.
    assertThat(CasService.withoutRepeats(batch, new int[] {2, 3, 5, 7})).containsExactly(2, 3, 5);
    assertThat(CasService.withoutRepeats(batch, new int[] {0, 3, 7})).containsExactly(0);
    // Repeats with no first-word collision among the others.
    io.bazelcache.storage.DigestBatch twice = batchOf(B, C, B);
    assertThat(CasService.withoutRepeats(twice, new int[] {0, 1, 2})).containsExactly(0, 1);
  }

  static Digest protoOf(String hash, long size) {
    return Digest.newBuilder().setHash(hash).setSizeBytes(size).build();
  }

  @Test
  void findMissingBlobsReportsEachMissingDigestOnceInRequestOrder() throws Exception {
    byte[] present = random(300, 77);
    put(present);
    FindMissingBlobsResponse r = cas.findMissingBlobs(FindMissingBlobsRequest.newBuilder()
        .addBlobDigests(protoOf(B, 10))
        .addBlobDigests(proto(present))
        .addBlobDigests(protoOf(A, 10))
        .addBlobDigests(protoOf(B, 10))
        .addBlobDigests(proto(new byte[0]))
        .addBlobDigests(protoOf(A_FIRST_WORD, 10))
        .addBlobDigests(proto(present))
        .addBlobDigests(protoOf(A, 10))
        .addBlobDigests(protoOf(A_MIDDLE, 10))
        .build());
    assertThat(r.getMissingBlobDigestsList())
        .containsExactly(protoOf(B, 10), protoOf(A, 10), protoOf(A_FIRST_WORD, 10), protoOf(A_MIDDLE, 10));
    assertThat(instrumented.findMissingCalls.get()).isEqualTo(1);
  }

  @Test
  void findMissingBlobsWithRepeatsNamesTheFirstInvalidDigestByIndex() {
    FindMissingBlobsRequest.Builder req = FindMissingBlobsRequest.newBuilder()
        .addBlobDigests(protoOf(A, 10))
        .addBlobDigests(protoOf(B, 10))
        .addBlobDigests(protoOf(A, 10))
        .addBlobDigests(protoOf("A".repeat(64), 10)) // uppercase: invalid
        .addBlobDigests(protoOf(B, 10))
        .addBlobDigests(protoOf("xyz", 10)); // also invalid, but later
    StatusRuntimeException e = org.junit.jupiter.api.Assertions.assertThrows(StatusRuntimeException.class,
        () -> cas.findMissingBlobs(req.build()));
    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(e.getStatus().getDescription()).contains("blob_digests[3]").doesNotContain("blob_digests[5]");
    // Size 0 with a hash that is not the empty blob's, and a negative size, at index 3.
    for (Digest bad : List.of(protoOf(C, 0), protoOf(C, -1), protoOf(C.substring(1), 10))) {
      FindMissingBlobsRequest r2 = req.setBlobDigests(3, bad).build();
      StatusRuntimeException e2 = org.junit.jupiter.api.Assertions.assertThrows(StatusRuntimeException.class,
          () -> cas.findMissingBlobs(r2));
      assertThat(e2.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
      assertThat(e2.getStatus().getDescription()).as(bad.toString()).contains("blob_digests[3]");
    }
    // Nothing was asked of the store.
    assertThat(instrumented.findMissingCalls.get()).isZero();
  }

  static BlobKey key(byte[] data) {
    return BlobKey.cas(io.bazelcache.digest.Digest.of(DigestFunction.SHA256, data));
  }

  static BatchUpdateBlobsRequest.Request req(Digest d, byte[] data, Compressor.Value c) {
    return BatchUpdateBlobsRequest.Request.newBuilder()
        .setDigest(d).setData(ByteString.copyFrom(data)).setCompressor(c).build();
  }
}
