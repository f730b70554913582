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

import com.google.gson.Gson;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.jericommerce.loyalty.v1.EventServiceGrpc;
import com.jericommerce.loyalty.v1.EventType;
import com.jericommerce.loyalty.v1.StoredEvent;
import com.jericommerce.loyalty.v1.StreamEventsRequest;
import com.jericommerce.loyalty.v1.StreamEventsResponse;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

public final class Consumer {
  private static final int FORMAT = 1;
  private static final String NO_CAMPAIGN = "(none)";
  private static final DateTimeFormatter MONTH =
      DateTimeFormatter.ofPattern("yyyy-MM").withZone(ZoneOffset.UTC);
  private static final Gson GSON = new Gson();

  private static final class Row {
    BigDecimal issued = BigDecimal.ZERO;
    BigDecimal redeemed = BigDecimal.ZERO;
    long redemptions;
    long refunds;

    void add(Row other) {
      issued = issued.add(other.issued);
      redeemed = redeemed.add(other.redeemed);
      redemptions += other.redemptions;
      refunds += other.refunds;
    }

    JsonObject json() {
      JsonObject out = new JsonObject();
      out.addProperty("issued", canonical(issued));
      out.addProperty("redeemed", canonical(redeemed));
      out.addProperty("redemptions", redemptions);
      out.addProperty("refunds", refunds);
      return out;
    }
  }

  // customer id -> campaign id -> month "yyyy-MM" -> row
  private final Map<String, Map<String, Map<String, Row>>> customers = new TreeMap<>();
  private final Map<String, Long> counts = new TreeMap<>();
  private String target = "127.0.0.1:50051";
  private Path statePath;
  private final List<EventType> types = new ArrayList<>();
  private boolean follow;
  private int saveEvery = 1000;
  private long position;
  private int unsaved;
  private long savedAt = System.nanoTime();
  private volatile boolean stopping; // SIGINT/SIGTERM: save and end
  private volatile boolean failing; // exiting with status 1
  private volatile Context.CancellableContext call;

