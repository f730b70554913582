// A replay consumer: builds a projection of its own from the service's typed
// events, the way an internal Node service would, with the client generated
// from proto/ by `make clients`.
//
// The projection: per customer, campaign and month (of the event's
// `created_at`, UTC), the points issued (positive `Balance changed` amounts),
// the points redeemed (negative amounts, as a positive figure), the rewards
// redeemed and refunded. Decimals stay exact: bigint, never a JS number.
//
// It keeps its position and its state together in one JSON file, replaced
// atomically (write a temporary file, fsync, rename, fsync the directory), so
// after a kill it resumes exactly where the saved state ends: no event is
// applied twice or missed. It honours `customer_erased` (deletes that
// customer's rows and saves at once), skips redacted events and events of
// types it does not know, and saves the `checkpoint` positions a filtered
// stream sends, so a restart does not rescan what it already scanned.
//
//   node build/js/consumer.js --state points.json [--target HOST:PORT]
//        [--types REWARD_REDEEMED,...] [--follow] [--save-every N]
//        [--ca FILE [--cert FILE --key FILE] [--server-name NAME]]
//
// With --ca the channel uses TLS, and with --cert and --key it also presents
// a client certificate (mTLS).
//
// Prints one JSON object a line: `resumed` (the position it starts after),
// `saved` (each save), `caught_up` (with --follow), then `done` with this
// run's counts and the figures summed over customers. Without --follow it
// ends when the replay reaches the head; with --follow it runs until SIGINT
// or SIGTERM, then saves and exits 0.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";

import { timestampDate } from "@bufbuild/protobuf/wkt";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import { type EventType, EventTypeSchema, type StoredEvent } from "./build/gen/jericommerce/loyalty/v1/event_pb.js";
import { EventService } from "./build/gen/jericommerce/loyalty/v1/event_service_pb.js";
import { connectionBroke } from "./broken.js";
import { Decimal } from "./decimal.js";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

interface Row {
  issued: Decimal;
  redeemed: Decimal;
  redemptions: number;
  refunds: number;
}
// customer id -> campaign id ("(none)" when unset) -> month "YYYY-MM" -> row
type Rows = Map<string, Map<string, Map<string, Row>>>;

interface State {
  position: bigint;
  types: string[]; // the filter the state was built with, sorted
  customers: Rows;
}

const FORMAT = 1;
const NO_CAMPAIGN = "(none)";

function usage(message: string): never {
  process.stderr.write(
    `consumer: ${message}\n` +
      "usage: consumer --state FILE [--target HOST:PORT] [--types NAME,...] [--follow]\n" +
      "       [--save-every N] [--ca FILE [--cert FILE --key FILE] [--server-name NAME]]\n",
  );
  process.exit(2);
}

const emit = (line: { [key: string]: Json }) => process.stdout.write(`${JSON.stringify(line)}\n`);

function parseOptions() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        target: { type: "string", default: "127.0.0.1:50051" },
        state: { type: "string" },
        types: { type: "string", default: "" },
        follow: { type: "boolean", default: false },
        "save-every": { type: "string", default: "1000" },
        ca: { type: "string" },
        cert: { type: "string" },
        key: { type: "string" },
        "server-name": { type: "string" },
      },
      strict: true,
    }));
  } catch (err) {
    usage(String(err instanceof Error ? err.message : err));
  }
  if (!values.state) usage("--state is required");
  if (!/^[1-9]\d*$/.test(values["save-every"])) usage("--save-every must be a positive integer");
  if ((values.cert === undefined) !== (values.key === undefined) || (values.cert && !values.ca)) {
    usage("--cert and --key go together, with --ca");
  }
  // EVENT_TYPE_REWARD_REDEEMED, or REWARD_REDEEMED for short.
  const types: EventType[] = [];
  for (const name of values.types.split(",").filter((x) => x !== "")) {
    const full = name.startsWith("EVENT_TYPE_") ? name : `EVENT_TYPE_${name}`;
    const value = EventTypeSchema.values.find((v) => v.name === full);
    if (!value || value.number === 0) usage(`unknown event type ${name}`);
    types.push(value.number);
  }
  return {
    target: values.target,
    statePath: values.state,
    types,
    follow: values.follow,
    saveEvery: Number(values["save-every"]),
    ca: values.ca,
    cert: values.cert,
    key: values.key,
    serverName: values["server-name"],
  };
}

