// A replay consumer: builds a projection of its own from the service's typed
// events, the way an internal Java service would, with the client generated
// from proto/ by `make clients` (the same program as clients/go/consumer and
// clients/ts/consumer.ts; docs/clients.md, "Replay consumers").
//
// The projection: per customer, campaign and month (of the event's
// created_at, UTC), the points issued (positive `Balance changed` amounts),
// the points redeemed (negative amounts, as a positive figure), the rewards
// redeemed and refunded. Decimals are BigDecimal, never double.
//
// Position and rows live in one JSON file replaced atomically (temporary
// file, fsync, rename, directory fsync), so after a kill it resumes exactly
// where the saved rows end. customer_erased deletes that customer's rows (and
// saves at once); redacted events and unknown types are skipped; checkpoints
// of a filtered stream are saved.
//
//   clients/java/build/loyalty-consumer --state points.json [--target HOST:PORT]
//       [--types REWARD_REDEEMED,...] [--follow] [--save-every N]
//       [--ca FILE [--cert FILE --key FILE] [--server-name NAME]]
//
// With --ca the channel uses TLS, and with --cert and --key it also presents
// a client certificate (mTLS).

import com.google.gson.Gson;
import com.google.gson.JsonObject;
import com.jericommerce.loyalty.v1.EventServiceGrpc;
import com.jericommerce.loyalty.v1.EventType;
import com.jericommerce.loyalty.v1.StoredEvent;
import com.jericommerce.loyalty.v1.StreamEventsRequest;
import com.jericommerce.loyalty.v1.StreamEventsResponse;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.netty.handler.ssl.SslContextBuilder;
import java.io.File;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

public final class Consumer {
  private static final String NO_CAMPAIGN = "(none)";
  private static final DateTimeFormatter MONTH =
      DateTimeFormatter.ofPattern("yyyy-MM").withZone(ZoneOffset.UTC);
  private static final Gson GSON = new Gson();

  private final Map<String, Long> counts = new TreeMap<>();
  private String target = "127.0.0.1:50051";
  private String ca = "", cert = "", key = "", serverName = "";
  private Path statePath;
  private final List<EventType> types = new ArrayList<>();
  private boolean follow;
  private int saveEvery = 1000;
  private PointsState state;
  private int unsaved;
  private long savedAt = System.nanoTime();
  private volatile boolean stopping; // SIGINT/SIGTERM: save and end
  private volatile boolean failing; // exiting with status 1
  private volatile Context.CancellableContext call;

  private void fail(JsonObject line) {
    failing = true;
    emit(line);
    System.exit(1);
  }

  private static void emit(JsonObject line) {
    System.out.println(GSON.toJson(line));
    System.out.flush();
  }

  private static JsonObject step(String name) {
    JsonObject out = new JsonObject();
    out.addProperty("step", name);
    return out;
  }

  private static void usage(String message) {
    System.err.println("consumer: " + message);
    System.err.println(
        "usage: loyalty-consumer --state FILE [--target HOST:PORT] [--types NAME,...]"
            + " [--follow] [--save-every N]\n"
            + "       [--ca FILE [--cert FILE --key FILE] [--server-name NAME]]");
    System.exit(2);
  }

  private void parse(String[] args) {
    for (int i = 0; i < args.length; i++) {
      String flag = args[i].replaceFirst("^--?", "");
      if (flag.equals("follow")) {
        follow = true;
        continue;
      }
      if (i + 1 >= args.length) usage("--" + flag + " needs a value");
      String value = args[++i];
      switch (flag) {
        case "target" -> target = value;
        case "ca" -> ca = value;
        case "cert" -> cert = value;
        case "key" -> key = value;
        case "server-name" -> serverName = value;
        case "state" -> statePath = Paths.get(value).toAbsolutePath();
        case "save-every" -> {
          try {
            saveEvery = Integer.parseInt(value);
          } catch (NumberFormatException e) {
            saveEvery = 0;
          }
          if (saveEvery < 1) usage("--save-every must be a positive integer");
        }
        case "types" -> {
          for (String name : value.split(",")) {
            if (name.isEmpty()) continue;
            String full = name.startsWith("EVENT_TYPE_") ? name : "EVENT_TYPE_" + name;
            try {
              EventType type = EventType.valueOf(full);
              if (type == EventType.EVENT_TYPE_UNSPECIFIED || type == EventType.UNRECOGNIZED) {
                throw new IllegalArgumentException();
              }
              types.add(type);
            } catch (IllegalArgumentException e) {
              usage("unknown event type " + name);
            }
          }
        }
        default -> usage("unknown flag --" + flag);
      }
    }
    if (statePath == null) usage("--state is required");
    if (cert.isEmpty() != key.isEmpty() || (!cert.isEmpty() && ca.isEmpty())) {
      usage("--cert and --key go together, with --ca");
    }
  }

