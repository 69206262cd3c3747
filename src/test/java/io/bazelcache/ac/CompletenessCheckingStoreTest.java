package io.bazelcache.ac;

import static org.assertj.core.api.Assertions.assertThat;

import build.bazel.remote.execution.v2.ActionResult;
import build.bazel.remote.execution.v2.Directory;
import build.bazel.remote.execution.v2.DirectoryNode;
import build.bazel.remote.execution.v2.FileNode;
import build.bazel.remote.execution.v2.OutputDirectory;
import build.bazel.remote.execution.v2.OutputFile;
import build.bazel.remote.execution.v2.Tree;
import com.google.protobuf.ByteString;
import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.ForwardingStore;
import io.bazelcache.storage.Kind;
import io.bazelcache.testing.MemoryBlobStore;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class CompletenessCheckingStoreTest {

  /** Forwards to a MemoryBlobStore and counts findMissing calls, to check one call per lookup. */
  static final class CountingStore extends ForwardingStore {
    final AtomicInteger findMissingCalls = new AtomicInteger();

    CountingStore(MemoryBlobStore mem) {
      super(mem);
    }

    @Override
    public List<BlobKey> findMissing(Collection<BlobKey> keys) throws IOException {
      findMissingCalls.incrementAndGet();
      return delegate.findMissing(keys);
    }
  }

  private final MemoryBlobStore mem = new MemoryBlobStore();
  private final CountingStore counting = new CountingStore(mem);
  private final CompletenessCheckingStore store = new CompletenessCheckingStore(counting);

  /** A complete action with a file, stdout, and a directory whose tree has a child directory. */
  private final class Fixture {
    final DigestFunction fn;
    final Digest fileA;
    final Digest stdout;
    final Digest rootFile;
    final Digest childFile;
    final Tree tree;
    final Digest treeDigest;
    final ActionResult result;
    final BlobKey acKey;

    Fixture(DigestFunction fn) throws IOException {
      this.fn = fn;
      fileA = putCas(fn, "contents of a");
      stdout = putCas(fn, "compiler output");
      rootFile = putCas(fn, "root file");
      childFile = putCas(fn, "child file");
      Directory child =
          Directory.newBuilder()
              .addFiles(FileNode.newBuilder().setName("c.txt").setDigest(DigestProtos.toProto(childFile)))
              .addFiles(FileNode.newBuilder().setName("empty").setDigest(DigestProtos.toProto(Digest.empty(fn))))
              .build();
      Digest childDigest = Digest.of(fn, child.toByteArray());
      Directory root =
          Directory.newBuilder()
              .addFiles(FileNode.newBuilder().setName("r.txt").setDigest(DigestProtos.toProto(rootFile)))
              .addDirectories(DirectoryNode.newBuilder().setName("sub").setDigest(DigestProtos.toProto(childDigest)))
              .build();
      tree = Tree.newBuilder().setRoot(root).addChildren(child).build();
      treeDigest = putCas(fn, tree.toByteArray());
      result =
          ActionResult.newBuilder()
              .addOutputFiles(OutputFile.newBuilder().setPath("out/a").setDigest(DigestProtos.toProto(fileA)))
              .addOutputFiles(
                  OutputFile.newBuilder()
                      .setPath("out/inlined")
                      .setDigest(DigestProtos.toProto(Digest.of(fn, "never stored".getBytes())))
                      .setContents(ByteString.copyFromUtf8("never stored")))
              .addOutputDirectories(
                  OutputDirectory.newBuilder().setPath("out/dir").setTreeDigest(DigestProtos.toProto(treeDigest)))
              .setStdoutDigest(DigestProtos.toProto(stdout))
              .build();
      acKey = new BlobKey(Kind.AC, fn, Digest.of(fn, "the action".getBytes()).hash());
      mem.put(acKey, result.toByteArray());
    }
  }

  private Digest putCas(DigestFunction fn, String s) throws IOException {
    return putCas(fn, s.getBytes(StandardCharsets.UTF_8));
  }

  private Digest putCas(DigestFunction fn, byte[] data) throws IOException {
    Digest d = Digest.of(fn, data);
    mem.put(BlobKey.cas(d), data);
    return d;
  }

  private void assertHit(Fixture f) throws IOException {
    assertThat(store.contains(f.acKey)).isTrue();
    try (Blob b = store.get(f.acKey)) {
      assertThat(b).isNotNull();
      assertThat(b.readAllBytes()).isEqualTo(f.result.toByteArray());
      assertThat(b.size()).isEqualTo(f.result.getSerializedSize());
      assertThat(b.openStream(3).readAllBytes()).hasSize(f.result.getSerializedSize() - 3);
    }
    assertThat(store.getActionResult(f.acKey)).isEqualTo(f.result);
    assertThat(store.findMissing(List.of(f.acKey))).isEmpty();
  }

  private void assertMiss(Fixture f) throws IOException {
    assertThat(store.get(f.acKey)).isNull();
    assertThat(store.contains(f.acKey)).isFalse();
    assertThat(store.getActionResult(f.acKey)).isNull();
    assertThat(store.findMissing(List.of(f.acKey))).containsExactly(f.acKey);
    // The entry itself is left alone: only the answer changes.
    assertThat(mem.entries()).containsKey(f.acKey);
  }

  @ParameterizedTest
  @EnumSource(DigestFunction.class)
  void completeEntryIsAHit(DigestFunction fn) throws IOException {
    Fixture f = new Fixture(fn);
    assertHit(f);
  }

  @Test
  void oneFindMissingCallPerLookup() throws IOException {
    Fixture f = new Fixture(DigestFunction.SHA256);
    counting.findMissingCalls.set(0);
    assertThat(store.get(f.acKey)).isNotNull();
    assertThat(counting.findMissingCalls.get()).isEqualTo(1);
  }

  @Test
  void missingOutputFileIsAMiss() throws IOException {
    Fixture f = new Fixture(DigestFunction.SHA256);
    mem.entries().remove(BlobKey.cas(f.fileA));
    assertMiss(f);
  }

  @Test
  void missingStdoutIsAMiss() throws IOException {
    Fixture f = new Fixture(DigestFunction.SHA256);
    mem.entries().remove(BlobKey.cas(f.stdout));
    assertMiss(f);
  }

  @Test
  void missingFileInTreeRootIsAMiss() throws IOException {
    Fixture f = new Fixture(DigestFunction.SHA256);
    mem.entries().remove(BlobKey.cas(f.rootFile));
    assertMiss(f);
  }

  @Test
  void missingFileInTreeChildIsAMiss() throws IOException {
    Fixture f = new Fixture(DigestFunction.BLAKE3);
    mem.entries().remove(BlobKey.cas(f.childFile));
    assertMiss(f);
  }

  @Test
  void missingTreeBlobIsAMiss() throws IOException {
    Fixture f = new Fixture(DigestFunction.SHA256);
    mem.entries().remove(BlobKey.cas(f.treeDigest));
    assertMiss(f);
  }

  @Test
  void treeSizeMismatchIsAMiss() throws IOException {
    Fixture f = new Fixture(DigestFunction.SHA256);
    // Same hash as the stored tree but a different size in the reference.
    ActionResult lying =
        f.result.toBuilder()
            .setOutputDirectories(
                0,
                f.result.getOutputDirectories(0).toBuilder()
                    .setTreeDigest(
                        DigestProtos.toProto(new Digest(f.fn, f.treeDigest.hash(), f.treeDigest.sizeBytes() + 1))))
            .build();
    mem.put(f.acKey, lying.toByteArray());
    assertThat(store.get(f.acKey)).isNull();
    assertThat(store.contains(f.acKey)).isFalse();
  }

  @Test
  void treeThatIsNotATreeIsAMiss() throws IOException {
    Fixture f = new Fixture(DigestFunction.SHA256);
    Digest notATree = putCas(f.fn, new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff});
    ActionResult r =
        f.result.toBuilder()
            .setOutputDirectories(
                0, f.result.getOutputDirectories(0).toBuilder().setTreeDigest(DigestProtos.toProto(notATree)))
            .build();
    mem.put(f.acKey, r.toByteArray());
    assertThat(store.get(f.acKey)).isNull();
  }

  @Test
  void treeWithMalformedFileDigestIsAMiss() throws IOException {
    Fixture f = new Fixture(DigestFunction.SHA256);
    Tree bad =
        Tree.newBuilder()
            .setRoot(
                Directory.newBuilder()
                    .addFiles(
                        FileNode.newBuilder()
                            .setName("x")
                            .setDigest(build.bazel.remote.execution.v2.Digest.newBuilder().setHash("nothex").setSizeBytes(1))))
            .build();
    Digest badTree = putCas(f.fn, bad.toByteArray());
    ActionResult r =
        f.result.toBuilder()
            .setOutputDirectories(
                0, f.result.getOutputDirectories(0).toBuilder().setTreeDigest(DigestProtos.toProto(badTree)))
            .build();
    mem.put(f.acKey, r.toByteArray());
    assertThat(store.contains(f.acKey)).isFalse();
  }

  @Test
  void garbageAcBytesAreAMiss() throws IOException {
    BlobKey key = new BlobKey(Kind.AC, DigestFunction.SHA256, "1".repeat(64));
    mem.put(key, new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff});
    assertThat(store.get(key)).isNull();
    assertThat(store.contains(key)).isFalse();
    assertThat(store.findMissing(List.of(key))).containsExactly(key);
  }

  @Test
  void invalidAcEntryIsAMiss() throws IOException {
    Fixture f = new Fixture(DigestFunction.SHA256);
    ActionResult absolute =
        f.result.toBuilder()
            .setOutputFiles(0, f.result.getOutputFiles(0).toBuilder().setPath("/abs"))
            .build();
    mem.put(f.acKey, absolute.toByteArray());
    assertThat(store.get(f.acKey)).isNull();
  }

  @Test
  void sha256EntryIsNotCheckedAgainstBlake3Blobs() throws IOException {
    // Blobs stored under one function do not satisfy references under the other.
    Fixture f = new Fixture(DigestFunction.BLAKE3);
    BlobKey shaKey = new BlobKey(Kind.AC, DigestFunction.SHA256, f.acKey.hash());
    mem.put(
        shaKey,
        ActionResult.newBuilder()
            .addOutputFiles(
                OutputFile.newBuilder()
                    .setPath("a")
                    .setDigest(
                        DigestProtos.toProto(new Digest(DigestFunction.SHA256, f.fileA.hash(), f.fileA.sizeBytes()))))
            .build()
            .toByteArray());
    assertThat(store.contains(shaKey)).isFalse();
    assertThat(store.contains(f.acKey)).isTrue();
  }

  @Test
  void absentEntryIsAMiss() throws IOException {
    BlobKey key = new BlobKey(Kind.AC, DigestFunction.SHA256, "2".repeat(64));
    assertThat(store.get(key)).isNull();
    assertThat(store.contains(key)).isFalse();
  }

  @Test
  void otherKindsAndWritesPassThrough() throws IOException {
    Fixture f = new Fixture(DigestFunction.SHA256);
    BlobKey raw = new BlobKey(Kind.RAW, DigestFunction.SHA256, "3".repeat(64));
    store.put(raw, "not an action result".getBytes());
    assertThat(mem.entries()).containsKey(raw);
    try (Blob b = store.get(raw)) {
      assertThat(new String(b.readAllBytes())).isEqualTo("not an action result");
    }
    assertThat(store.contains(BlobKey.cas(f.fileA))).isTrue();
    try (Blob b = store.get(BlobKey.cas(f.fileA))) {
      assertThat(new String(b.readAllBytes())).isEqualTo("contents of a");
    }
    // An AC write is not checked here: an incomplete entry is stored, then reads as a miss.
    BlobKey ac = new BlobKey(Kind.AC, DigestFunction.SHA256, "4".repeat(64));
    ActionResult incomplete =
        ActionResult.newBuilder()
            .addOutputFiles(
                OutputFile.newBuilder()
                    .setPath("x")
                    .setDigest(DigestProtos.toProto(Digest.of(DigestFunction.SHA256, "absent".getBytes()))))
            .build();
    store.put(ac, incomplete.toByteArray());
    assertThat(mem.entries()).containsKey(ac);
    assertThat(store.contains(ac)).isFalse();
    assertThat(store.stats().numFiles()).isEqualTo(mem.stats().numFiles());
  }

  @Test
  void findMissingMixesKindsAndKeepsOrder() throws IOException {
    Fixture f = new Fixture(DigestFunction.SHA256);
    BlobKey absentCas = BlobKey.cas(Digest.of(DigestFunction.SHA256, "nope".getBytes()));
    BlobKey absentAc = new BlobKey(Kind.AC, DigestFunction.SHA256, "5".repeat(64));
    BlobKey presentCas = BlobKey.cas(f.fileA);
    assertThat(store.findMissing(List.of(absentAc, presentCas, f.acKey, absentCas)))
        .containsExactly(absentAc, absentCas);
  }
}
