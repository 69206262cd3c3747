package io.bazelcache.ac;

import build.bazel.remote.execution.v2.ActionResult;
import build.bazel.remote.execution.v2.OutputDirectory;
import build.bazel.remote.execution.v2.OutputFile;
import build.bazel.remote.execution.v2.OutputSymlink;
import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.util.JsonFormat;
import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.InvalidEntryException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Parsing, validation and serialization of action-cache values, shared by the HTTP and gRPC
 * transports. Validation covers the fields of the ActionResult itself, as bazel-remote does on
 * upload; whether the referenced CAS blobs exist is {@link CompletenessCheckingStore}'s job.
 */
public final class ActionResults {
  private ActionResults() {}

  private static final JsonFormat.Parser JSON_PARSER = JsonFormat.parser();
  private static final JsonFormat.Printer JSON_PRINTER = JsonFormat.printer();

  /** Parses the binary encoding. */
  public static ActionResult parseBinary(byte[] data) throws InvalidEntryException {
    try {
      return ActionResult.parseFrom(data);
    } catch (InvalidProtocolBufferException e) {
      throw new InvalidEntryException("ActionResult is not a valid binary proto: " + e.getMessage());
    }
  }

  /** Parses protobuf JSON; unknown fields are an error. */
  public static ActionResult parseJson(String json) throws InvalidEntryException {
    ActionResult.Builder b = ActionResult.newBuilder();
    try {
      JSON_PARSER.merge(json, b);
    } catch (InvalidProtocolBufferException | RuntimeException e) {
      // JsonFormat reports malformed JSON with runtime exceptions from its JSON reader too.
      throw new InvalidEntryException("ActionResult is not valid JSON: " + e.getMessage());
    }
    return b.build();
  }

  /** Parses UTF-8 JSON bytes; see {@link #parseJson(String)}. */
  public static ActionResult parseJson(byte[] json) throws InvalidEntryException {
    return parseJson(new String(json, StandardCharsets.UTF_8));
  }

  /** Parses JSON or binary, then validates; the usual path for an upload. */
  public static ActionResult parseAndValidate(byte[] data, boolean json, DigestFunction function)
      throws InvalidEntryException {
    ActionResult r = json ? parseJson(data) : parseBinary(data);
    validate(r, function);
    return r;
  }

  public static byte[] toBinary(ActionResult result) {
    return result.toByteArray();
  }

  public static String toJson(ActionResult result) {
    try {
      return JSON_PRINTER.print(result);
    } catch (InvalidProtocolBufferException e) {
      // Only possible with Any fields whose types are unknown to the printer.
      throw new IllegalArgumentException("cannot print ActionResult as JSON: " + e.getMessage(), e);
    }
  }

  /**
   * Checks the fields of {@code result}: every required digest present and well formed for {@code
   * function}, output paths relative and not escaping upwards, symlink targets non-empty.
   *
   * @throws InvalidEntryException naming the first offending field
   */
  public static void validate(ActionResult result, DigestFunction function)
      throws InvalidEntryException {
    for (int i = 0; i < result.getOutputFilesCount(); i++) {
      OutputFile f = result.getOutputFiles(i);
      String field = "output_files[" + i + "]";
      checkPath(f.getPath(), field + ".path", false);
      requireDigest(f.hasDigest(), f.getDigest(), function, field + ".digest");
    }
    for (int i = 0; i < result.getOutputDirectoriesCount(); i++) {
      OutputDirectory d = result.getOutputDirectories(i);
      String field = "output_directories[" + i + "]";
      // An empty path is legal here: it stands for the whole working directory.
      checkPath(d.getPath(), field + ".path", true);
      requireDigest(d.hasTreeDigest(), d.getTreeDigest(), function, field + ".tree_digest");
      if (d.hasRootDirectoryDigest()) {
        requireDigest(true, d.getRootDirectoryDigest(), function, field + ".root_directory_digest");
      }
    }
    checkSymlinks(result.getOutputFileSymlinksList(), "output_file_symlinks");
    checkSymlinks(result.getOutputDirectorySymlinksList(), "output_directory_symlinks");
    checkSymlinks(result.getOutputSymlinksList(), "output_symlinks");
    if (result.hasStdoutDigest()) {
      requireDigest(true, result.getStdoutDigest(), function, "stdout_digest");
    }
    if (result.hasStderrDigest()) {
      requireDigest(true, result.getStderrDigest(), function, "stderr_digest");
    }
  }

