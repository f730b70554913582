// Reads the loyalty service over gRPC the way an internal Java service would,
// with the client generated from proto/ by `make clients` (protoc's Java
// generator and grpc_java_plugin). Prints one JSON object a line, one a step:
//
//   customer          GetCustomer with min_position (read-your-writes)
//   not_found         the NOT_FOUND status of an unknown id, with its ErrorInfo
//   invalid_argument  the INVALID_ARGUMENT status of an empty id, with its ErrorInfo
//   customers         ListCustomers paged to the end
//   event             each stored event, StreamEvents with follow
//   caught_up         the caught-up marker of the follow stream
//   live              with --live: the first event stored after caught_up
//   done
//
// A call that fails prints {"step":"error",...} and exits 1. Every call has a
// deadline (--deadline-ms). With --ca the channel uses TLS, and with --cert
// and --key it also presents a client certificate (mTLS).
//
//   clients/java/build/loyalty-example --target 127.0.0.1:50051 --customer cus-1 --min-position 42

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.ErrorInfo;
import com.jericommerce.loyalty.v1.Customer;
import com.jericommerce.loyalty.v1.CustomerServiceGrpc;
import com.jericommerce.loyalty.v1.EventServiceGrpc;
import com.jericommerce.loyalty.v1.EventType;
import com.jericommerce.loyalty.v1.GetCustomerRequest;
import com.jericommerce.loyalty.v1.ListCustomersRequest;
import com.jericommerce.loyalty.v1.ListCustomersResponse;
import com.jericommerce.loyalty.v1.StoredEvent;
import com.jericommerce.loyalty.v1.StreamEventsRequest;
import com.jericommerce.loyalty.v1.StreamEventsResponse;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.protobuf.StatusProto;
import io.netty.handler.ssl.SslContextBuilder;
import java.io.File;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

public final class Example {
  // Retries for the idempotent reads only, on UNAVAILABLE (the service
  // answers it when its store is briefly unreachable). StreamEvents is left
  // out: a follow stream is resumed by the caller from the last position seen.
  private static final String SERVICE_CONFIG =
      "{\"methodConfig\": [{"
          + "\"name\": [{\"service\": \"jericommerce.loyalty.v1.CustomerService\"},"
          + " {\"service\": \"jericommerce.loyalty.v1.EventService\", \"method\": \"GetHeadPosition\"}],"
          + "\"retryPolicy\": {\"maxAttempts\": 4, \"initialBackoff\": \"0.1s\", \"maxBackoff\": \"1s\","
          + " \"backoffMultiplier\": 2, \"retryableStatusCodes\": [\"UNAVAILABLE\"]}}]}";

  private static final Gson GSON = new GsonBuilder().disableHtmlEscaping().create();

  private String target = "127.0.0.1:50051";
  private String customer = "";
  private String unknown = "no-such-customer";
  private long minPosition = 0;
  private long afterPosition = 0;
  private int pageSize = 2;
  private long deadlineMs = 10000;
  private boolean live = false;
  private String ca = "";
  private String cert = "";
  private String key = "";
  private String serverName = "";

  /** A failed call, reported as the "error" line. */
  private static final class Failure extends RuntimeException {
    final String during;
    final StatusRuntimeException status;

    Failure(String during, StatusRuntimeException status) {
      super(during);
      this.during = during;
      this.status = status;
    }
  }

  private static void usage(String message) {
    System.err.println("loyalty-example: " + message);
    System.err.println(
        "usage: loyalty-example --customer ID [--target HOST:PORT] [--min-position N]\n"
            + "       [--after N] [--unknown ID] [--page-size N] [--deadline-ms N] [--live]\n"
            + "       [--ca FILE [--cert FILE --key FILE] [--server-name NAME]]");
    System.exit(2);
  }

  private static long integer(String flag, String text) {
    if (!text.matches("[0-9]+")) usage(flag + " must be a non-negative integer");
    return Long.parseLong(text);
  }

