// Reads the loyalty service over gRPC the way an internal Node service would,
// with the typed client generated from proto/ by `make clients`
// (protoc-gen-es v2 + Connect's gRPC transport). Prints one JSON object a
// line, one a step:
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
//   node build/js/example.js --target 127.0.0.1:50051 --customer cus-1 --min-position 42
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import { ErrorInfoSchema } from "./build/gen/google/rpc/error_details_pb.js";
import type { Customer } from "./build/gen/jericommerce/loyalty/v1/customer_pb.js";
import { CustomerService } from "./build/gen/jericommerce/loyalty/v1/customer_service_pb.js";
import type { StoredEvent } from "./build/gen/jericommerce/loyalty/v1/event_pb.js";
import { EventTypeSchema } from "./build/gen/jericommerce/loyalty/v1/event_pb.js";
import { EventService } from "./build/gen/jericommerce/loyalty/v1/event_service_pb.js";
import { connectionBroke } from "./broken.js";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function usage(message: string): never {
  process.stderr.write(
    `example: ${message}\n` +
      "usage: example --customer ID [--target HOST:PORT] [--min-position N] [--after N]\n" +
      "       [--unknown ID] [--page-size N] [--deadline-ms N] [--live]\n" +
      "       [--ca FILE [--cert FILE --key FILE] [--server-name NAME]]\n",
  );
  process.exit(2);
}

function parseOptions() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        target: { type: "string", default: "127.0.0.1:50051" },
        customer: { type: "string" },
        unknown: { type: "string", default: "no-such-customer" },
        "min-position": { type: "string", default: "0" },
        after: { type: "string", default: "0" },
        "page-size": { type: "string", default: "2" },
        "deadline-ms": { type: "string", default: "10000" },
        live: { type: "boolean", default: false },
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
  if (!values.customer) usage("--customer is required");
  if ((values.cert === undefined) !== (values.key === undefined) || (values.cert && !values.ca)) {
    usage("--cert and --key go together, with --ca");
  }
  const integer = (name: string, text: string): bigint => {
    if (!/^\d+$/.test(text)) usage(`--${name} must be a non-negative integer`);
    return BigInt(text);
  };
  return {
    target: values.target,
    customer: values.customer,
    unknown: values.unknown,
    minPosition: integer("min-position", values["min-position"]),
    afterPosition: integer("after", values.after),
    pageSize: Number(integer("page-size", values["page-size"])),
    deadlineMs: Number(integer("deadline-ms", values["deadline-ms"])),
    live: values.live,
    ca: values.ca,
    cert: values.cert,
    key: values.key,
    serverName: values["server-name"],
  };
}

// Retries the idempotent reads (every unary call of these two services) when
// the connection failed (UNAVAILABLE, or what Connect for Node says instead:
// broken.ts), with exponential back-off inside the call's own deadline.
// Streams are left out: a follow stream is resumed from the last position seen.
const retryUnavailable: Interceptor = (next) => async (req) => {
  if (req.stream) return next(req);
  for (let attempt = 1, backoffMs = 100; ; attempt += 1, backoffMs *= 2) {
    try {
      return await next(req);
    } catch (err) {
      if (!connectionBroke(err) || attempt >= 4 || req.signal.aborted) throw err;
      await new Promise((resolve) => setTimeout(resolve, Math.min(backoffMs, 1000)));
    }
  }
};

const emit = (line: { [key: string]: Json }) => process.stdout.write(`${JSON.stringify(line)}\n`);

// The code, message and ErrorInfo detail of a failed call.
function describeError(err: unknown): { [key: string]: Json } {
  const error = ConnectError.from(err);
  const out: { [key: string]: Json } = { code: error.code, message: error.rawMessage };
  for (const info of error.findDetails(ErrorInfoSchema)) {
    out.reason = info.reason;
    out.domain = info.domain;
    out.metadata = { ...info.metadata };
  }
  return out;
}

class Failure extends Error {
  constructor(
    readonly during: string,
    readonly cause: unknown,
  ) {
    super(during);
  }
}

function customerJson(c: Customer): { [key: string]: Json } {
  return {
    customer_id: c.customerId,
    email: c.email,
    first_name: c.firstName,
    points_balance: c.pointsBalance.toString(),
    points_balance_decimal: c.pointsBalanceDecimal,
    tier: c.tier?.current ?? "",
    coupon_codes: c.coupons.map((x) => x.code),
    event_count: c.eventCount.toString(),
    position: c.position.toString(),
  };
}

