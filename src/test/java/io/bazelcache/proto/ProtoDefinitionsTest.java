package io.bazelcache.proto;

import static org.assertj.core.api.Assertions.assertThat;

import build.bazel.remote.asset.v1.FetchBlobRequest;
import build.bazel.remote.asset.v1.FetchGrpc;
import build.bazel.remote.asset.v1.PushBlobRequest;
import build.bazel.remote.asset.v1.PushGrpc;
import build.bazel.remote.asset.v1.Qualifier;
import build.bazel.remote.execution.v2.ActionCacheGrpc;
import build.bazel.remote.execution.v2.ActionResult;
import build.bazel.remote.execution.v2.BatchReadBlobsRequest;
import build.bazel.remote.execution.v2.CacheCapabilities;
import build.bazel.remote.execution.v2.CapabilitiesGrpc;
import build.bazel.remote.execution.v2.ChunkingFunction;
import build.bazel.remote.execution.v2.Command;
import build.bazel.remote.execution.v2.Compressor;
import build.bazel.remote.execution.v2.ContentAddressableStorageGrpc;
import build.bazel.remote.execution.v2.Digest;
import build.bazel.remote.execution.v2.DigestFunction;
import build.bazel.remote.execution.v2.FastCdc2020Params;
import build.bazel.remote.execution.v2.OutputDirectory;
import build.bazel.remote.execution.v2.OutputFile;
import build.bazel.remote.execution.v2.ServerCapabilities;
import build.bazel.remote.execution.v2.SpliceBlobRequest;
import build.bazel.semver.SemVer;
import com.google.bytestream.ByteStreamGrpc;
import com.google.bytestream.ByteStreamProto.WriteRequest;
import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.EnumDescriptor;
import com.google.protobuf.Message;
import com.google.protobuf.util.JsonFormat;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/** Guards the hand-written .proto files: wrong names or numbers would break wire compatibility. */
class ProtoDefinitionsTest {

  private static final String SHA = "a".repeat(64);