// --- the state file ----------------------------------------------------------

function loadState(path: string, types: string[]): State {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      return { position: 0n, types, customers: new Map() };
    }
    throw err;
  }
  const saved = JSON.parse(text) as {
    format: number;
    position: string;
    types: string[];
    customers: { [id: string]: { [campaign: string]: { [month: string]: { [k: string]: Json } } } };
  };
  if (saved.format !== FORMAT) usage(`${path}: state format ${saved.format}, expected ${FORMAT}`);
  // A state built from other types would silently miss events: refuse.
  if (saved.types.join(",") !== types.join(",")) {
    usage(`${path} was built with --types ${saved.types.join(",") || "(all)"}`);
  }
  const customers: Rows = new Map();
  for (const [id, campaigns] of Object.entries(saved.customers)) {
    const byCampaign = new Map<string, Map<string, Row>>();
    for (const [campaign, months] of Object.entries(campaigns)) {
      const byMonth = new Map<string, Row>();
      for (const [month, row] of Object.entries(months)) {
        byMonth.set(month, {
          issued: Decimal.parse(String(row.issued)),
          redeemed: Decimal.parse(String(row.redeemed)),
          redemptions: Number(row.redemptions),
          refunds: Number(row.refunds),
        });
      }
      byCampaign.set(campaign, byMonth);
    }
    customers.set(id, byCampaign);
  }
  return { position: BigInt(saved.position), types, customers };
}

const rowJson = (row: Row): { [key: string]: Json } => ({
  issued: row.issued.toString(),
  redeemed: row.redeemed.toString(),
  redemptions: row.redemptions,
  refunds: row.refunds,
});

function nested<V>(map: Map<string, V>, json: (v: V) => Json): { [key: string]: Json } {
  return Object.fromEntries([...map].map(([k, v]) => [k, json(v)]));
}