  private void parse(String[] args) {
    for (int i = 0; i < args.length; i++) {
      String flag = args[i];
      if (flag.equals("--live")) {
        live = true;
        continue;
      }
      if (i + 1 >= args.length) usage(flag + " needs a value");
      String value = args[++i];
      switch (flag) {
        case "--target" -> target = value;
        case "--customer" -> customer = value;
        case "--unknown" -> unknown = value;
        case "--min-position" -> minPosition = integer(flag, value);
        case "--after" -> afterPosition = integer(flag, value);
        case "--page-size" -> pageSize = (int) integer(flag, value);
        case "--deadline-ms" -> deadlineMs = integer(flag, value);
        case "--ca" -> ca = value;
        case "--cert" -> cert = value;
        case "--key" -> key = value;
        case "--server-name" -> serverName = value;
        default -> usage("unknown flag " + flag);
      }
    }
    if (customer.isEmpty()) usage("--customer is required");
    if (cert.isEmpty() != key.isEmpty() || (!cert.isEmpty() && ca.isEmpty())) {
      usage("--cert and --key go together, with --ca");
    }
  }

  @SuppressWarnings("unchecked")
  private ManagedChannel connect() throws Exception {
    NettyChannelBuilder builder = NettyChannelBuilder.forTarget(target);
    if (ca.isEmpty()) {
      builder.usePlaintext();
    } else {
      SslContextBuilder tls = GrpcSslContexts.forClient().trustManager(new File(ca));
      if (!cert.isEmpty()) tls.keyManager(new File(cert), new File(key));
      builder.sslContext(tls.build());
      if (!serverName.isEmpty()) builder.overrideAuthority(serverName);
    }
    Map<String, ?> config = GSON.fromJson(SERVICE_CONFIG, HashMap.class);
    return builder.defaultServiceConfig(config).enableRetry().build();
  }

  private static void emit(JsonObject line) {
    System.out.println(GSON.toJson(line));
    System.out.flush();
  }

  private static JsonObject line(String step) {
    JsonObject out = new JsonObject();
    out.addProperty("step", step);
    return out;
  }

  /** The code, message and ErrorInfo detail of a failed call. */
  private static JsonObject describe(JsonObject out, StatusRuntimeException e) {
    Status status = e.getStatus();
    out.addProperty("code", status.getCode().value());
    out.addProperty("message", status.getDescription() == null ? "" : status.getDescription());
    com.google.rpc.Status rich = StatusProto.fromThrowable(e);
    if (rich == null) return out;
    for (Any detail : rich.getDetailsList()) {
      if (!detail.is(ErrorInfo.class)) continue;
      ErrorInfo info;
      try {
        info = detail.unpack(ErrorInfo.class);
      } catch (InvalidProtocolBufferException bad) {
        continue;
      }
      JsonObject metadata = new JsonObject();
      info.getMetadataMap().forEach(metadata::addProperty);
      out.addProperty("reason", info.getReason());
      out.addProperty("domain", info.getDomain());
      out.add("metadata", metadata);
    }
    return out;
  }

  private static JsonArray strings(List<String> items) {
    JsonArray out = new JsonArray();
    items.forEach(out::add);
    return out;
  }

  private static JsonObject event(StoredEvent e) {
    JsonObject out = new JsonObject();
    EventType type = EventType.forNumber(e.getTypeValue()); // null if unknown here
    out.addProperty("position", Long.toString(e.getPosition()));
    out.addProperty("id", e.getId());
    out.addProperty("type", type == null ? Integer.toString(e.getTypeValue()) : type.name());
    out.addProperty("type_name", e.getTypeName());
    out.addProperty("customer_id", e.getCustomerId());
    // A typed payload's exact decimal, as sent (new BigDecimal(value) reads it).
    if (e.hasBalanceChanged()) {
      out.addProperty("amount", e.getBalanceChanged().getAmount().getValue());
    }
    return out;
  }

  private CustomerServiceGrpc.CustomerServiceBlockingStub customers(ManagedChannel channel) {
    return CustomerServiceGrpc.newBlockingStub(channel)
        .withDeadlineAfter(deadlineMs, TimeUnit.MILLISECONDS);
  }