  @ParameterizedTest(name = "{0}.{1} = {2}")
  @CsvSource({
    "build.bazel.remote.execution.v2.CacheCapabilities, digest_functions, 1",
    "build.bazel.remote.execution.v2.CacheCapabilities, max_batch_total_size_bytes, 4",
    "build.bazel.remote.execution.v2.CacheCapabilities, supported_compressors, 6",
    "build.bazel.remote.execution.v2.CacheCapabilities, supported_batch_update_compressors, 7",
    "build.bazel.remote.execution.v2.CacheCapabilities, max_cas_blob_size_bytes, 8",
    "build.bazel.remote.execution.v2.CacheCapabilities, split_blob_support, 9",
    "build.bazel.remote.execution.v2.CacheCapabilities, splice_blob_support, 10",
    "build.bazel.remote.execution.v2.CacheCapabilities, fast_cdc_2020_params, 11",
    "build.bazel.remote.execution.v2.CacheCapabilities, rep_max_cdc_params, 12",
    "build.bazel.remote.execution.v2.ServerCapabilities, high_api_version, 5",
    "build.bazel.remote.execution.v2.ExecutionCapabilities, digest_functions, 5",
    "build.bazel.remote.execution.v2.FindMissingBlobsRequest, digest_function, 3",
    "build.bazel.remote.execution.v2.FindMissingBlobsResponse, missing_blob_digests, 2",
    "build.bazel.remote.execution.v2.BatchUpdateBlobsRequest, digest_function, 5",
    "build.bazel.remote.execution.v2.BatchUpdateBlobsRequest.Request, compressor, 3",
    "build.bazel.remote.execution.v2.BatchReadBlobsRequest, acceptable_compressors, 3",
    "build.bazel.remote.execution.v2.BatchReadBlobsRequest, digest_function, 4",
    "build.bazel.remote.execution.v2.BatchReadBlobsResponse.Response, compressor, 4",
    "build.bazel.remote.execution.v2.GetTreeRequest, digest_function, 5",
    "build.bazel.remote.execution.v2.GetActionResultRequest, inline_output_files, 5",
    "build.bazel.remote.execution.v2.GetActionResultRequest, digest_function, 6",
    "build.bazel.remote.execution.v2.UpdateActionResultRequest, digest_function, 5",
    "build.bazel.remote.execution.v2.ExecuteRequest, digest_function, 9",
    "build.bazel.remote.execution.v2.ExecuteRequest, inline_output_files, 12",
    "build.bazel.remote.execution.v2.ExecuteOperationMetadata, partial_execution_metadata, 5",
    "build.bazel.remote.execution.v2.ExecuteOperationMetadata, digest_function, 6",
    "build.bazel.remote.execution.v2.SplitBlobRequest, chunking_function, 4",
    "build.bazel.remote.execution.v2.SplitBlobResponse, chunking_function, 2",
    "build.bazel.remote.execution.v2.SpliceBlobRequest, chunk_digests, 3",
    "build.bazel.remote.execution.v2.SpliceBlobRequest, chunking_function, 5",
    "build.bazel.remote.execution.v2.FastCdc2020Params, seed, 2",
    "build.bazel.remote.execution.v2.RepMaxCdcParams, horizon_size_bytes, 2",
    "build.bazel.remote.execution.v2.ActionResult, output_files, 2",
    "build.bazel.remote.execution.v2.ActionResult, output_directories, 3",
    "build.bazel.remote.execution.v2.ActionResult, stdout_digest, 6",
    "build.bazel.remote.execution.v2.ActionResult, stderr_digest, 8",
    "build.bazel.remote.execution.v2.ActionResult, execution_metadata, 9",
    "build.bazel.remote.execution.v2.ActionResult, output_file_symlinks, 10",
    "build.bazel.remote.execution.v2.ActionResult, output_directory_symlinks, 11",
    "build.bazel.remote.execution.v2.ActionResult, output_symlinks, 12",
    "build.bazel.remote.execution.v2.OutputFile, contents, 5",
    "build.bazel.remote.execution.v2.OutputFile, node_properties, 7",
    "build.bazel.remote.execution.v2.OutputDirectory, tree_digest, 3",
    "build.bazel.remote.execution.v2.OutputDirectory, is_topologically_sorted, 4",
    "build.bazel.remote.execution.v2.OutputDirectory, root_directory_digest, 5",
    "build.bazel.remote.execution.v2.ExecutedActionMetadata, virtual_execution_duration, 12",
    "build.bazel.remote.execution.v2.Command, output_directory_format, 9",
    "build.bazel.remote.execution.v2.Directory, node_properties, 5",
    "build.bazel.remote.execution.v2.FileNode, node_properties, 6",
    "build.bazel.remote.execution.v2.RequestMetadata, configuration_id, 7",
    "google.bytestream.ReadResponse, data, 10",
    "google.bytestream.WriteRequest, finish_write, 3",
    "google.bytestream.WriteRequest, data, 10",
    "google.bytestream.QueryWriteStatusResponse, complete, 2",
    "build.bazel.semver.SemVer, prerelease, 4",
    "build.bazel.remote.asset.v1.FetchBlobRequest, qualifiers, 5",
    "build.bazel.remote.asset.v1.FetchBlobRequest, digest_function, 6",
    "build.bazel.remote.asset.v1.FetchBlobResponse, blob_digest, 5",
    "build.bazel.remote.asset.v1.FetchBlobResponse, digest_function, 6",
    "build.bazel.remote.asset.v1.FetchDirectoryResponse, root_directory_digest, 5",
    "build.bazel.remote.asset.v1.PushBlobRequest, references_directories, 7",
    "build.bazel.remote.asset.v1.PushBlobRequest, digest_function, 8",
    "build.bazel.remote.asset.v1.PushDirectoryRequest, digest_function, 8",
  })
  void fieldNumbers(String message, String field, int number) {
    Descriptor d = descriptor(message);
    assertThat(d.findFieldByName(field)).as(message + "." + field).isNotNull();
    assertThat(d.findFieldByName(field).getNumber()).isEqualTo(number);
  }