// Position and rows in one file, replaced in one rename: a kill leaves either
// the old file or the new one, never a position without its rows.
function saveState(path: string, state: State): void {
  const text = JSON.stringify({
    format: FORMAT,
    position: state.position.toString(),
    types: state.types,
    customers: nested(state.customers, (c) => nested(c, (m) => nested(m, rowJson))),
  });
  const temporary = `${path}.tmp`;
  const fd = openSync(temporary, "w");
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
  const dir = openSync(dirname(path), "r"); // makes the rename itself durable
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

// --- the projection ----------------------------------------------------------

const counts = { events: 0, checkpoints: 0, erasures: 0, redacted: 0, unknown: 0, invalid: 0 };

function rowOf(rows: Rows, e: StoredEvent): Row {
  const month = e.createdAt ? timestampDate(e.createdAt).toISOString().slice(0, 7) : "unknown";
  const campaign = e.campaignId || NO_CAMPAIGN;
  const byCampaign = rows.get(e.customerId) ?? new Map<string, Map<string, Row>>();
  rows.set(e.customerId, byCampaign);
  const byMonth = byCampaign.get(campaign) ?? new Map<string, Row>();
  byCampaign.set(campaign, byMonth);
  let row = byMonth.get(month);
  if (!row) {
    row = { issued: Decimal.ZERO, redeemed: Decimal.ZERO, redemptions: 0, refunds: 0 };
    byMonth.set(month, row);
  }
  return row;
}

function apply(rows: Rows, e: StoredEvent): void {
  counts.events += 1;
  // An erased customer's event keeps its position but no body.
  if (e.redacted) {
    counts.redacted += 1;
    return;
  }
  const payload = e.payload;
  switch (payload.case) {
    case "balanceChanged": {
      const amount = Decimal.parse(payload.value.amount?.value ?? "0");
      const row = rowOf(rows, e);
      if (amount.sign() > 0) row.issued = row.issued.plus(amount);
      if (amount.sign() < 0) row.redeemed = row.redeemed.plus(amount.negated());
      return;
    }
    case "rewardRedeemed":
      rowOf(rows, e).redemptions += 1;
      return;
    case "rewardRefunded":
      rowOf(rows, e).refunds += 1;
      return;
    case undefined:
      // No payload: a type this build does not know (or the service does
      // not), or properties the service could not read (`payloadError`).
      if (e.payloadError) counts.invalid += 1;
      else counts.unknown += 1;
      return;
    default:
      return; // a known type this projection does not use
  }
}

function figures(rows: Rows): { [key: string]: Json } {
  const total = new Map<string, Map<string, Row>>();
  for (const byCampaign of rows.values()) {
    for (const [campaign, byMonth] of byCampaign) {
      const into = total.get(campaign) ?? new Map<string, Row>();
      total.set(campaign, into);
      for (const [month, row] of byMonth) {
        const sum = into.get(month) ?? { issued: Decimal.ZERO, redeemed: Decimal.ZERO, redemptions: 0, refunds: 0 };
        into.set(month, {
          issued: sum.issued.plus(row.issued),
          redeemed: sum.redeemed.plus(row.redeemed),
          redemptions: sum.redemptions + row.redemptions,
          refunds: sum.refunds + row.refunds,
        });
      }
    }
  }
  return nested(total, (m) => nested(m, rowJson));
}

// --- the replay --------------------------------------------------------------

async function main(): Promise<void> {
  const o = parseOptions();
  const typeNames = o.types.map((t) => EventTypeSchema.value[t]?.name ?? String(t)).sort();
  const state = loadState(o.statePath, typeNames);
  emit({ step: "resumed", after: state.position.toString() });

  const transport = createGrpcTransport({
    baseUrl: `${o.ca ? "https" : "http"}://${o.target}`,
    nodeOptions: o.ca
      ? {
          ca: readFileSync(o.ca),
          cert: o.cert ? readFileSync(o.cert) : undefined,
          key: o.key ? readFileSync(o.key) : undefined,
          servername: o.serverName,
        }
      : {},
  });
  const events = createClient(EventService, transport);
  const stop = new AbortController();
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => stop.abort());

  let unsaved = 0;
  let savedAt = Date.now();
  const save = () => {
    saveState(o.statePath, state);
    emit({ step: "saved", position: state.position.toString() });
    unsaved = 0;
    savedAt = Date.now();
  };
  const advance = (position: bigint) => {
    if (position > state.position) state.position = position;
  };
  // Something applied and not saved for a second.
  const overdue = () => unsaved > 0 && Date.now() - savedAt >= 1000;
  // A lone live event is saved within about a second, not at the next item,
  // which may not come for hours. Items are applied synchronously, so the
  // timer only ever sees the state between two of them.
  const saveDue = setInterval(() => {
    if (overdue()) save();
  }, 200);
  saveDue.unref(); // never what keeps the process running

  // No deadline on the stream: a replay of millions of events takes minutes,
  // and a follow stream is meant to stay open. A broken connection is
  // resumed after the saved position, with back-off.
  for (let backoffMs = 100; ; backoffMs = Math.min(backoffMs * 2, 5000)) {
    try {
      const stream = events.streamEvents(
        { afterPosition: state.position, eventTypes: o.types, follow: o.follow },
        { signal: stop.signal },
      );
      for await (const { item } of stream) {
        backoffMs = 100;
        if (item.case === "event") {
          apply(state.customers, item.value);
          advance(item.value.position);
          unsaved += 1;
        } else if (item.case === "customerErased") {
          counts.erasures += 1;
          state.customers.delete(item.value.customerId);
          advance(item.value.position);
          save(); // their rows leave the disk now, not at the next save
        } else if (item.case === "checkpoint") {
          counts.checkpoints += 1;
          advance(item.value.position);
          save(); // the point of a checkpoint: a restart starts after it
        } else if (item.case === "caughtUp") {
          advance(item.value.headPosition);
          save();
          emit({ step: "caught_up", head_position: item.value.headPosition.toString() });
        } // else: an item kind added later, ignored as the proto asks
        if (unsaved >= o.saveEvery || overdue()) save();
      }
      break; // a replay without --follow ends at the head
    } catch (err) {
      if (stop.signal.aborted) break; // SIGINT/SIGTERM: save and exit
      if (!connectionBroke(err)) throw err;
      const error = ConnectError.from(err);
      save();
      emit({ step: "retrying", code: error.code, message: error.rawMessage });
      await new Promise((resolve) => setTimeout(resolve, backoffMs));
    }
  }
  clearInterval(saveDue);
  save();
  emit({
    step: "done",
    position: state.position.toString(),
    received: counts,
    figures: figures(state.customers),
  });
}

try {
  await main();
} catch (err) {
  const error = ConnectError.from(err);
  emit({ step: "error", code: error.code, message: error.rawMessage });
  process.exitCode = 1;
}
