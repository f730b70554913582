// Reads the loyalty service over gRPC the way an internal C++ service would,
// with the client generated from proto/ by `make clients` (protoc's C++
// generator and grpc_cpp_plugin). Prints one JSON object a line, one a step:
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
//   loyalty-example --target 127.0.0.1:50051 --customer cus-1 --min-position 42
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "jericommerce/loyalty/v1/customer_service.grpc.pb.h"
#include "jericommerce/loyalty/v1/event_service.grpc.pb.h"

namespace v1 = jericommerce::loyalty::v1;

namespace {

// Retries for the idempotent reads only, on UNAVAILABLE (the service answers
// it when its store is briefly unreachable). StreamEvents is left out: a
// follow stream is resumed by the caller from the last position it saw.
constexpr const char* kServiceConfig = R"({
  "methodConfig": [{
    "name": [
      {"service": "jericommerce.loyalty.v1.CustomerService"},
      {"service": "jericommerce.loyalty.v1.EventService", "method": "GetHeadPosition"}
    ],
    "retryPolicy": {
      "maxAttempts": 4,
      "initialBackoff": "0.1s",
      "maxBackoff": "1s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
})";

struct Options {
  std::string target = "127.0.0.1:50051";
  std::string customer;
  std::string unknown = "no-such-customer";
  int64_t min_position = 0;
  int64_t after_position = 0;
  int page_size = 2;
  int deadline_ms = 10000;
  bool live = false;
  std::string ca, cert, key, server_name;
};

[[noreturn]] void Usage(const std::string& message) {
  std::cerr << "loyalty-example: " << message << "\n"
            << "usage: loyalty-example --customer ID [--target HOST:PORT] [--min-position N]\n"
            << "       [--after N] [--unknown ID] [--page-size N] [--deadline-ms N] [--live]\n"
            << "       [--ca FILE [--cert FILE --key FILE] [--server-name NAME]]\n";
  std::exit(2);
}

int64_t Integer(const std::string& flag, const std::string& text) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) {
    Usage(flag + " must be a non-negative integer");
  }
  return std::stoll(text);
}

Options Parse(int argc, char** argv) {
  Options o;
  std::map<std::string, std::string*> strings = {
      {"--target", &o.target}, {"--customer", &o.customer}, {"--unknown", &o.unknown},
      {"--ca", &o.ca},         {"--cert", &o.cert},         {"--key", &o.key},
      {"--server-name", &o.server_name}};
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--live") {
      o.live = true;
      continue;
    }
    if (i + 1 >= argc) Usage(flag + " needs a value");
    const std::string value = argv[++i];
    if (auto it = strings.find(flag); it != strings.end()) {
      *it->second = value;
    } else if (flag == "--min-position") {
      o.min_position = Integer(flag, value);
    } else if (flag == "--after") {
      o.after_position = Integer(flag, value);
    } else if (flag == "--page-size") {
      o.page_size = static_cast<int>(Integer(flag, value));
    } else if (flag == "--deadline-ms") {
      o.deadline_ms = static_cast<int>(Integer(flag, value));
    } else {
      Usage("unknown flag " + flag);
    }
  }
  if (o.customer.empty()) Usage("--customer is required");
  if (o.cert.empty() != o.key.empty() || (!o.cert.empty() && o.ca.empty())) {
    Usage("--cert and --key go together, with --ca");
  }
  return o;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Usage("cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A JSON string literal (the service's ids and names are UTF-8; control
// characters are escaped, everything else passes through).
std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += static_cast<char>(ch);
    } else if (ch < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", ch);
      out += buf;
    } else {
      out += static_cast<char>(ch);
    }
  }
  return out + "\"";
}

// One JSON object built field by field, in insertion order.
class Obj {
 public:
  Obj& Raw(const std::string& key, const std::string& json) {
    body_ += (body_.empty() ? "" : ",") + Quote(key) + ":" + json;
    return *this;
  }
  Obj& Str(const std::string& key, const std::string& value) { return Raw(key, Quote(value)); }
  Obj& Int(const std::string& key, int64_t value) { return Raw(key, std::to_string(value)); }
  std::string Json() const { return "{" + body_ + "}"; }

 private:
  std::string body_;
};

template <typename T, typename F>
std::string Array(const std::vector<T>& items, F to_json) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + to_json(items[i]);
  return out + "]";
}

void Emit(const Obj& line) { std::cout << line.Json() << std::endl; }  // flushed

// The code, message and ErrorInfo detail of a failed call. The rich status
// travels as a serialized google.rpc.Status in error_details().
Obj Describe(const grpc::Status& status) {
  Obj out;
  out.Int("code", status.error_code()).Str("message", status.error_message());
  google::rpc::Status rich;
  if (!rich.ParseFromString(status.error_details())) return out;
  for (const auto& detail : rich.details()) {
    google::rpc::ErrorInfo info;
    if (!detail.UnpackTo(&info)) continue;
    Obj metadata;
    for (const auto& [key, value] : info.metadata()) metadata.Str(key, value);
    out.Str("reason", info.reason()).Str("domain", info.domain()).Raw("metadata", metadata.Json());
  }
  return out;
}

[[noreturn]] void Fail(const std::string& during, const grpc::Status& status) {
  Emit(Describe(status).Str("step", "error").Str("during", during));
  std::exit(1);
}