function eventJson(e: StoredEvent): { [key: string]: Json } {
  return {
    position: e.position.toString(),
    id: e.id,
    // The proto name (EventType[e.type] would drop the EVENT_TYPE_ prefix);
    // a value this build does not know prints as its number.
    type: EventTypeSchema.value[e.type]?.name ?? String(e.type),
    type_name: e.typeName,
    customer_id: e.customerId,
    // A typed payload's exact decimal, as sent (a string, never a number).
    ...(e.payload.case === "balanceChanged" ? { amount: e.payload.value.amount?.value ?? "" } : {}),
  };
}

async function main(): Promise<void> {
  const o = parseOptions();
  const transport = createGrpcTransport({
    baseUrl: `${o.ca ? "https" : "http"}://${o.target}`,
    interceptors: [retryUnavailable],
    nodeOptions: o.ca
      ? {
          ca: readFileSync(o.ca),
          cert: o.cert ? readFileSync(o.cert) : undefined,
          key: o.key ? readFileSync(o.key) : undefined,
          servername: o.serverName,
        }
      : {},
  });
  const customers = createClient(CustomerService, transport);
  const events = createClient(EventService, transport);
  const deadline = { timeoutMs: o.deadlineMs };
  let during = "GetCustomer";
  const step = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    during = name;
    return work();
  };

  try {
    // Read-your-writes: min_position is the position the webhook answered.
    const c = await step("GetCustomer", () =>
      customers.getCustomer({ customerId: o.customer, minPosition: o.minPosition }, deadline),
    );
    emit({ step: "customer", customer: customerJson(c) });

    // Expected failures: branch on the code, and on ErrorInfo.reason.
    for (const [name, id] of [
      ["not_found", o.unknown],
      ["invalid_argument", ""],
    ] as const) {
      during = name;
      try {
        await customers.getCustomer({ customerId: id }, deadline);
      } catch (err) {
        emit({ step: name, ...describeError(err) });
        continue;
      }
      throw new Failure(name, new Error("the call succeeded"));
    }

    // Paging: only an empty nextPageToken ends the listing.
    const ids: string[] = [];
    const sizes: number[] = [];
    let pageToken = "";
    do {
      const page = await step("ListCustomers", () =>
        customers.listCustomers(
          { pageSize: o.pageSize, pageToken, minPosition: o.minPosition },
          deadline,
        ),
      );
      ids.push(...page.customers.map((x) => x.customerId));
      sizes.push(page.customers.length);
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    emit({ step: "customers", customer_ids: ids, page_sizes: sizes });

    // The follow stream: stored events, the caught_up marker, then live ones.
    during = "StreamEvents";
    const stop = new AbortController();
    const stream = events.streamEvents(
      { afterPosition: o.afterPosition, follow: true },
      { ...deadline, signal: stop.signal },
    );
    let live = false;
    let finished = false;
    // An explicit iterator rather than `for await ... break`: Connect for
    // Node clears a call's deadline timer only when its stream ends or
    // fails, not when the caller abandons it, and that timer would keep the
    // process alive until the deadline. So after the cancel below, one more
    // read lets the stream fail with CANCELED and release it.
    const items = stream[Symbol.asyncIterator]();
    for (let next = await items.next(); !next.done; next = await items.next()) {
      const { item } = next.value;
      if (item.case === "event") {
        emit({ step: live ? "live" : "event", event: eventJson(item.value) });
        finished = live;
      } else if (item.case === "caughtUp") {
        emit({ step: "caught_up", head_position: item.value.headPosition.toString() });
        live = true;
        finished = !o.live;
      } // else: an item kind added later, ignored as the proto asks
      if (finished) break;
    }
    stop.abort(); // ends the follow stream
    await items.next().catch(() => undefined); // and frees its deadline timer
    if (!finished) throw new Failure("StreamEvents", new Error("the follow stream ended"));
    emit({ step: "done" });
  } catch (err) {
    const failure = err instanceof Failure ? err : new Failure(during, err);
    const cause = failure.cause;
    const described =
      cause instanceof ConnectError || !(cause instanceof Error)
        ? describeError(cause)
        : { code: Code.Unknown, message: cause.message };
    emit({ step: "error", during: failure.during, ...described });
    process.exitCode = 1;
  }
}

await main();
