package io.bazelcache.storage.disk;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * The disk stores a test opened, closed after each test ({@code @RegisterExtension}); a test that closes
 * one itself removes it.
 */
public final class OpenStores implements AfterEachCallback {
  private final List<DiskStore> open = new ArrayList<>();

  /** Opens a store (see {@link DiskStore#open}) that is closed after the test. */
  public DiskStore open(Path dir, long maxSize, long hardLimit, StorageMode mode, long maxBlobSize)
      throws IOException {
    return add(DiskStore.open(dir, maxSize, hardLimit, mode, maxBlobSize));
  }

  public DiskStore add(DiskStore s) {
    open.add(s);
    return s;
  }

  /** Forgets a store the test closed itself. */
  public void remove(DiskStore s) {
    open.remove(s);
  }

  @Override
  public void afterEach(ExtensionContext context) throws IOException {
    for (DiskStore s : open) {
      s.close();
    }
    open.clear();
  }
}