  private void run(ManagedChannel channel) {
    String during = "GetCustomer";
    try {
      // Read-your-writes: min_position is the position the webhook answered.
      Customer c =
          customers(channel)
              .getCustomer(
                  GetCustomerRequest.newBuilder()
                      .setCustomerId(customer)
                      .setMinPosition(minPosition)
                      .build());
      JsonObject view = new JsonObject();
      view.addProperty("customer_id", c.getCustomerId());
      view.addProperty("email", c.getEmail());
      view.addProperty("first_name", c.getFirstName());
      view.addProperty("points_balance", Long.toString(c.getPointsBalance()));
      view.addProperty("points_balance_decimal", c.getPointsBalanceDecimal());
      view.addProperty("tier", c.getTier().getCurrent());
      view.add("coupon_codes", strings(c.getCouponsList().stream().map(x -> x.getCode()).toList()));
      view.addProperty("event_count", Long.toString(c.getEventCount()));
      view.addProperty("position", Long.toString(c.getPosition()));
      JsonObject out = line("customer");
      out.add("customer", view);
      emit(out);

      // Expected failures: branch on the code, and on ErrorInfo.reason.
      for (String[] probe : new String[][] {{"not_found", unknown}, {"invalid_argument", ""}}) {
        during = probe[0];
        try {
          customers(channel)
              .getCustomer(GetCustomerRequest.newBuilder().setCustomerId(probe[1]).build());
        } catch (StatusRuntimeException e) {
          emit(describe(line(probe[0]), e));
          continue;
        }
        throw new Failure(probe[0], Status.UNKNOWN.withDescription("the call succeeded").asRuntimeException());
      }

      // Paging: only an empty next_page_token ends the listing.
      during = "ListCustomers";
      List<String> ids = new java.util.ArrayList<>();
      JsonArray sizes = new JsonArray();
      String token = "";
      do {
        ListCustomersResponse page =
            customers(channel)
                .listCustomers(
                    ListCustomersRequest.newBuilder()
                        .setPageSize(pageSize)
                        .setPageToken(token)
                        .setMinPosition(minPosition)
                        .build());
        page.getCustomersList().forEach(x -> ids.add(x.getCustomerId()));
        sizes.add(page.getCustomersCount());
        token = page.getNextPageToken();
      } while (!token.isEmpty());
      out = line("customers");
      out.add("customer_ids", strings(ids));
      out.add("page_sizes", sizes);
      emit(out);

      // The follow stream: stored events, the caught_up marker, then live
      // ones. Cancelling its context ends the stream.
      during = "StreamEvents";
      Context.CancellableContext scope = Context.current().withCancellation();
      Context previous = scope.attach();
      try {
        Iterator<StreamEventsResponse> stream =
            EventServiceGrpc.newBlockingStub(channel)
                .withDeadlineAfter(deadlineMs, TimeUnit.MILLISECONDS)
                .streamEvents(
                    StreamEventsRequest.newBuilder()
                        .setAfterPosition(afterPosition)
                        .setFollow(true)
                        .build());
        boolean caughtUp = false;
        boolean finished = false;
        while (!finished && stream.hasNext()) {
          StreamEventsResponse item = stream.next();
          switch (item.getItemCase()) {
            case EVENT -> {
              out = line(caughtUp ? "live" : "event");
              out.add("event", event(item.getEvent()));
              emit(out);
              finished = caughtUp;
            }
            case CAUGHT_UP -> {
              out = line("caught_up");
              out.addProperty(
                  "head_position", Long.toString(item.getCaughtUp().getHeadPosition()));
              emit(out);
              caughtUp = true;
              finished = !live;
            }
            default -> {} // an item kind added later, ignored as the proto asks
          }
        }
        if (!finished) {
          throw new Failure(
              during,
              Status.UNKNOWN.withDescription("the follow stream ended").asRuntimeException());
        }
      } finally {
        scope.detach(previous);
        scope.cancel(null);
      }
      emit(line("done"));
    } catch (StatusRuntimeException e) {
      throw new Failure(during, e);
    }
  }

  public static void main(String[] args) throws Exception {
    Example example = new Example();
    example.parse(args);
    ManagedChannel channel = example.connect();
    int exitCode = 0;
    try {
      example.run(channel);
    } catch (Failure f) {
      JsonObject out = line("error");
      out.addProperty("during", f.during);
      emit(describe(out, f.status));
      exitCode = 1;
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    System.exit(exitCode);
  }
}