  // The canonical text of jericommerce.loyalty.v1.Decimal: no exponent, no
  // trailing fraction zeros, never "-0".
  static String canonical(BigDecimal d) {
    if (d.signum() == 0) return "0";
    BigDecimal stripped = d.stripTrailingZeros();
    return (stripped.scale() < 0 ? stripped.setScale(0) : stripped).toPlainString();
  }

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
            + " [--follow] [--save-every N]");
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
  }

  private List<String> typeNames() {
    List<String> names = new ArrayList<>();
    for (EventType t : types) names.add(t.name());
    names.sort(null);
    return names;
  }

  // --- the state file --------------------------------------------------------

  private void load() throws IOException {
    String text;
    try {
      text = Files.readString(statePath);
    } catch (NoSuchFileException e) {
      return;
    }
    JsonObject saved = JsonParser.parseString(text).getAsJsonObject();
    if (saved.get("format").getAsInt() != FORMAT) usage(statePath + ": unknown state format");
    List<String> built = new ArrayList<>();
    saved.getAsJsonArray("types").forEach(t -> built.add(t.getAsString()));
    // A state built from other types would silently miss events: refuse.
    if (!built.equals(typeNames())) {
      usage(statePath + " was built with --types " + (built.isEmpty() ? "(all)" : String.join(",", built)));
    }
    position = Long.parseLong(saved.get("position").getAsString());
    for (Map.Entry<String, JsonElement> c : saved.getAsJsonObject("customers").entrySet()) {
      for (Map.Entry<String, JsonElement> k : c.getValue().getAsJsonObject().entrySet()) {
        for (Map.Entry<String, JsonElement> m : k.getValue().getAsJsonObject().entrySet()) {
          JsonObject json = m.getValue().getAsJsonObject();
          Row row = row(c.getKey(), k.getKey(), m.getKey());
          row.issued = new BigDecimal(json.get("issued").getAsString());
          row.redeemed = new BigDecimal(json.get("redeemed").getAsString());
          row.redemptions = json.get("redemptions").getAsLong();
          row.refunds = json.get("refunds").getAsLong();
        }
      }
    }
  }

  private static JsonObject rowsJson(Map<String, Map<String, Map<String, Row>>> rows) {
    JsonObject out = new JsonObject();
    rows.forEach(
        (id, campaigns) -> {
          JsonObject byCampaign = new JsonObject();
          campaigns.forEach(
              (campaign, months) -> {
                JsonObject byMonth = new JsonObject();
                months.forEach((month, row) -> byMonth.add(month, row.json()));
                byCampaign.add(campaign, byMonth);
              });
          out.add(id, byCampaign);
        });
    return out;
  }

  // Position and rows in one file, replaced in one rename: a kill leaves the
  // old file or the new one, never a position without its rows.
  private void save() {
    JsonObject out = new JsonObject();
    out.addProperty("format", FORMAT);
    out.addProperty("position", Long.toString(position));
    out.add("types", GSON.toJsonTree(typeNames()));
    out.add("customers", rowsJson(customers));
    Path temporary = statePath.resolveSibling(statePath.getFileName() + ".tmp");
    try {
      try (FileChannel file =
          FileChannel.open(
              temporary,
              StandardOpenOption.CREATE,
              StandardOpenOption.WRITE,
              StandardOpenOption.TRUNCATE_EXISTING)) {
        ByteBuffer bytes = ByteBuffer.wrap(GSON.toJson(out).getBytes(StandardCharsets.UTF_8));
        while (bytes.hasRemaining()) file.write(bytes);
        file.force(true);
      }
      Files.move(temporary, statePath, StandardCopyOption.ATOMIC_MOVE);
      try (FileChannel dir = FileChannel.open(statePath.getParent(), StandardOpenOption.READ)) {
        dir.force(true); // makes the rename itself durable
      }
    } catch (IOException e) {
      JsonObject line = step("error");
      line.addProperty("message", "saving " + statePath + ": " + e);
      fail(line);
    }
    JsonObject line = step("saved");
    line.addProperty("position", Long.toString(position));
    emit(line);
    unsaved = 0;
    savedAt = System.nanoTime();
  }

  // --- the projection --------------------------------------------------------

  private Row row(String customer, String campaign, String month) {
    return customers
        .computeIfAbsent(customer, k -> new TreeMap<>())
        .computeIfAbsent(campaign, k -> new TreeMap<>())
        .computeIfAbsent(month, k -> new Row());
  }

  private Row row(StoredEvent e) {
    String month =
        MONTH.format(Instant.ofEpochSecond(e.getCreatedAt().getSeconds(), e.getCreatedAt().getNanos()));
    return row(e.getCustomerId(), e.getCampaignId().isEmpty() ? NO_CAMPAIGN : e.getCampaignId(), month);
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
        Row row = row(e);
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
    if (to > position) position = to;
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
                        .setAfterPosition(position)
                        .addAllEventTypes(types)
                        .setFollow(follow)
                        .build());
        while (stream.hasNext()) {
          StreamEventsResponse item = stream.next();
          backoffMs = 100;
          switch (item.getItemCase()) {
            case EVENT -> {
              apply(item.getEvent());
              advance(item.getEvent().getPosition());
              unsaved++;
            }
            case CUSTOMER_ERASED -> {
              count("erasures");
              customers.remove(item.getCustomerErased().getCustomerId());
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
          long sinceSave = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - savedAt);
          if (unsaved >= saveEvery || (unsaved > 0 && sinceSave >= 1000)) save();
        }
        return; // a replay without --follow ends at the head
      } catch (StatusRuntimeException e) {
        if (stopping || e.getStatus().getCode() == Status.Code.CANCELLED) return;
        if (e.getStatus().getCode() != Status.Code.UNAVAILABLE) throw e;
        save();
        JsonObject line = step("retrying");
        line.addProperty("code", e.getStatus().getCode().value());
        emit(line);
        Thread.sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, 5000);
      } finally {
        scope.detach(previous);
      }
    }
  }

  private JsonObject figures() {
    Map<String, Map<String, Map<String, Row>>> total = new TreeMap<>();
    customers.forEach(
        (id, campaigns) ->
            campaigns.forEach(
                (campaign, months) ->
                    months.forEach(
                        (month, row) ->
                            total
                                .computeIfAbsent("all", k -> new TreeMap<>())
                                .computeIfAbsent(campaign, k -> new TreeMap<>())
                                .computeIfAbsent(month, k -> new Row())
                                .add(row))));
    JsonObject all = rowsJson(total);
    return all.has("all") ? all.getAsJsonObject("all") : new JsonObject();
  }

  public static void main(String[] args) throws Exception {
    Consumer c = new Consumer();
    c.parse(args);
    c.load();
    for (String what : List.of("events", "checkpoints", "erasures", "redacted", "unknown", "invalid")) {
      c.counts.put(what, 0L);
    }
    JsonObject resumed = step("resumed");
    resumed.addProperty("after", Long.toString(c.position));
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
    ManagedChannel channel = NettyChannelBuilder.forTarget(c.target).usePlaintext().build();
    try {
      c.run(channel);
    } catch (StatusRuntimeException e) {
      JsonObject line = step("error");
      line.addProperty("code", e.getStatus().getCode().value());
      line.addProperty("message", String.valueOf(e.getStatus().getDescription()));
      c.fail(line);
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    c.save();
    JsonObject done = step("done");
    done.addProperty("position", Long.toString(c.position));
    done.add("received", GSON.toJsonTree(c.counts));
    done.add("figures", c.figures());
    emit(done);
  }
}