  // TLS with --ca (mTLS with --cert and --key), else plaintext.
  private ManagedChannel connect() throws IOException {
    NettyChannelBuilder builder = NettyChannelBuilder.forTarget(target);
    if (ca.isEmpty()) return builder.usePlaintext().build();
    SslContextBuilder tls = GrpcSslContexts.forClient().trustManager(new File(ca));
    if (!cert.isEmpty()) tls.keyManager(new File(cert), new File(key));
    builder.sslContext(tls.build());
    if (!serverName.isEmpty()) builder.overrideAuthority(serverName);
    return builder.build();
  }

  private List<String> typeNames() {
    List<String> names = new ArrayList<>();
    for (EventType t : types) names.add(t.name());
    names.sort(null);
    return names;
  }

  private void save() {
    try {
      state.save(statePath);
    } catch (IOException e) {
      JsonObject line = step("error");
      line.addProperty("message", "saving " + statePath + ": " + e);
      fail(line);
    }
    JsonObject line = step("saved");
    line.addProperty("position", Long.toString(state.position));
    emit(line);
    unsaved = 0;
    savedAt = System.nanoTime();
  }

  // --- the projection --------------------------------------------------------

  private PointsState.Row row(StoredEvent e) {
    String month =
        MONTH.format(Instant.ofEpochSecond(e.getCreatedAt().getSeconds(), e.getCreatedAt().getNanos()));
    String campaign = e.getCampaignId().isEmpty() ? NO_CAMPAIGN : e.getCampaignId();
    return state.row(e.getCustomerId(), campaign, month);
  }

  private void count(String what) {
    counts.merge(what, 1L, Long::sum);
  }

  private void apply(StoredEvent e) {
    count("events");
    if (e.getRedacted()) { // an erased customer's event keeps its position only
      count("redacted");
      return;
    }
    switch (e.getPayloadCase()) {
      case BALANCE_CHANGED -> {
        BigDecimal amount = new BigDecimal(e.getBalanceChanged().getAmount().getValue());
        PointsState.Row row = row(e);
        if (amount.signum() > 0) row.issued = row.issued.add(amount);
        if (amount.signum() < 0) row.redeemed = row.redeemed.subtract(amount);
      }
      case REWARD_REDEEMED -> row(e).redemptions++;
      case REWARD_REFUNDED -> row(e).refunds++;
        // No payload: a type this build (or the service) does not know, or
        // properties the service could not read (payload_error says why).
      case PAYLOAD_NOT_SET -> count(e.getPayloadError().isEmpty() ? "unknown" : "invalid");
      default -> {} // a known type this projection does not use
    }
  }

  private void advance(long to) {
    if (to > state.position) state.position = to;
  }

  // --- the replay ------------------------------------------------------------