  @Test
  void enumNumbers() {
    assertThat(DigestFunction.Value.SHA256.getNumber()).isEqualTo(1);
    assertThat(DigestFunction.Value.SHA256TREE.getNumber()).isEqualTo(8);
    assertThat(DigestFunction.Value.BLAKE3.getNumber()).isEqualTo(9);
    assertThat(DigestFunction.Value.GITSHA1.getNumber()).isEqualTo(10);
    assertThat(Compressor.Value.ZSTD.getNumber()).isEqualTo(1);
    assertThat(Compressor.Value.BROTLI.getNumber()).isEqualTo(3);
    assertThat(ChunkingFunction.Value.FAST_CDC_2020.getNumber()).isEqualTo(1);
    assertThat(ChunkingFunction.Value.REP_MAX_CDC.getNumber()).isEqualTo(2);
    assertThat(Command.OutputDirectoryFormat.TREE_AND_DIRECTORY.getNumber()).isEqualTo(2);
    EnumDescriptor df = DigestFunction.Value.getDescriptor();
    assertThat(df.getValues()).hasSize(11);
  }

  @Test
  void servicesAndMethodsHaveSpecNames() {
    assertThat(ActionCacheGrpc.getGetActionResultMethod().getFullMethodName())
        .isEqualTo("build.bazel.remote.execution.v2.ActionCache/GetActionResult");
    assertThat(ContentAddressableStorageGrpc.getSpliceBlobMethod().getFullMethodName())
        .isEqualTo("build.bazel.remote.execution.v2.ContentAddressableStorage/SpliceBlob");
    assertThat(ContentAddressableStorageGrpc.getSplitBlobMethod().getFullMethodName())
        .isEqualTo("build.bazel.remote.execution.v2.ContentAddressableStorage/SplitBlob");
    assertThat(ContentAddressableStorageGrpc.getGetTreeMethod().getType())
        .isEqualTo(io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING);
    assertThat(CapabilitiesGrpc.getGetCapabilitiesMethod().getFullMethodName())
        .isEqualTo("build.bazel.remote.execution.v2.Capabilities/GetCapabilities");
    assertThat(ByteStreamGrpc.getWriteMethod().getFullMethodName())
        .isEqualTo("google.bytestream.ByteStream/Write");
    assertThat(ByteStreamGrpc.getWriteMethod().getType())
        .isEqualTo(io.grpc.MethodDescriptor.MethodType.CLIENT_STREAMING);
    assertThat(ByteStreamGrpc.getQueryWriteStatusMethod().getFullMethodName())
        .isEqualTo("google.bytestream.ByteStream/QueryWriteStatus");
    assertThat(FetchGrpc.getFetchBlobMethod().getFullMethodName())
        .isEqualTo("build.bazel.remote.asset.v1.Fetch/FetchBlob");
    assertThat(PushGrpc.getPushDirectoryMethod().getFullMethodName())
        .isEqualTo("build.bazel.remote.asset.v1.Push/PushDirectory");
  }

