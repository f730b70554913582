// The Java consumer's state (clients/java/Consumer.java): its rows and the
// position they reflect, in one JSON file replaced atomically (temporary
// file, fsync, rename, directory fsync), so a kill leaves the old file or the
// new one, never a position without its rows. Decimals are BigDecimal.

import com.google.gson.Gson;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

final class PointsState {
  private static final int FORMAT = 1;
  private static final Gson GSON = new Gson();

  static final class Row {
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
  private final List<String> types; // the filter the state is built with, sorted
  long position;

  private PointsState(List<String> types) {
    this.types = types;
  }

  // The canonical text of jericommerce.loyalty.v1.Decimal: no exponent, no
  // trailing fraction zeros, never "-0".
  static String canonical(BigDecimal d) {
    if (d.signum() == 0) return "0";
    BigDecimal stripped = d.stripTrailingZeros();
    return (stripped.scale() < 0 ? stripped.setScale(0) : stripped).toPlainString();
  }

  /** The saved state, or an empty one; IllegalStateException if it cannot be used. */
  static PointsState load(Path path, List<String> types) throws IOException {
    PointsState state = new PointsState(types);
    String text;
    try {
      text = Files.readString(path);
    } catch (NoSuchFileException e) {
      return state;
    }
    JsonObject saved = JsonParser.parseString(text).getAsJsonObject();
    if (saved.get("format").getAsInt() != FORMAT) {
      throw new IllegalStateException(path + ": unknown state format");
    }
    List<String> built = new ArrayList<>();
    saved.getAsJsonArray("types").forEach(t -> built.add(t.getAsString()));
    // A state built from other types would silently miss events: refuse.
    if (!built.equals(types)) {
      throw new IllegalStateException(
          path + " was built with --types " + (built.isEmpty() ? "(all)" : String.join(",", built)));
    }
    state.position = Long.parseLong(saved.get("position").getAsString());
    for (Map.Entry<String, JsonElement> c : saved.getAsJsonObject("customers").entrySet()) {
      for (Map.Entry<String, JsonElement> k : c.getValue().getAsJsonObject().entrySet()) {
        for (Map.Entry<String, JsonElement> m : k.getValue().getAsJsonObject().entrySet()) {
          JsonObject json = m.getValue().getAsJsonObject();
          Row row = state.row(c.getKey(), k.getKey(), m.getKey());
          row.issued = new BigDecimal(json.get("issued").getAsString());
          row.redeemed = new BigDecimal(json.get("redeemed").getAsString());
          row.redemptions = json.get("redemptions").getAsLong();
          row.refunds = json.get("refunds").getAsLong();
        }
      }
    }
    return state;
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

  void save(Path path) throws IOException {
    JsonObject out = new JsonObject();
    out.addProperty("format", FORMAT);
    out.addProperty("position", Long.toString(position));
    out.add("types", GSON.toJsonTree(types));
    out.add("customers", rowsJson(customers));
    Path temporary = path.resolveSibling(path.getFileName() + ".tmp");
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
    Files.move(temporary, path, StandardCopyOption.ATOMIC_MOVE);
    try (FileChannel dir = FileChannel.open(path.getParent(), StandardOpenOption.READ)) {
      dir.force(true); // makes the rename itself durable
    }
  }

  Row row(String customer, String campaign, String month) {
    return customers
        .computeIfAbsent(customer, k -> new TreeMap<>())
        .computeIfAbsent(campaign, k -> new TreeMap<>())
        .computeIfAbsent(month, k -> new Row());
  }

  void erase(String customer) {
    customers.remove(customer);
  }

  /** The rows summed over customers: campaign -> month -> totals. */
  JsonObject figures() {
    Map<String, Map<String, Map<String, Row>>> total = new TreeMap<>();
    Map<String, Map<String, Row>> all = total.computeIfAbsent("all", k -> new TreeMap<>());
    customers.forEach(
        (id, campaigns) ->
            campaigns.forEach(
                (campaign, months) ->
                    months.forEach(
                        (month, row) ->
                            all.computeIfAbsent(campaign, k -> new TreeMap<>())
                                .computeIfAbsent(month, k -> new Row())
                                .add(row))));
    return rowsJson(total).getAsJsonObject("all");
  }
}