  /**
   * The CAS blobs {@code result} refers to directly: output files whose contents are not inlined,
   * stdout and stderr digests, and the Tree blobs of output directories. Files inside the trees are
   * not included (that needs the trees' contents). Empty blobs are left out, since they always
   * exist. No duplicates, in first-seen order.
   *
   * @throws InvalidEntryException if a digest is malformed (call {@link #validate} first to get
   *     the full check)
   */
  public static List<Digest> referencedBlobs(ActionResult result, DigestFunction function)
      throws InvalidEntryException {
    Set<Digest> out = new LinkedHashSet<>();
    addFileDigests(result, function, out);
    out.addAll(treeDigests(result, function));
    out.removeIf(Digest::isEmpty);
    return new ArrayList<>(out);
  }

  /** The tree digest of each output directory, in order. */
  public static List<Digest> treeDigests(ActionResult result, DigestFunction function)
      throws InvalidEntryException {
    List<Digest> out = new ArrayList<>(result.getOutputDirectoriesCount());
    for (int i = 0; i < result.getOutputDirectoriesCount(); i++) {
      OutputDirectory d = result.getOutputDirectories(i);
      out.add(
          requireDigest(
              d.hasTreeDigest(),
              d.getTreeDigest(),
              function,
              "output_directories[" + i + "].tree_digest"));
    }
    return out;
  }

  /** Content carried inside an ActionResult, with the CAS digest it belongs under. */
  public record InlinedBlob(String field, Digest digest, ByteString data) {}

  /**
   * The blobs inlined in {@code result}: output file {@code contents}, {@code stdout_raw} and
   * {@code stderr_raw} (empty ones are skipped). A server stores these in the CAS on upload, as
   * bazel-remote does. When the result also declares a digest for the content, the two must agree.
   *
   * @throws InvalidEntryException if inlined content does not match its declared digest
   */
  public static List<InlinedBlob> inlinedBlobs(ActionResult result, DigestFunction function)
      throws InvalidEntryException {
    List<InlinedBlob> out = new ArrayList<>();
    for (int i = 0; i < result.getOutputFilesCount(); i++) {
      OutputFile f = result.getOutputFiles(i);
      if (!f.getContents().isEmpty()) {
        String field = "output_files[" + i + "]";
        out.add(
            inlined(
                field + ".contents",
                f.getContents(),
                f.hasDigest(),
                f.getDigest(),
                field + ".digest",
                function));
      }
    }
    if (!result.getStdoutRaw().isEmpty()) {
      out.add(
          inlined(
              "stdout_raw",
              result.getStdoutRaw(),
              result.hasStdoutDigest(),
              result.getStdoutDigest(),
              "stdout_digest",
              function));
    }
    if (!result.getStderrRaw().isEmpty()) {
      out.add(
          inlined(
              "stderr_raw",
              result.getStderrRaw(),
              result.hasStderrDigest(),
              result.getStderrDigest(),
              "stderr_digest",
              function));
    }
    return out;
  }

