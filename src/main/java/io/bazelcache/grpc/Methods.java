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
    return rebuild(sd, methods);
  }

  /** A service of {@code sd}'s name and schema (for server reflection) with {@code methods}. */
  private static ServerServiceDefinition rebuild(
      ServiceDescriptor sd, List<ServerMethodDefinition<?, ?>> methods) {
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

  // ---------------------------------------------------------------------------------------------
  // Malformed requests

  /** The parse error of the request that just failed on this thread (see {@link #rejectingMalformed}). */
  private static final ThreadLocal<String> PARSE_ERROR = new ThreadLocal<>();

  /**
   * {@code service} with every request that cannot be parsed answered INVALID_ARGUMENT. gRPC itself
   * turns an exception from a request parser into UNKNOWN ("Application error processing RPC"); here
   * the parser's failure becomes a null message (gRPC parses and delivers a message on the same thread,
   * which carries the error text over), and the call is closed with INVALID_ARGUMENT before the method
   * sees anything. A streaming method whose later message is malformed sees the stream cancelled.
   */
  static ServerServiceDefinition rejectingMalformed(ServerServiceDefinition service) {
    ServiceDescriptor sd = service.getServiceDescriptor();
    List<ServerMethodDefinition<?, ?>> methods = new ArrayList<>();
    for (ServerMethodDefinition<?, ?> m : service.getMethods()) {
      methods.add(rejectingMalformed(m));
    }
    return rebuild(sd, methods);
  }

  private static <Q, R> ServerMethodDefinition<Q, R> rejectingMalformed(ServerMethodDefinition<Q, R> m) {
    MethodDescriptor<Q, R> md = m.getMethodDescriptor();
    MethodDescriptor.Marshaller<Q> parser = md.getRequestMarshaller();
    MethodDescriptor.Marshaller<Q> safe = parser instanceof MethodDescriptor.PrototypeMarshaller<Q> p
        ? new SafePrototypeMarshaller<>(p) : new SafeMarshaller<>(parser);
    io.grpc.ServerCallHandler<Q, R> handler = m.getServerCallHandler();
    io.grpc.ServerCallHandler<Q, R> checked = (call, headers) -> {
      io.grpc.ServerCall.Listener<Q> delegate = handler.startCall(call, headers);
      return new io.grpc.ForwardingServerCallListener.SimpleForwardingServerCallListener<>(delegate) {
        private boolean rejected;

        @Override
        public void onMessage(Q message) {
          if (rejected) {
            return;
          }
          if (message == null) {
            rejected = true;
            String error = PARSE_ERROR.get();
            PARSE_ERROR.remove();
            call.close(Status.INVALID_ARGUMENT.withDescription("malformed "
                + md.getFullMethodName() + " request" + (error == null ? "" : ": " + error)),
                new io.grpc.Metadata());
            super.onCancel(); // a streaming method's observer ends (an upload is kept or dropped)
            return;
          }
          super.onMessage(message);
        }

        @Override
        public void onHalfClose() {
          if (!rejected) {
            super.onHalfClose();
          }
        }

        @Override
        public void onReady() {
          if (!rejected) {
            super.onReady();
          }
        }

        @Override
        public void onCancel() {
          if (!rejected) {
            super.onCancel();
          }
        }

        @Override
        public void onComplete() {
          if (!rejected) {
            super.onComplete();
          }
        }
      };
    };
    return ServerMethodDefinition.create(md.toBuilder(safe, md.getResponseMarshaller()).build(), checked);
  }

  private static class SafeMarshaller<T> implements MethodDescriptor.Marshaller<T> {
    final MethodDescriptor.Marshaller<T> delegate;

    SafeMarshaller(MethodDescriptor.Marshaller<T> delegate) {
      this.delegate = delegate;
    }

    @Override
    public InputStream stream(T value) {
      return delegate.stream(value);
    }

    @Override
    public T parse(InputStream stream) {
      try {
        PARSE_ERROR.remove();
        return delegate.parse(stream);
      } catch (RuntimeException e) {
        Status s = Status.fromThrowable(e);
        String text = s.getDescription() != null ? s.getDescription() : String.valueOf(e.getMessage());
        if (s.getCause() != null && s.getCause().getMessage() != null
            && !text.contains(s.getCause().getMessage())) {
          text += ": " + s.getCause().getMessage();
        }
        PARSE_ERROR.set(text);
        return null;
      }
    }
  }

  private static final class SafePrototypeMarshaller<T> extends SafeMarshaller<T>
      implements MethodDescriptor.PrototypeMarshaller<T> {
    SafePrototypeMarshaller(MethodDescriptor.PrototypeMarshaller<T> delegate) {
      super(delegate);
    }

    @Override
    public T getMessagePrototype() {
      return ((MethodDescriptor.PrototypeMarshaller<T>) delegate).getMessagePrototype();
    }

    @Override
    public Class<T> getMessageClass() {
      return ((MethodDescriptor.PrototypeMarshaller<T>) delegate).getMessageClass();
    }
  }

  private Methods() {}
}