  @Test
  void messagesRoundTripThroughBinaryAndJson() throws Exception {
    Digest d = Digest.newBuilder().setHash(SHA).setSizeBytes(42).build();
    List<Message> samples =
        List.of(
            ActionResult.newBuilder()
                .addOutputFiles(
                    OutputFile.newBuilder().setPath("out/a").setDigest(d).setIsExecutable(true))
                .addOutputDirectories(
                    OutputDirectory.newBuilder()
                        .setPath("out/dir")
                        .setTreeDigest(d)
                        .setIsTopologicallySorted(true))
                .setExitCode(3)
                .setStdoutRaw(ByteString.copyFromUtf8("hello"))
                .setStderrDigest(d)
                .build(),
            ServerCapabilities.newBuilder()
                .setCacheCapabilities(
                    CacheCapabilities.newBuilder()
                        .addDigestFunctions(DigestFunction.Value.SHA256)
                        .addDigestFunctions(DigestFunction.Value.BLAKE3)
                        .addSupportedCompressors(Compressor.Value.ZSTD)
                        .setSpliceBlobSupport(true)
                        .setFastCdc2020Params(
                            FastCdc2020Params.newBuilder().setAvgChunkSizeBytes(524288)))
                .setHighApiVersion(SemVer.newBuilder().setMajor(2).setMinor(12))
                .build(),
            BatchReadBlobsRequest.newBuilder()
                .addDigests(d)
                .addAcceptableCompressors(Compressor.Value.ZSTD)
                .setDigestFunction(DigestFunction.Value.BLAKE3)
                .build(),
            SpliceBlobRequest.newBuilder()
                .setBlobDigest(d)
                .addChunkDigests(d)
                .setChunkingFunction(ChunkingFunction.Value.FAST_CDC_2020)
                .build(),
            WriteRequest.newBuilder()
                .setResourceName("uploads/u/blobs/" + SHA + "/42")
                .setData(ByteString.copyFromUtf8("x"))
                .setFinishWrite(true)
                .build(),
            FetchBlobRequest.newBuilder()
                .addUris("https://example.com/a.tar.gz")
                .addQualifiers(Qualifier.newBuilder().setName("checksum.sri").setValue("sha256-x"))
                .setDigestFunction(DigestFunction.Value.SHA256)
                .build(),
            PushBlobRequest.newBuilder().setBlobDigest(d).addReferencesBlobs(d).build());

    for (Message m : samples) {
      Message fromBinary = m.getParserForType().parseFrom(m.toByteArray());
      assertThat(fromBinary).isEqualTo(m);

      String json = JsonFormat.printer().print(m);
      Message.Builder b = m.newBuilderForType();
      JsonFormat.parser().merge(json, b);
      assertThat(b.build()).as(json).isEqualTo(m);
    }
  }

  @Test
  void jsonUsesSpecFieldNames() throws Exception {
    String json =
        JsonFormat.printer()
            .print(
                CacheCapabilities.newBuilder()
                    .addDigestFunctions(DigestFunction.Value.BLAKE3)
                    .setMaxCasBlobSizeBytes(7)
                    .build());
    assertThat(json).contains("\"digestFunctions\": [\"BLAKE3\"]").contains("\"maxCasBlobSizeBytes\": \"7\"");
  }

  @Test
  void binaryEncodingOfDigestIsStable() throws Exception {
    // Field 1 (string, tag 0x0a), field 2 (varint, tag 0x10): what every REAPI client sends.
    byte[] wire = Digest.newBuilder().setHash("ab").setSizeBytes(5).build().toByteArray();
    assertThat(wire).containsExactly(0x0a, 2, 'a', 'b', 0x10, 5);
  }

  private static Descriptor descriptor(String fullName) {
    for (com.google.protobuf.Descriptors.FileDescriptor f :
        List.of(
            build.bazel.remote.execution.v2.RemoteExecutionProto.getDescriptor(),
            build.bazel.remote.asset.v1.RemoteAssetProto.getDescriptor(),
            com.google.bytestream.ByteStreamProto.getDescriptor(),
            build.bazel.semver.SemverProto.getDescriptor())) {
      String pkg = f.getPackage();
      if (!fullName.startsWith(pkg + ".")) {
        continue;
      }
      String[] parts = fullName.substring(pkg.length() + 1).split("\\.");
      Descriptor d = f.findMessageTypeByName(parts[0]);
      for (int i = 1; d != null && i < parts.length; i++) {
        d = d.findNestedTypeByName(parts[i]);
      }
      if (d != null) {
        return d;
      }
    }
    throw new AssertionError("no message " + fullName);
  }
}