  // Streams until the head (or, with --follow, until SIGINT/SIGTERM). No
  // deadline: a replay of millions of events takes minutes. UNAVAILABLE is
  // resumed after the saved position with back-off.
  private void run(ManagedChannel channel) throws InterruptedException {
    long backoffMs = 100;
    while (!stopping) {
      Context.CancellableContext scope = Context.current().withCancellation();
      call = scope;
      Context previous = scope.attach();
      try {
        if (stopping) return;
        Iterator<StreamEventsResponse> stream =
            EventServiceGrpc.newBlockingStub(channel)
                .streamEvents(
                    StreamEventsRequest.newBuilder()
                        .setAfterPosition(state.position)
                        .addAllEventTypes(types)
                        .setFollow(follow)
                        .build());
        while (stream.hasNext()) {
          StreamEventsResponse item = stream.next();
          backoffMs = 100;
          synchronized (this) { // the saver sees the state only between two items
            handle(item);
          }
        }
        return; // a replay without --follow ends at the head
      } catch (StatusRuntimeException e) {
        if (stopping || e.getStatus().getCode() == Status.Code.CANCELLED) return;
        if (e.getStatus().getCode() != Status.Code.UNAVAILABLE) throw e;
        synchronized (this) {
          save();
          JsonObject line = step("retrying");
          line.addProperty("code", e.getStatus().getCode().value());
          emit(line);
        }
        Thread.sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, 5000);
      } finally {
        scope.detach(previous);
      }
    }
  }

  private void handle(StreamEventsResponse item) {
    switch (item.getItemCase()) {
      case EVENT -> {
        apply(item.getEvent());
        advance(item.getEvent().getPosition());
        unsaved++;
      }
      case CUSTOMER_ERASED -> {
        count("erasures");
        state.erase(item.getCustomerErased().getCustomerId());
        advance(item.getCustomerErased().getPosition());
        save(); // their rows leave the disk now
      }
      case CHECKPOINT -> {
        count("checkpoints");
        advance(item.getCheckpoint().getPosition());
        save(); // the point of a checkpoint: a restart starts after it
      }
      case CAUGHT_UP -> {
        advance(item.getCaughtUp().getHeadPosition());
        save();
        JsonObject line = step("caught_up");
        line.addProperty("head_position", Long.toString(item.getCaughtUp().getHeadPosition()));
        emit(line);
      }
      default -> {} // an item kind added later, ignored as the proto asks
    }
    if (unsaved >= saveEvery || overdue()) save();
  }

  // Something applied and not saved for a second.
  private boolean overdue() {
    return unsaved > 0 && TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - savedAt) >= 1000;
  }

  // A lone live event is saved within about a second, not at the next item,
  // which may not come for hours.
  private ScheduledExecutorService saveWhenDue() {
    ScheduledExecutorService saver =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "saver");
              t.setDaemon(true);
              return t;
            });
    saver.scheduleWithFixedDelay(
        () -> {
          synchronized (this) {
            if (overdue()) save();
          }
        },
        200,
        200,
        TimeUnit.MILLISECONDS);
    return saver;
  }

  public static void main(String[] args) throws Exception {
    Consumer c = new Consumer();
    c.parse(args);
    try {
      c.state = PointsState.load(c.statePath, c.typeNames());
    } catch (IllegalStateException e) {
      usage(e.getMessage());
    }
    for (String what : List.of("events", "checkpoints", "erasures", "redacted", "unknown", "invalid")) {
      c.counts.put(what, 0L);
    }
    JsonObject resumed = step("resumed");
    resumed.addProperty("after", Long.toString(c.state.position));
    emit(resumed);
    // SIGINT/SIGTERM run the shutdown hooks: this one cancels the stream,
    // waits until main has saved and printed `done`, then ends the JVM with
    // status 0 (a signalled JVM would otherwise exit 130 or 143).
    Thread main = Thread.currentThread();
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  if (c.failing || !main.isAlive()) return; // exit(1), or the end
                  c.stopping = true;
                  Context.CancellableContext call = c.call;
                  if (call != null) call.cancel(null);
                  try {
                    main.join(10000);
                  } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                  }
                  Runtime.getRuntime().halt(0);
                }));
    ManagedChannel channel = c.connect();
    ScheduledExecutorService saver = c.saveWhenDue();
    try {
      c.run(channel);
    } catch (StatusRuntimeException e) {
      JsonObject line = step("error");
      line.addProperty("code", e.getStatus().getCode().value());
      line.addProperty("message", String.valueOf(e.getStatus().getDescription()));
      c.fail(line);
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      saver.shutdownNow();
      saver.awaitTermination(5, TimeUnit.SECONDS);
    }
    c.save();
    JsonObject done = step("done");
    done.addProperty("position", Long.toString(c.state.position));
    done.add("received", GSON.toJsonTree(c.counts));
    done.add("figures", c.state.figures());
    emit(done);
  }
}