std::string EventJson(const v1::StoredEvent& e) {
  const std::string& name = v1::EventType_Name(e.type());  // empty if unknown here
  Obj out;
  out.Str("position", std::to_string(e.position()))
      .Str("id", e.id())
      .Str("type", name.empty() ? std::to_string(e.type()) : name)
      .Str("type_name", e.type_name())
      .Str("customer_id", e.customer_id());
  // A typed payload's exact decimal, as sent: text, never a double.
  if (e.has_balance_changed()) out.Str("amount", e.balance_changed().amount().value());
  return out.Json();
}

std::shared_ptr<grpc::Channel> Connect(const Options& o) {
  grpc::ChannelArguments args;
  args.SetServiceConfigJSON(kServiceConfig);
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (!o.ca.empty()) {
    grpc::SslCredentialsOptions tls;
    tls.pem_root_certs = ReadFile(o.ca);
    if (!o.cert.empty()) {
      tls.pem_cert_chain = ReadFile(o.cert);
      tls.pem_private_key = ReadFile(o.key);
    }
    creds = grpc::SslCredentials(tls);
    if (!o.server_name.empty()) args.SetSslTargetNameOverride(o.server_name);
  }
  return grpc::CreateCustomChannel(o.target, creds, args);
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  auto channel = Connect(o);
  auto customers = v1::CustomerService::NewStub(channel);
  auto events = v1::EventService::NewStub(channel);
  // A ClientContext serves one call only: each call gets a fresh one.
  auto context = [&o] {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(o.deadline_ms));
    return ctx;
  };

  // Read-your-writes: min_position is the position the webhook answered.
  v1::GetCustomerRequest get;
  get.set_customer_id(o.customer);
  get.set_min_position(o.min_position);
  v1::Customer c;
  if (auto s = customers->GetCustomer(context().get(), get, &c); !s.ok()) Fail("GetCustomer", s);
  std::vector<std::string> coupons;
  for (const auto& coupon : c.coupons()) coupons.push_back(coupon.code());
  Emit(Obj().Str("step", "customer").Raw("customer",
      Obj().Str("customer_id", c.customer_id())
          .Str("email", c.email())
          .Str("first_name", c.first_name())
          .Str("points_balance", std::to_string(c.points_balance()))
          .Str("points_balance_decimal", c.points_balance_decimal())
          .Str("tier", c.tier().current())
          .Raw("coupon_codes", Array(coupons, Quote))
          .Str("event_count", std::to_string(c.event_count()))
          .Str("position", std::to_string(c.position()))
          .Json()));

  // Expected failures: branch on the code, and on ErrorInfo.reason.
  for (const auto& [step, id] : std::vector<std::pair<std::string, std::string>>{
           {"not_found", o.unknown}, {"invalid_argument", ""}}) {
    v1::GetCustomerRequest probe;
    probe.set_customer_id(id);
    v1::Customer ignored;
    auto s = customers->GetCustomer(context().get(), probe, &ignored);
    if (s.ok()) Fail(step, grpc::Status(grpc::StatusCode::UNKNOWN, "the call succeeded"));
    Emit(Describe(s).Str("step", step));
  }

  // Paging: only an empty next_page_token ends the listing.
  std::vector<std::string> ids;
  std::vector<int> sizes;
  std::string token;
  do {
    v1::ListCustomersRequest list;
    list.set_page_size(o.page_size);
    list.set_page_token(token);
    list.set_min_position(o.min_position);
    v1::ListCustomersResponse page;
    if (auto s = customers->ListCustomers(context().get(), list, &page); !s.ok()) {
      Fail("ListCustomers", s);
    }
    for (const auto& x : page.customers()) ids.push_back(x.customer_id());
    sizes.push_back(page.customers_size());
    token = page.next_page_token();
  } while (!token.empty());
  Emit(Obj().Str("step", "customers")
           .Raw("customer_ids", Array(ids, Quote))
           .Raw("page_sizes", Array(sizes, [](int n) { return std::to_string(n); })));

  // The follow stream: stored events, the caught_up marker, then live ones.
  v1::StreamEventsRequest follow;
  follow.set_after_position(o.after_position);
  follow.set_follow(true);
  auto stream_context = context();
  auto stream = events->StreamEvents(stream_context.get(), follow);
  v1::StreamEventsResponse item;
  bool live = false, finished = false;
  while (!finished && stream->Read(&item)) {
    if (item.has_event()) {
      Emit(Obj().Str("step", live ? "live" : "event").Raw("event", EventJson(item.event())));
      finished = live;
    } else if (item.has_caught_up()) {
      Emit(Obj().Str("step", "caught_up")
               .Str("head_position", std::to_string(item.caught_up().head_position())));
      live = true;
      finished = !o.live;
    }  // else: an item kind added later, ignored as the proto asks
  }
  if (!finished) {
    auto s = stream->Finish();
    Fail("StreamEvents", s.ok() ? grpc::Status(grpc::StatusCode::UNKNOWN, "the follow stream ended") : s);
  }
  stream_context->TryCancel();  // ends the follow stream
  stream->Finish();             // CANCELLED, as asked
  Emit(Obj().Str("step", "done"));
  return 0;
}
