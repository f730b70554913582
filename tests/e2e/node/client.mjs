// Cross-language e2e client: calls the service's gRPC API from Node, with the
// .proto files loaded at run time (no protoc, no generated code), and prints
// ONE JSON object with what it got. Driven by tests/e2e/test_node_client.py.
//
//   GRPC_TARGET=127.0.0.1:PORT node client.mjs '{"customer_id": "...", ...}'
//   (or the JSON spec on stdin)
//
// Spec fields: customer_id (required), min_position (int, as number or
// string), unknown_customer_id (default "no-such-customer"), page_size
// (default 2), deadline_ms (per call, default 10000).
//
// Exit codes: 0 when every call that should succeed did (the calls that must
// fail are reported in `errors`, for the caller to judge); 1 when one of them
// failed (the partial JSON, with `fatal`, still goes to stdout); 2 for bad
// usage.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PROTO_ROOT = path.resolve(HERE, '..', '..', '..', 'proto');
const PKG = 'jericommerce.loyalty.v1';

function usage(message) {
  process.stderr.write(`client.mjs: ${message}\n`);
  process.exit(2);
}

function readSpec() {
  const text = process.argv[2] ?? readFileSync(0, 'utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    return usage(`spec is not JSON: ${err.message}`);
  }
}

const target = process.env.GRPC_TARGET;
if (!target) usage('GRPC_TARGET is not set');
const spec = readSpec();
if (!spec.customer_id) usage('spec.customer_id is required');
const minPosition = String(spec.min_position ?? 0);
const unknownId = spec.unknown_customer_id ?? 'no-such-customer';
const pageSize = spec.page_size ?? 2;
const deadlineMs = spec.deadline_ms ?? 10000;

// The google/protobuf well-known types these protos import (timestamp.proto,
// struct.proto) are bundled in protobufjs (its `common` definitions), so only
// the project's proto/ directory is needed on the include path.
const definition = protoLoader.loadSync(
  [
    'jericommerce/loyalty/v1/customer_service.proto',
    'jericommerce/loyalty/v1/event_service.proto',
  ],
  {
    includeDirs: [PROTO_ROOT],
    keepCase: true, // field names as in the .proto: customer_id, not customerId
    longs: String, // int64 as decimal strings, exactly
    enums: String, // enum values by name, e.g. "EVENT_TYPE_BALANCE_CHANGED"
    defaults: true,
    oneofs: true,
  },
);
const api = grpc.loadPackageDefinition(definition).jericommerce.loyalty.v1;
const credentials = grpc.credentials.createInsecure();
const customers = new api.CustomerService(target, credentials);
const events = new api.EventService(target, credentials);

const deadline = () => new Date(Date.now() + deadlineMs);

function unary(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: deadline() }, (err, response) =>
      err ? reject(err) : resolve(response),
    );
  });
}

function serverStream(client, method, request) {
  return new Promise((resolve, reject) => {
    const items = [];
    const call = client[method](request, { deadline: deadline() });
    call.on('data', (item) => items.push(item));
    call.on('error', reject);
    call.on('end', () => resolve(items));
  });
}

// A call that must fail: report its status code (0 if it succeeded).
async function failingCall(client, method, request) {
  try {
    const response = await unary(client, method, request);
    return { code: grpc.status.OK, details: '', response };
  } catch (err) {
    if (typeof err.code !== 'number') throw err;
    return { code: err.code, name: grpc.status[err.code], details: err.details };
  }
}

function describe(err) {
  return typeof err.code === 'number'
    ? { code: err.code, name: grpc.status[err.code], details: err.details }
    : { message: String(err?.stack ?? err) };
}

const out = { target, spec };
let step = 'start';
let exitCode = 0;
try {
  step = 'GetCustomer';
  const c = await unary(customers, 'GetCustomer', {
    customer_id: spec.customer_id,
    min_position: minPosition,
  });
  out.customer = {
    customer_id: c.customer_id,
    email: c.email,
    points_balance: c.points_balance,
    points_balance_decimal: c.points_balance_decimal,
    tier: c.tier && { current: c.tier.current, previous: c.tier.previous },
    coupons: c.coupons.map((x) => ({ code: x.code, pass_installed: x.pass_installed })),
    wallet_pass: c.wallet_pass && { status: c.wallet_pass.status },
    event_count: c.event_count,
    position: c.position,
  };

  step = 'ListCustomers';
  out.customer_ids = [];
  out.page_sizes = [];
  let pageToken = '';
  for (let page = 0; ; page += 1) {
    if (page >= 1000) throw new Error('ListCustomers: over 1000 pages, token loop?');
    const r = await unary(customers, 'ListCustomers', {
      page_size: pageSize,
      page_token: pageToken,
      min_position: minPosition,
    });
    out.customer_ids.push(...r.customers.map((x) => x.customer_id));
    out.page_sizes.push(r.customers.length);
    pageToken = r.next_page_token;
    if (!pageToken) break;
  }

  step = 'StreamEvents';
  const items = await serverStream(events, 'StreamEvents', {
    after_position: '0',
    follow: false,
  });
  out.events = [];
  out.other_stream_items = [];
  for (const item of items) {
    if (item.item === 'event') {
      const e = item.event;
      out.events.push({
        position: e.position,
        id: e.id,
        type: e.type,
        type_name: e.type_name,
        customer_id: e.customer_id,
      });
    } else {
      out.other_stream_items.push(item); // e.g. a caught_up marker
    }
  }

  step = 'expected failures';
  out.errors = {
    empty_id: await failingCall(customers, 'GetCustomer', { customer_id: '' }),
    unknown_id: await failingCall(customers, 'GetCustomer', { customer_id: unknownId }),
  };
} catch (err) {
  out.fatal = { step, ...describe(err) };
  exitCode = 1;
} finally {
  customers.close();
  events.close();
}

process.stdout.write(`${JSON.stringify(out)}\n`);
process.exitCode = exitCode;
