package io.bazelcache.ac;

import build.bazel.remote.execution.v2.ActionResult;
import build.bazel.remote.execution.v2.Directory;
import build.bazel.remote.execution.v2.FileNode;
import build.bazel.remote.execution.v2.Tree;
import com.google.protobuf.InvalidProtocolBufferException;
import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.BlobStore;
import io.bazelcache.storage.BlobWriter;
import io.bazelcache.storage.InvalidEntryException;
import io.bazelcache.storage.Kind;
import io.bazelcache.storage.StoreStats;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves an action-cache entry only if everything it refers to is in the CAS: output files,
 * stdout/stderr, each output directory's Tree blob and every file listed in those trees. Otherwise
 * the entry counts as absent, so a client re-runs the action instead of failing to download its
 * outputs. Malformed entries are absent too. Other kinds and all writes go straight to the
 * backing store.
 *
 * <p>One lookup costs one {@code get} of the entry, one {@code get} per output directory's Tree,
 * and a single {@link BlobStore#findMissing} call.
 */
public final class CompletenessCheckingStore implements BlobStore {
  private static final Logger log = LoggerFactory.getLogger(CompletenessCheckingStore.class);

  /** Trees larger than this are not read into memory; such an entry counts as incomplete. */
  static final long MAX_TREE_BYTES = 256L * 1024 * 1024;

  private final BlobStore backing;

  public CompletenessCheckingStore(BlobStore backing) {
    this.backing = backing;
  }

  /** The store this one decorates. */
  public BlobStore backing() {
    return backing;
  }

  @Override
  public Blob get(BlobKey key) throws IOException {
    if (key.kind() != Kind.AC) {
      return backing.get(key);
    }
    Checked c = check(key);
    return c == null ? null : new BytesBlob(c.bytes());
  }

  @Override
  public boolean contains(BlobKey key) throws IOException {
    if (key.kind() != Kind.AC) {
      return backing.contains(key);
    }
    return check(key) != null;
  }

  @Override
  public List<BlobKey> findMissing(Collection<BlobKey> keys) throws IOException {
    List<BlobKey> others = new ArrayList<>();
    for (BlobKey k : keys) {
      if (k.kind() != Kind.AC) {
        others.add(k);
      }
    }
    Set<BlobKey> missingOthers =
        others.isEmpty() ? Set.of() : new java.util.HashSet<>(backing.findMissing(others));
    List<BlobKey> missing = new ArrayList<>();
    for (BlobKey k : keys) {
      boolean absent = k.kind() == Kind.AC ? check(k) == null : missingOthers.contains(k);
      if (absent) {
        missing.add(k);
      }
    }
    return missing;
  }

  /**
   * The parsed entry for an AC key if it is present, valid and complete, else {@code null}. Lets the
   * gRPC ActionCache avoid parsing the entry a second time.
   */
  public ActionResult getActionResult(BlobKey key) throws IOException {
    if (key.kind() != Kind.AC) {
      throw new IllegalArgumentException("not an action-cache key: " + key);
    }
    Checked c = check(key);
    return c == null ? null : c.result();
  }

  @Override
  public BlobWriter newWriter(BlobKey key, long size) throws IOException {
    return backing.newWriter(key, size);
  }

  @Override
  public void put(BlobKey key, long size, InputStream in) throws IOException {
    backing.put(key, size, in);
  }

  @Override
  public void put(BlobKey key, byte[] data) throws IOException {
    backing.put(key, data);
  }

  @Override
  public StoreStats stats() {
    return backing.stats();
  }

  @Override
  public void close() throws IOException {
    backing.close();
  }

  private record Checked(byte[] bytes, ActionResult result) {}

  private Checked check(BlobKey key) throws IOException {
    byte[] bytes;
    try (Blob b = backing.get(key)) {
      if (b == null) {
        return null;
      }
      bytes = b.readAllBytes();
    }
    DigestFunction fn = key.function();
    ActionResult result;
    Set<Digest> needed = new LinkedHashSet<>();
    try {
      result = ActionResults.parseBinary(bytes);
      ActionResults.validate(result, fn);
      ActionResults.addFileDigests(result, fn, needed);
      for (Digest treeDigest : ActionResults.treeDigests(result, fn)) {
        Tree tree = loadTree(key, treeDigest);
        if (tree == null) {
          return null;
        }
        addTreeFiles(tree, fn, needed);
      }
    } catch (InvalidEntryException e) {
      log.debug("AC entry {} is malformed, treating it as absent: {}", key, e.getMessage());
      return null;
    }
    needed.removeIf(Digest::isEmpty);
    if (!needed.isEmpty()) {
      List<BlobKey> keys = new ArrayList<>(needed.size());
      for (Digest d : needed) {
        keys.add(BlobKey.cas(d));
      }
      List<BlobKey> missing = backing.findMissing(keys);
      if (!missing.isEmpty()) {
        log.debug(
            "AC entry {} is incomplete: {} of {} CAS blobs missing, e.g. {}",
            key,
            missing.size(),
            keys.size(),
            missing.get(0));
        return null;
      }
    }
    return new Checked(bytes, result);
  }

  /** The Tree blob, or null (logged) if it is missing, the wrong size or not a Tree. */
  private Tree loadTree(BlobKey acKey, Digest treeDigest) throws IOException {
    if (treeDigest.sizeBytes() > MAX_TREE_BYTES) {
      log.debug("AC entry {}: tree {} is too large to check", acKey, treeDigest);
      return null;
    }
    byte[] data;
    try (Blob b = backing.get(BlobKey.cas(treeDigest))) {
      if (b == null) {
        log.debug("AC entry {} is incomplete: tree {} is missing", acKey, treeDigest);
        return null;
      }
      if (b.size() != treeDigest.sizeBytes()) {
        log.debug(
            "AC entry {}: tree {} has {} bytes, not {}",
            acKey,
            treeDigest,
            b.size(),
            treeDigest.sizeBytes());
        return null;
      }
      data = b.readAllBytes();
    }
    try {
      return Tree.parseFrom(data);
    } catch (InvalidProtocolBufferException e) {
      log.debug("AC entry {}: tree {} is not a valid Tree: {}", acKey, treeDigest, e.getMessage());
      return null;
    }
  }

  private static void addTreeFiles(Tree tree, DigestFunction fn, Set<Digest> out)
      throws InvalidEntryException {
    addDirectoryFiles(tree.getRoot(), fn, "root", out);
    for (int i = 0; i < tree.getChildrenCount(); i++) {
      addDirectoryFiles(tree.getChildren(i), fn, "children[" + i + "]", out);
    }
  }

  private static void addDirectoryFiles(
      Directory dir, DigestFunction fn, String where, Set<Digest> out)
      throws InvalidEntryException {
    for (int i = 0; i < dir.getFilesCount(); i++) {
      FileNode f = dir.getFiles(i);
      try {
        out.add(DigestProtos.fromProto(f.hasDigest() ? f.getDigest() : null, fn));
      } catch (Digest.InvalidDigestException e) {
        throw new InvalidEntryException(
            "invalid Tree: " + where + ".files[" + i + "].digest: " + e.getMessage());
      }
    }
  }

  /** An AC entry already read into memory. */
  private static final class BytesBlob implements Blob {
    private final byte[] data;

    BytesBlob(byte[] data) {
      this.data = data;
    }

    @Override
    public long size() {
      return data.length;
    }

    @Override
    public InputStream openStream(long offset) throws IOException {
      if (offset < 0 || offset > data.length) {
        throw new IOException("offset " + offset + " outside 0.." + data.length);
      }
      return new ByteArrayInputStream(data, (int) offset, data.length - (int) offset);
    }

    @Override
    public byte[] readAllBytes() {
      return data.clone();
    }

    @Override
    public void close() {}
  }
}