  private static InlinedBlob inlined(
      String field,
      ByteString data,
      boolean hasDeclared,
      build.bazel.remote.execution.v2.Digest declared,
      String declaredField,
      DigestFunction function)
      throws InvalidEntryException {
    Digest actual = Digest.of(function, data.toByteArray());
    if (hasDeclared) {
      Digest want = requireDigest(true, declared, function, declaredField);
      if (!want.equals(actual)) {
        throw new InvalidEntryException(
            "invalid ActionResult: " + field + " hashes to " + actual + ", not the declared " + want);
      }
    }
    return new InlinedBlob(field, actual, data);
  }

  /**
   * {@code result} with {@code execution_metadata.worker} set to {@code worker} if it was empty, as
   * bazel-remote does with the client's address; otherwise {@code result} itself.
   */
  public static ActionResult withWorkerIfUnset(ActionResult result, String worker) {
    if (!result.getExecutionMetadata().getWorker().isEmpty()) {
      return result;
    }
    ActionResult.Builder b = result.toBuilder();
    b.getExecutionMetadataBuilder().setWorker(worker);
    return b.build();
  }

  /** Adds output files (unless inlined) and stdout/stderr digests to {@code out}. */
  static void addFileDigests(ActionResult result, DigestFunction function, Set<Digest> out)
      throws InvalidEntryException {
    for (int i = 0; i < result.getOutputFilesCount(); i++) {
      OutputFile f = result.getOutputFiles(i);
      if (!f.getContents().isEmpty()) {
        continue; // inlined, nothing to fetch from the CAS
      }
      out.add(requireDigest(f.hasDigest(), f.getDigest(), function, "output_files[" + i + "].digest"));
    }
    if (result.hasStdoutDigest()) {
      out.add(requireDigest(true, result.getStdoutDigest(), function, "stdout_digest"));
    }
    if (result.hasStderrDigest()) {
      out.add(requireDigest(true, result.getStderrDigest(), function, "stderr_digest"));
    }
  }

  static Digest requireDigest(
      boolean present,
      build.bazel.remote.execution.v2.Digest proto,
      DigestFunction function,
      String field)
      throws InvalidEntryException {
    if (!present) {
      throw new InvalidEntryException("invalid ActionResult: " + field + " is missing");
    }
    try {
      return DigestProtos.fromProto(proto, function);
    } catch (Digest.InvalidDigestException e) {
      throw new InvalidEntryException("invalid ActionResult: " + field + ": " + e.getMessage());
    }
  }

  private static void checkSymlinks(List<OutputSymlink> links, String name)
      throws InvalidEntryException {
    for (int i = 0; i < links.size(); i++) {
      OutputSymlink l = links.get(i);
      String field = name + "[" + i + "]";
      checkPath(l.getPath(), field + ".path", false);
      if (l.getTarget().isEmpty()) {
        throw new InvalidEntryException("invalid ActionResult: " + field + ".target is empty");
      }
    }
  }

  /** Output paths are relative, use '/' and must stay inside the working directory. */
  static void checkPath(String path, String field, boolean emptyAllowed)
      throws InvalidEntryException {
    if (path.isEmpty()) {
      if (emptyAllowed) {
        return;
      }
      throw new InvalidEntryException("invalid ActionResult: " + field + " is empty");
    }
    if (path.startsWith("/") || path.startsWith("\\") || hasDrivePrefix(path)) {
      throw new InvalidEntryException(
          "invalid ActionResult: " + field + " \"" + path + "\" is an absolute path");
    }
    int depth = 0;
    for (String segment : path.split("/", -1)) {
      if (segment.equals("..")) {
        depth--;
        if (depth < 0) {
          throw new InvalidEntryException(
              "invalid ActionResult: " + field + " \"" + path + "\" escapes the working directory");
        }
      } else if (!segment.isEmpty() && !segment.equals(".")) {
        depth++;
      }
    }
  }

  private static boolean hasDrivePrefix(String path) {
    return path.length() >= 2
        && path.charAt(1) == ':'
        && Character.isLetter(path.charAt(0))
        && (path.length() == 2 || path.charAt(2) == '/' || path.charAt(2) == '\\');
  }
}
