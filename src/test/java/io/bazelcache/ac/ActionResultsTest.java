package io.bazelcache.ac;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import build.bazel.remote.execution.v2.ActionResult;
import build.bazel.remote.execution.v2.OutputDirectory;
import build.bazel.remote.execution.v2.OutputFile;
import build.bazel.remote.execution.v2.OutputSymlink;
import com.google.protobuf.ByteString;
import io.bazelcache.digest.Digest;
import io.bazelcache.digest.DigestFunction;
import io.bazelcache.storage.InvalidEntryException;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class ActionResultsTest {

  private static final DigestFunction SHA = DigestFunction.SHA256;

  static build.bazel.remote.execution.v2.Digest proto(DigestFunction fn, String content) {
    return DigestProtos.toProto(Digest.of(fn, content.getBytes(StandardCharsets.UTF_8)));
  }

  static ActionResult sample(DigestFunction fn) {
    return ActionResult.newBuilder()
        .addOutputFiles(OutputFile.newBuilder().setPath("bazel-out/k8/bin/a.o").setDigest(proto(fn, "a")))
        .addOutputFiles(
            OutputFile.newBuilder()
                .setPath("bazel-out/k8/bin/inline.txt")
                .setDigest(proto(fn, "inline"))
                .setContents(ByteString.copyFromUtf8("inline")))
        .addOutputDirectories(
            OutputDirectory.newBuilder().setPath("bazel-out/k8/bin/dir").setTreeDigest(proto(fn, "tree")))
        .addOutputSymlinks(OutputSymlink.newBuilder().setPath("bazel-out/link").setTarget("../x"))
        .setExitCode(0)
        .setStdoutDigest(proto(fn, "out"))
        .setStderrDigest(proto(fn, ""))
        .build();
  }

  @Test
  void validResultPassesAndListsReferencedBlobs() throws Exception {
    ActionResult r = sample(SHA);
    ActionResults.validate(r, SHA);
    assertThat(ActionResults.referencedBlobs(r, SHA))
        .containsExactly(
            Digest.of(SHA, "a".getBytes()), Digest.of(SHA, "out".getBytes()), Digest.of(SHA, "tree".getBytes()));
    assertThat(ActionResults.treeDigests(r, SHA)).containsExactly(Digest.of(SHA, "tree".getBytes()));
  }

  @Test
  void binaryAndJsonRoundTrip() throws Exception {
    ActionResult r = sample(SHA);
    assertThat(ActionResults.parseBinary(ActionResults.toBinary(r))).isEqualTo(r);
    String json = ActionResults.toJson(r);
    assertThat(json).contains("\"outputFiles\"").contains("\"treeDigest\"");
    assertThat(ActionResults.parseJson(json)).isEqualTo(r);
    assertThat(ActionResults.parseAndValidate(json.getBytes(StandardCharsets.UTF_8), true, SHA)).isEqualTo(r);
    assertThat(ActionResults.parseAndValidate(r.toByteArray(), false, SHA)).isEqualTo(r);
  }

  @Test
  void jsonWithUnknownFieldIsRejected() {
    assertThatThrownBy(() -> ActionResults.parseJson("{\"exitCode\": 1, \"bogus\": 2}"))
        .isInstanceOf(InvalidEntryException.class)
        .hasMessageContaining("not valid JSON")
        .hasMessageContaining("bogus");
  }

  @Test
  void malformedJsonIsRejected() {
    assertThatThrownBy(() -> ActionResults.parseJson("{\"exitCode\": "))
        .isInstanceOf(InvalidEntryException.class)
        .hasMessageContaining("not valid JSON");
  }

  @Test
  void garbageBinaryIsRejected() {
    byte[] garbage = {(byte) 0xff, (byte) 0xff, (byte) 0xff, 0x01, 0x02};
    assertThatThrownBy(() -> ActionResults.parseBinary(garbage))
        .isInstanceOf(InvalidEntryException.class)
        .hasMessageContaining("not a valid binary proto");
  }

  @Test
  void absoluteOutputPathIsRejected() {
    ActionResult r =
        ActionResult.newBuilder()
            .addOutputFiles(OutputFile.newBuilder().setPath("/etc/passwd").setDigest(proto(SHA, "a")))
            .build();
    assertThatThrownBy(() -> ActionResults.validate(r, SHA))
        .isInstanceOf(InvalidEntryException.class)
        .hasMessage("invalid ActionResult: output_files[0].path \"/etc/passwd\" is an absolute path");
  }

  @Test
  void absoluteDirectoryAndSymlinkPathsAreRejected() {
    ActionResult dir =
        ActionResult.newBuilder()
            .addOutputDirectories(
                OutputDirectory.newBuilder().setPath("/tmp/d").setTreeDigest(proto(SHA, "t")))
            .build();
    assertThatThrownBy(() -> ActionResults.validate(dir, SHA))
        .hasMessageContaining("output_directories[0].path \"/tmp/d\" is an absolute path");
    ActionResult link =
        ActionResult.newBuilder()
            .addOutputFileSymlinks(OutputSymlink.newBuilder().setPath("C:\\x").setTarget("y"))
            .build();
    assertThatThrownBy(() -> ActionResults.validate(link, SHA))
        .hasMessageContaining("output_file_symlinks[0].path \"C:\\x\" is an absolute path");
  }

  @Test
  void pathEscapingUpwardsIsRejected() {
    ActionResult r =
        ActionResult.newBuilder()
            .addOutputFiles(OutputFile.newBuilder().setPath("a/../../b").setDigest(proto(SHA, "a")))
            .build();
    assertThatThrownBy(() -> ActionResults.validate(r, SHA))
        .isInstanceOf(InvalidEntryException.class)
        .hasMessage("invalid ActionResult: output_files[0].path \"a/../../b\" escapes the working directory");
  }

  @Test
  void dotDotThatStaysInsideIsAccepted() throws Exception {
    ActionResult r =
        ActionResult.newBuilder()
            .addOutputFiles(OutputFile.newBuilder().setPath("a/b/../c").setDigest(proto(SHA, "a")))
            .addOutputDirectories(OutputDirectory.newBuilder().setPath("").setTreeDigest(proto(SHA, "t")))
            .build();
    ActionResults.validate(r, SHA);
  }

  @Test
  void emptyOutputFilePathIsRejected() {
    ActionResult r =
        ActionResult.newBuilder().addOutputFiles(OutputFile.newBuilder().setDigest(proto(SHA, "a"))).build();
    assertThatThrownBy(() -> ActionResults.validate(r, SHA))
        .hasMessage("invalid ActionResult: output_files[0].path is empty");
  }

  @Test
  void negativeSizeIsRejected() {
    ActionResult r =
        ActionResult.newBuilder()
            .setStdoutDigest(proto(SHA, "out").toBuilder().setSizeBytes(-5))
            .build();
    assertThatThrownBy(() -> ActionResults.validate(r, SHA))
        .isInstanceOf(InvalidEntryException.class)
        .hasMessageStartingWith("invalid ActionResult: stdout_digest: negative size -5");
  }

  @Test
  void missingDigestIsRejected() {
    ActionResult file =
        ActionResult.newBuilder().addOutputFiles(OutputFile.newBuilder().setPath("a")).build();
    assertThatThrownBy(() -> ActionResults.validate(file, SHA))
        .isInstanceOf(InvalidEntryException.class)
        .hasMessage("invalid ActionResult: output_files[0].digest is missing");
    ActionResult dir =
        ActionResult.newBuilder()
            .addOutputFiles(OutputFile.newBuilder().setPath("a").setDigest(proto(SHA, "a")))
            .addOutputDirectories(OutputDirectory.newBuilder().setPath("d"))
            .build();
    assertThatThrownBy(() -> ActionResults.validate(dir, SHA))
        .hasMessage("invalid ActionResult: output_directories[0].tree_digest is missing");
  }

  @Test
  void emptySymlinkTargetIsRejected() {
    ActionResult r =
        ActionResult.newBuilder()
            .addOutputDirectorySymlinks(OutputSymlink.newBuilder().setPath("ok").setTarget("t"))
            .addOutputDirectorySymlinks(OutputSymlink.newBuilder().setPath("dangling"))
            .build();
    assertThatThrownBy(() -> ActionResults.validate(r, SHA))
        .isInstanceOf(InvalidEntryException.class)
        .hasMessage("invalid ActionResult: output_directory_symlinks[1].target is empty");
  }

  @Test
  void badHexIsRejected() {
    ActionResult upper =
        ActionResult.newBuilder()
            .addOutputFiles(
                OutputFile.newBuilder()
                    .setPath("a")
                    .setDigest(proto(SHA, "a").toBuilder().setHash("AB".repeat(32))))
            .build();
    assertThatThrownBy(() -> ActionResults.validate(upper, SHA))
        .isInstanceOf(InvalidEntryException.class)
        .hasMessageStartingWith("invalid ActionResult: output_files[0].digest: invalid sha256 hash \"" + "AB".repeat(32));
    ActionResult shortHash =
        ActionResult.newBuilder()
            .setStderrDigest(build.bazel.remote.execution.v2.Digest.newBuilder().setHash("abc").setSizeBytes(3))
            .build();
    assertThatThrownBy(() -> ActionResults.validate(shortHash, SHA))
        .hasMessageStartingWith("invalid ActionResult: stderr_digest: invalid sha256 hash \"abc\"");
  }

  @Test
  void zeroSizeWithNonEmptyHashIsRejected() {
    ActionResult r =
        ActionResult.newBuilder()
            .addOutputFiles(
                OutputFile.newBuilder().setPath("a").setDigest(proto(SHA, "a").toBuilder().setSizeBytes(0)))
            .build();
    assertThatThrownBy(() -> ActionResults.validate(r, SHA))
        .hasMessageContaining("output_files[0].digest: size 0 with a hash that is not the empty blob's");
  }

  @Test
  void blake3DigestsAreAcceptedForBlake3() throws Exception {
    ActionResult r = sample(DigestFunction.BLAKE3);
    ActionResults.validate(r, DigestFunction.BLAKE3);
    assertThat(ActionResults.referencedBlobs(r, DigestFunction.BLAKE3))
        .allSatisfy(d -> assertThat(d.function()).isEqualTo(DigestFunction.BLAKE3))
        .contains(Digest.of(DigestFunction.BLAKE3, "a".getBytes()));
    // A BLAKE3 empty-blob digest is not the SHA-256 empty blob: only the BLAKE3 form is accepted.
    ActionResult emptyFile =
        ActionResult.newBuilder()
            .addOutputFiles(OutputFile.newBuilder().setPath("e").setDigest(proto(DigestFunction.BLAKE3, "")))
            .build();
    ActionResults.validate(emptyFile, DigestFunction.BLAKE3);
    assertThatThrownBy(() -> ActionResults.validate(emptyFile, SHA))
        .hasMessageContaining("size 0 with a hash that is not the empty blob's");
  }

  @Test
  void emptyResultIsValidAndReferencesNothing() throws Exception {
    ActionResult r = ActionResult.getDefaultInstance();
    ActionResults.validate(r, SHA);
    assertThat(ActionResults.referencedBlobs(r, SHA)).isEmpty();
    assertThat(ActionResults.toJson(r)).isEqualTo("{\n}");
  }
  @Test
  void inlinedBlobsAreListedWithTheirDigests() throws Exception {
    ActionResult r =
        sample(SHA).toBuilder()
            .setStdoutRaw(ByteString.copyFromUtf8("out"))
            .setStderrRaw(ByteString.copyFromUtf8("err, no digest declared"))
            .clearStderrDigest()
            .build();
    var blobs = ActionResults.inlinedBlobs(r, SHA);
    assertThat(blobs)
        .extracting(ActionResults.InlinedBlob::field)
        .containsExactly("output_files[1].contents", "stdout_raw", "stderr_raw");
    assertThat(blobs.get(0).digest()).isEqualTo(Digest.of(SHA, "inline".getBytes()));
    assertThat(blobs.get(0).data().toStringUtf8()).isEqualTo("inline");
    assertThat(blobs.get(2).digest()).isEqualTo(Digest.of(SHA, "err, no digest declared".getBytes()));
  }

  @Test
  void inlinedContentThatContradictsItsDigestIsRejected() {
    ActionResult r =
        ActionResult.newBuilder()
            .addOutputFiles(
                OutputFile.newBuilder()
                    .setPath("f")
                    .setDigest(proto(SHA, "declared"))
                    .setContents(ByteString.copyFromUtf8("actual")))
            .build();
    assertThatThrownBy(() -> ActionResults.inlinedBlobs(r, SHA))
        .isInstanceOf(InvalidEntryException.class)
        .hasMessageStartingWith("invalid ActionResult: output_files[0].contents hashes to sha256:");
    ActionResult stdout =
        ActionResult.newBuilder()
            .setStdoutRaw(ByteString.copyFromUtf8("x"))
            .setStdoutDigest(proto(SHA, "y"))
            .build();
    assertThatThrownBy(() -> ActionResults.inlinedBlobs(stdout, SHA))
        .hasMessageContaining("stdout_raw hashes to");
  }

  @Test
  void workerIsFilledOnlyWhenEmpty() {
    ActionResult r = ActionResults.withWorkerIfUnset(ActionResult.getDefaultInstance(), "10.0.0.7:5555");
    assertThat(r.getExecutionMetadata().getWorker()).isEqualTo("10.0.0.7:5555");
    ActionResult again = ActionResults.withWorkerIfUnset(r, "other");
    assertThat(again).isSameAs(r);
  }
}
