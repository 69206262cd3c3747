package io.bazelcache.storage.layers;

import io.bazelcache.storage.Blob;
import io.bazelcache.storage.BlobKey;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;

/**
 * The operations the layers need from a shared backend (S3): existence, download, upload. Kept apart
 * from {@link io.bazelcache.storage.BlobStore} because a download is not yet verified (the local store's
 * commit verifies it) and an upload sends the local entry's stored bytes.
 */
public interface RemoteStore extends Closeable {

  /**
   * Whether the backend has the entry (HEAD).
   *
   * @throws IOException if the backend could not answer
   */
  boolean exists(BlobKey key) throws IOException;

  /**
   * Downloads the entry; {@code null} if the backend does not have it or its logical size exceeds
   * {@code maxSize}. The content is <em>not</em> verified against the key: the caller must.
   *
   * @throws IOException if the backend could not answer, or the object is malformed
   */
  RemoteEntry fetch(BlobKey key, long maxSize) throws IOException;

  /**
   * Uploads the local entry {@code blob} under {@code key}.
   *
   * @throws PermanentFailureException if retrying cannot help (e.g. access denied)
   * @throws IOException for anything else (worth retrying)
   */
  void upload(BlobKey key, Blob blob) throws IOException;

  /** Called after a fetched entry was verified and stored (e.g. to refresh the object's timestamp). */
  default void fetched(BlobKey key) {}

  @Override
  default void close() throws IOException {}

  /** A downloaded entry, spooled locally; close it to free its space. */
  interface RemoteEntry extends Closeable {
    /** Logical (uncompressed) size. */
    long size();

    /** The uncompressed content; may be called once. */
    InputStream openStream() throws IOException;

    /**
     * The entry as the backend holds it in this server's casblob format (zstd mode), to be stored as is
     * instead of decompressed and compressed again; {@code null} if the backend holds plain content.
     * Either this or {@link #openStream} may be called, once.
     */
    default InputStream openCasblob() throws IOException {
      return null;
    }

    @Override
    void close();
  }

  /** An error that retrying will not fix (4xx other than throttling/timeouts). */
  final class PermanentFailureException extends IOException {
    public PermanentFailureException(String message, Throwable cause) {
      super(message, cause);
    }
  }
}
