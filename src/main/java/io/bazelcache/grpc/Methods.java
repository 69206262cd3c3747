package io.bazelcache.grpc;

import com.google.protobuf.CodedInputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.Parser;
import io.grpc.MethodDescriptor;
import io.grpc.ServerMethodDefinition;
import io.grpc.ServerServiceDefinition;
import io.grpc.ServiceDescriptor;
import io.grpc.Status;
import io.grpc.protobuf.ProtoUtils;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;

/** Replacing how single methods of a generated service parse their requests. */
final class Methods {

  /**
   * {@code service} with the method of the same full name as {@code replacement} replaced by it; the
   * other methods and the schema (for server reflection) stay.
   */
  static ServerServiceDefinition replace(
      ServerServiceDefinition service, ServerMethodDefinition<?, ?> replacement) {
    ServiceDescriptor sd = service.getServiceDescriptor();
    String name = replacement.getMethodDescriptor().getFullMethodName();
    List<ServerMethodDefinition<?, ?>> methods = new ArrayList<>();
    boolean found = false;
    for (ServerMethodDefinition<?, ?> m : service.getMethods()) {
      boolean same = m.getMethodDescriptor().getFullMethodName().equals(name);
      methods.add(same ? replacement : m);
      found |= same;
    }
    if (!found) {
      throw new IllegalArgumentException(sd.getName() + " has no method " + name);
    }
    ServiceDescriptor.Builder newSd =
        ServiceDescriptor.newBuilder(sd.getName()).setSchemaDescriptor(sd.getSchemaDescriptor());
    methods.forEach(m -> newSd.addMethod(m.getMethodDescriptor()));
    ServerServiceDefinition.Builder b = ServerServiceDefinition.builder(newSd.build());
    methods.forEach(b::addMethod);
    return b.build();
  }

  /**
   * {@code service} with method {@code bareName}'s requests parsed by {@link #streamingParser}.
   */
  @SuppressWarnings("unchecked")
  static <Q extends Message, R> ServerServiceDefinition parseStreaming(
      ServerServiceDefinition service, String bareName, Q prototype) {
    String full = MethodDescriptor.generateFullMethodName(
        service.getServiceDescriptor().getName(), bareName);
    ServerMethodDefinition<Q, R> m = (ServerMethodDefinition<Q, R>) service.getMethod(full);
    if (m == null) {
      throw new IllegalArgumentException("no method " + full);
    }
    MethodDescriptor<Q, R> md = m.getMethodDescriptor();
    return replace(service, ServerMethodDefinition.create(
        md.toBuilder(streamingParser(prototype), md.getResponseMarshaller()).build(),
        m.getServerCallHandler()));
  }

  /**
   * A marshaller that parses from the transport's stream through a small buffer. gRPC's default parser
   * first copies the whole message into an array it keeps per thread; with a new virtual thread per
   * call that is a fresh array of the whole request every call (hundreds of KiB for a large
   * FindMissingBlobs), all garbage right after.
   */
  @SuppressWarnings("unchecked")
  static <T extends Message> MethodDescriptor.PrototypeMarshaller<T> streamingParser(T prototype) {
    MethodDescriptor.PrototypeMarshaller<T> plain =
        (MethodDescriptor.PrototypeMarshaller<T>) ProtoUtils.marshaller(prototype);
    Parser<T> parser = (Parser<T>) prototype.getParserForType();
    return new MethodDescriptor.PrototypeMarshaller<>() {
      @Override
      public T getMessagePrototype() {
        return prototype;
      }

      @Override
      public Class<T> getMessageClass() {
        return plain.getMessageClass();
      }

      @Override
      public InputStream stream(T value) {
        return plain.stream(value);
      }

      @Override
      public T parse(InputStream stream) {
        try {
          CodedInputStream in = CodedInputStream.newInstance(stream, 8192);
          in.setSizeLimit(Integer.MAX_VALUE); // gRPC enforces the message size limit before this
          return parser.parseFrom(in);
        } catch (InvalidProtocolBufferException e) {
          throw Status.INVALID_ARGUMENT.withDescription("invalid protobuf byte sequence")
              .withCause(e).asRuntimeException();
        } catch (IOException e) {
          throw Status.INTERNAL.withDescription("cannot read the request").withCause(e)
              .asRuntimeException();
        }
      }
    };
  }

  private Methods() {}
}
