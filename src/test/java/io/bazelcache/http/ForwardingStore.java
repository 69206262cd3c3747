package io.bazelcache.http;

import io.bazelcache.testing.MemoryBlobStore;

/** A test store that passes everything to a MemoryBlobStore; tests override the calls they want to change. */
class ForwardingStore extends io.bazelcache.storage.ForwardingStore {
  final MemoryBlobStore mem;

  ForwardingStore() {
    this(new MemoryBlobStore());
  }

  private ForwardingStore(MemoryBlobStore mem) {
    super(mem);
    this.mem = mem;
  }
}
