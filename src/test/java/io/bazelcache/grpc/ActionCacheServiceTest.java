package io.bazelcache.grpc;

import static io.bazelcache.grpc.GrpcServerFixture.proto;
import static io.bazelcache.grpc.GrpcServerFixture.random;
import static org.assertj.core.api.Assertions.assertThat;

import build.bazel.remote.execution.v2.ActionCacheGrpc;
import build.bazel.remote.execution.v2.ActionCacheGrpc.ActionCacheBlockingStub;
import build.bazel.remote.execution.v2.ActionResult;
import build.bazel.remote.execution.v2.Digest;
import build.bazel.remote.execution.v2.DigestFunction;
import build.bazel.remote.execution.v2.GetActionResultRequest;
import build.bazel.remote.execution.v2.OutputFile;
import build.bazel.remote.execution.v2.UpdateActionResultRequest;
import com.google.protobuf.ByteString;
import io.bazelcache.storage.BlobKey;
import io.bazelcache.storage.Kind;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class ActionCacheServiceTest {
  GrpcServerFixture f;
  ActionCacheBlockingStub ac;

  void start(GrpcOptions options, boolean depsCheck) throws Exception {
    f = new GrpcServerFixture(options, depsCheck);
    ac = ActionCacheGrpc.newBlockingStub(f.channel);
  }

  @AfterEach
  void tearDown() throws Exception {
    if (f != null) {
      f.close();
    }
  }

  static Status.Code code(Runnable r) {
    try {
      r.run();
    } catch (StatusRuntimeException e) {
      return e.getStatus().getCode();
    }
    return Status.Code.OK;
  }

  static final Digest ACTION = proto("some action".getBytes(StandardCharsets.UTF_8));

  @Test
  void updateStoresInlinedBlobsAndGetInlinesOnRequest() throws Exception {
    start(GrpcOptions.defaults(), true);
    byte[] out1 = random(1000, 1);
    byte[] out2 = random(2000, 2);
    byte[] stdout = "hello".getBytes(StandardCharsets.UTF_8);
    byte[] stderr = "warn".getBytes(StandardCharsets.UTF_8);
    ActionResult result = ActionResult.newBuilder()
        .addOutputFiles(OutputFile.newBuilder().setPath("out/a").setDigest(proto(out1))
            .setContents(ByteString.copyFrom(out1)))
        .addOutputFiles(OutputFile.newBuilder().setPath("out/b").setDigest(proto(out2))
            .setContents(ByteString.copyFrom(out2)))
        .setStdoutRaw(ByteString.copyFrom(stdout))
        .setStderrRaw(ByteString.copyFrom(stderr)).setStderrDigest(proto(stderr))
        .setExitCode(0)
        .build();
    ActionResult stored = ac.updateActionResult(UpdateActionResultRequest.newBuilder()
        .setActionDigest(ACTION).setActionResult(result).build());
    // Inlined contents went to the CAS; the stored result keeps digests only.
    assertThat(f.store.entries().get(CasServiceTest.key(out1))).isEqualTo(out1);
    assertThat(f.store.entries().get(CasServiceTest.key(out2))).isEqualTo(out2);
    assertThat(f.store.entries().get(CasServiceTest.key(stdout))).isEqualTo(stdout);
    assertThat(f.store.entries().get(CasServiceTest.key(stderr))).isEqualTo(stderr);
    assertThat(stored.getOutputFiles(0).getContents().isEmpty()).isTrue();
    assertThat(stored.getStdoutRaw().isEmpty()).isTrue();
    assertThat(stored.getStdoutDigest()).isEqualTo(proto(stdout));
    assertThat(stored.getExecutionMetadata().getWorker()).contains("127.0.0.1");

    ActionResult plain = ac.getActionResult(
        GetActionResultRequest.newBuilder().setActionDigest(ACTION).build());
    assertThat(plain).isEqualTo(stored);

    ActionResult inlined = ac.getActionResult(GetActionResultRequest.newBuilder()
        .setActionDigest(ACTION).setInlineStdout(true).setInlineStderr(true)
        .addInlineOutputFiles("out/b").build());
    assertThat(inlined.getStdoutRaw().toByteArray()).isEqualTo(stdout);
    assertThat(inlined.getStderrRaw().toByteArray()).isEqualTo(stderr);
    assertThat(inlined.getOutputFiles(0).getContents().isEmpty()).isTrue();
    assertThat(inlined.getOutputFiles(1).getContents().toByteArray()).isEqualTo(out2);
  }

  @Test
  void inliningIsBoundedByTheBudget() throws Exception {
    start(GrpcOptions.defaults(), true);
    byte[] big1 = random(2 * 1024 * 1024, 3);
    byte[] big2 = random(2 * 1024 * 1024, 4);
    f.store.put(CasServiceTest.key(big1), big1);
    f.store.put(CasServiceTest.key(big2), big2);
    ac.updateActionResult(UpdateActionResultRequest.newBuilder().setActionDigest(ACTION)
        .setActionResult(ActionResult.newBuilder()
            .addOutputFiles(OutputFile.newBuilder().setPath("a").setDigest(proto(big1)))
            .addOutputFiles(OutputFile.newBuilder().setPath("b").setDigest(proto(big2))))
        .build());
    ActionResult r = ac.getActionResult(GetActionResultRequest.newBuilder().setActionDigest(ACTION)
        .addInlineOutputFiles("a").addInlineOutputFiles("b").build());
    assertThat(r.getOutputFiles(0).getContents().toByteArray()).isEqualTo(big1);
    assertThat(r.getOutputFiles(1).getContents().isEmpty()).isTrue(); // over 3 MiB in total
  }

  @Test
  void missAndIncompleteAreNotFound() throws Exception {
    start(GrpcOptions.defaults(), true);
    assertThat(code(() -> ac.getActionResult(
        GetActionResultRequest.newBuilder().setActionDigest(ACTION).build())))
        .isEqualTo(Status.Code.NOT_FOUND);
    byte[] absent = random(10, 5);
    ac.updateActionResult(UpdateActionResultRequest.newBuilder().setActionDigest(ACTION)
        .setActionResult(ActionResult.newBuilder()
            .addOutputFiles(OutputFile.newBuilder().setPath("a").setDigest(proto(absent))))
        .build());
    // Stored, but its output is not in the CAS: a miss with the deps check.
    assertThat(code(() -> ac.getActionResult(
        GetActionResultRequest.newBuilder().setActionDigest(ACTION).build())))
        .isEqualTo(Status.Code.NOT_FOUND);
  }

  @Test
  void withoutDepsCheckAnIncompleteResultIsServed() throws Exception {
    start(GrpcOptions.defaults(), false);
    byte[] absent = random(10, 5);
    ac.updateActionResult(UpdateActionResultRequest.newBuilder().setActionDigest(ACTION)
        .setActionResult(ActionResult.newBuilder()
            .addOutputFiles(OutputFile.newBuilder().setPath("a").setDigest(proto(absent))))
        .build());
    assertThat(ac.getActionResult(GetActionResultRequest.newBuilder().setActionDigest(ACTION)
        .build()).getOutputFiles(0).getDigest()).isEqualTo(proto(absent));
  }

  @Test
  void badUpdatesAreInvalidArgumentAndStoreNothing() throws Exception {
    start(GrpcOptions.defaults(), true);
    byte[] data = random(100, 6);
    // Inlined contents that do not match the digest.
    assertThat(code(() -> ac.updateActionResult(UpdateActionResultRequest.newBuilder()
        .setActionDigest(ACTION)
        .setActionResult(ActionResult.newBuilder()
            .addOutputFiles(OutputFile.newBuilder().setPath("a").setDigest(proto(data))
                .setContents(ByteString.copyFrom(random(100, 7)))))
        .build()))).isEqualTo(Status.Code.INVALID_ARGUMENT);
    // Absolute output path.
    assertThat(code(() -> ac.updateActionResult(UpdateActionResultRequest.newBuilder()
        .setActionDigest(ACTION)
        .setActionResult(ActionResult.newBuilder()
            .addOutputFiles(OutputFile.newBuilder().setPath("/etc/passwd").setDigest(proto(data))))
        .build()))).isEqualTo(Status.Code.INVALID_ARGUMENT);
    // Bad action digest.
    assertThat(code(() -> ac.updateActionResult(UpdateActionResultRequest.newBuilder()
        .setActionDigest(Digest.newBuilder().setHash("abc"))
        .setActionResult(ActionResult.newBuilder().setExitCode(1)).build())))
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    // Empty result.
    assertThat(code(() -> ac.updateActionResult(UpdateActionResultRequest.newBuilder()
        .setActionDigest(ACTION).setActionResult(ActionResult.getDefaultInstance()).build())))
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
    // stdout_raw that does not match stdout_digest.
    assertThat(code(() -> ac.updateActionResult(UpdateActionResultRequest.newBuilder()
        .setActionDigest(ACTION)
        .setActionResult(ActionResult.newBuilder().setStdoutDigest(proto(data))
            .setStdoutRaw(ByteString.copyFromUtf8("other")))
        .build()))).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(f.store.entries()).isEmpty();
    assertThat(code(() -> ac.getActionResult(
        GetActionResultRequest.newBuilder().setActionDigest(Digest.newBuilder().setHash("x")).build())))
        .isEqualTo(Status.Code.INVALID_ARGUMENT);
  }

  @Test
  void blake3ActionResultsAreKeptApart() throws Exception {
    start(GrpcOptions.defaults(), true);
    ActionResult r = ActionResult.newBuilder().setExitCode(3).build();
    ac.updateActionResult(UpdateActionResultRequest.newBuilder().setActionDigest(ACTION)
        .setDigestFunction(DigestFunction.Value.BLAKE3).setActionResult(r).build());
    assertThat(f.store.entries().keySet()).containsExactly(
        new BlobKey(Kind.AC, io.bazelcache.digest.DigestFunction.BLAKE3, ACTION.getHash()));
    assertThat(code(() -> ac.getActionResult(
        GetActionResultRequest.newBuilder().setActionDigest(ACTION).build())))
        .isEqualTo(Status.Code.NOT_FOUND);
    assertThat(ac.getActionResult(GetActionResultRequest.newBuilder().setActionDigest(ACTION)
        .setDigestFunction(DigestFunction.Value.BLAKE3).build()).getExitCode()).isEqualTo(3);
  }

  @Test
  void instanceManglingSeparatesInstances() throws Exception {
    start(GrpcOptions.defaults().withAcKeyInstanceMangling(true), true);
    ActionResult r1 = ActionResult.newBuilder().setExitCode(1).build();
    ActionResult r2 = ActionResult.newBuilder().setExitCode(2).build();
    ActionResult r0 = ActionResult.newBuilder().setExitCode(7).build();
    ac.updateActionResult(UpdateActionResultRequest.newBuilder().setInstanceName("one")
        .setActionDigest(ACTION).setActionResult(r1).build());
    ac.updateActionResult(UpdateActionResultRequest.newBuilder().setInstanceName("two")
        .setActionDigest(ACTION).setActionResult(r2).build());
    ac.updateActionResult(UpdateActionResultRequest.newBuilder()
        .setActionDigest(ACTION).setActionResult(r0).build());
    assertThat(ac.getActionResult(GetActionResultRequest.newBuilder().setInstanceName("one")
        .setActionDigest(ACTION).build()).getExitCode()).isEqualTo(1);
    assertThat(ac.getActionResult(GetActionResultRequest.newBuilder().setInstanceName("two")
        .setActionDigest(ACTION).build()).getExitCode()).isEqualTo(2);
    assertThat(ac.getActionResult(GetActionResultRequest.newBuilder()
        .setActionDigest(ACTION).build()).getExitCode()).isEqualTo(7);
    // The documented key: sha256(hex hash ‖ instance name), as bazel-remote.
    String mangled = HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
        .digest((ACTION.getHash() + "one").getBytes(StandardCharsets.UTF_8)));
    assertThat(f.store.entries()).containsKey(
        new BlobKey(Kind.AC, io.bazelcache.digest.DigestFunction.SHA256, mangled));
    assertThat(f.store.entries()).containsKey(
        new BlobKey(Kind.AC, io.bazelcache.digest.DigestFunction.SHA256, ACTION.getHash()));
  }
}
