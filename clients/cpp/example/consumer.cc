// A replay consumer: builds a projection of its own from the service's typed
// events, the way an internal C++ service would, with the client package
// `make clients` builds (the same program as clients/go/consumer,
// clients/ts/consumer.ts and clients/java/Consumer.java; docs/clients.md,
// "Replay consumers").
//
// The projection: per customer, campaign and month (of the event's
// created_at, UTC), the points issued (positive `Balance changed` amounts),
// the points redeemed (negative amounts, as a positive figure), the rewards
// redeemed and refunded. Decimals are exact (decimal.h), never double.
//
// Position and rows live in one JSON file replaced atomically (temporary
// file, fsync, rename, directory fsync), so after a kill it resumes exactly
// where the saved rows end. customer_erased deletes that customer's rows
// (and saves at once); redacted events and unknown types are skipped;
// checkpoints of a filtered stream are saved.
//
//   clients/cpp/build/loyalty-consumer --state points.json [--target HOST:PORT]
//       [--types REWARD_REDEEMED,...] [--follow] [--save-every N]
//       [--ca FILE [--cert FILE --key FILE] [--server-name NAME]]
//
// With --ca the channel uses TLS, and with --cert and --key it also presents
// a client certificate (mTLS).
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "rows.h"
#include "jericommerce/loyalty/v1/event_service.grpc.pb.h"

namespace v1 = jericommerce::loyalty::v1;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kFormat = 1;
const char* const kNoCampaign = "(none)";

void Emit(const json& line) { std::cout << line.dump() << std::endl; }  // flushed

[[noreturn]] void Usage(const std::string& message) {
  std::cerr << "consumer: " << message << "\n"
            << "usage: loyalty-consumer --state FILE [--target HOST:PORT] [--types NAME,...]"
               " [--follow] [--save-every N]\n"
               "       [--ca FILE [--cert FILE --key FILE] [--server-name NAME]]\n";
  std::exit(2);
}

class Consumer {
 public:
  void Parse(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string flag = argv[i];
      flag.erase(0, flag.find_first_not_of('-'));
      if (flag == "follow") {
        follow_ = true;
        continue;
      }
      if (i + 1 >= argc) Usage("--" + flag + " needs a value");
      std::string value = argv[++i];
      if (flag == "target") {
        target_ = value;
      } else if (flag == "ca" || flag == "cert" || flag == "key" || flag == "server-name") {
        tls_[flag] = value;
      } else if (flag == "state") {
        state_path_ = value;
      } else if (flag == "save-every") {
        save_every_ = value.find_first_not_of("0123456789") == std::string::npos && !value.empty()
                          ? std::stoi(value)
                          : 0;
        if (save_every_ < 1) Usage("--save-every must be a positive integer");
      } else if (flag == "types") {
        std::stringstream names(value);
        for (std::string name; std::getline(names, name, ',');) {
          if (name.empty()) continue;
          if (name.rfind("EVENT_TYPE_", 0) != 0) name = "EVENT_TYPE_" + name;
          v1::EventType type;
          if (!v1::EventType_Parse(name, &type) || type == v1::EVENT_TYPE_UNSPECIFIED) {
            Usage("unknown event type " + name);
          }
          types_.push_back(type);
          type_names_.push_back(name);
        }
        std::sort(type_names_.begin(), type_names_.end());
      } else {
        Usage("unknown flag --" + flag);
      }
    }
    if (state_path_.empty()) Usage("--state is required");
    if (tls_.count("cert") != tls_.count("key") || (tls_.count("cert") && !tls_.count("ca"))) {
      Usage("--cert and --key go together, with --ca");
    }
  }

  void Load() {
    std::ifstream in(state_path_);
    if (!in) return;  // no state yet: from the beginning
    json saved = json::parse(in);
    if (saved.at("format") != kFormat) Usage(state_path_ + ": unknown state format");
    // A state built from other types would silently miss events: refuse.
    if (saved.at("types").get<std::vector<std::string>>() != type_names_) {
      Usage(state_path_ + " was built with other --types");
    }
    position_ = std::stoll(saved.at("position").get<std::string>());
    for (const auto& [id, campaigns] : saved.at("customers").items())
      for (const auto& [campaign, months] : campaigns.items())
        for (const auto& [month, r] : months.items()) {
          Row& row = rows_[id][campaign][month];
          row.issued = Decimal::Parse(r.at("issued").get<std::string>());
          row.redeemed = Decimal::Parse(r.at("redeemed").get<std::string>());
          row.redemptions = r.at("redemptions").get<int64_t>();
          row.refunds = r.at("refunds").get<int64_t>();
        }
  }

  // Position and rows in one file, replaced in one rename: a kill leaves the
  // old file or the new one, never a position without its rows.
  void Save() {
    json out = {{"format", kFormat},
                {"position", std::to_string(position_)},
                {"types", type_names_},
                {"customers", RowsJson(rows_)}};
    const std::string text = out.dump(), temporary = state_path_ + ".tmp";
    int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    bool ok = fd >= 0;
    for (size_t done = 0; ok && done < text.size();) {
      ssize_t n = ::write(fd, text.data() + done, text.size() - done);
      ok = n > 0;
      done += ok ? static_cast<size_t>(n) : 0;
    }
    ok = ok && ::fsync(fd) == 0;
    if (fd >= 0) ok = ::close(fd) == 0 && ok;
    ok = ok && std::rename(temporary.c_str(), state_path_.c_str()) == 0;
    std::string dir = state_path_.substr(0, state_path_.find_last_of('/') + 1);
    int dir_fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
    ok = ok && dir_fd >= 0 && ::fsync(dir_fd) == 0;  // the rename itself, durable
    if (dir_fd >= 0) ::close(dir_fd);
    if (!ok) {
      Emit({{"step", "error"}, {"message", "saving " + state_path_ + " failed"}});
      std::exit(1);
    }
    Emit({{"step", "saved"}, {"position", std::to_string(position_)}});
    unsaved_ = 0;
    saved_at_ = Clock::now();
  }

  // Streams until the head (or, with --follow, until SIGINT/SIGTERM). No
  // deadline: a replay of millions of events takes minutes. UNAVAILABLE is
  // resumed after the saved position with back-off.
  grpc::Status Run(v1::EventService::Stub& events) {
    std::thread saver([this] { SaveWhenDue(); });
    struct Join {
      Consumer* c;
      std::thread* t;
      ~Join() {
        {
          std::lock_guard<std::mutex> lock(c->state_mu_);
          c->saver_done_ = true;
        }
        c->saver_wake_.notify_one();
        t->join();
      }
    } join{this, &saver};
    auto backoff = std::chrono::milliseconds(100);
    while (!stopping()) {
      grpc::ClientContext context;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) break;
        call_ = &context;
      }
      v1::StreamEventsRequest request;
      request.set_after_position(position_);
      for (auto t : types_) request.add_event_types(t);
      request.set_follow(follow_);
      auto stream = events.StreamEvents(&context, request);
      v1::StreamEventsResponse item;
      while (stream->Read(&item)) {
        backoff = std::chrono::milliseconds(100);
        std::lock_guard<std::mutex> lock(state_mu_);
        Handle(item);
      }
      grpc::Status status = stream->Finish();
      {
        std::lock_guard<std::mutex> lock(mu_);
        call_ = nullptr;
      }
      if (status.ok() || stopping()) return grpc::Status::OK;
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return status;
      {
        std::lock_guard<std::mutex> lock(state_mu_);
        Save();
        Emit({{"step", "retrying"}, {"code", status.error_code()}});
      }
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    }
    return grpc::Status::OK;
  }

  int64_t position() const { return position_; }

  // TLS with --ca (mTLS with --cert and --key), else plaintext.
  std::shared_ptr<grpc::Channel> Connect() const {
    grpc::ChannelArguments args;
    if (!tls_.count("ca")) {
      return grpc::CreateCustomChannel(target_, grpc::InsecureChannelCredentials(), args);
    }
    auto read = [](const std::string& path) {
      std::ifstream in(path);
      if (!in) Usage("cannot read " + path);
      return std::string(std::istreambuf_iterator<char>(in), {});
    };
    grpc::SslCredentialsOptions tls;
    tls.pem_root_certs = read(tls_.at("ca"));
    if (tls_.count("cert")) {
      tls.pem_cert_chain = read(tls_.at("cert"));
      tls.pem_private_key = read(tls_.at("key"));
    }
    if (tls_.count("server-name")) args.SetSslTargetNameOverride(tls_.at("server-name"));
    return grpc::CreateCustomChannel(target_, grpc::SslCredentials(tls), args);
  }

  // From the signal thread: end the stream; Run returns and main saves.
  void Stop() {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    if (call_ != nullptr) call_->TryCancel();
  }

  void Done() {
    Save();
    Rows total;
    for (const auto& [id, campaigns] : rows_)
      for (const auto& [campaign, months] : campaigns)
        for (const auto& [month, row] : months) total["all"][campaign][month].Add(row);
    json figures = RowsJson(total);
    Emit({{"step", "done"},
          {"position", std::to_string(position_)},
          {"received", counts_},
          {"figures", figures.contains("all") ? figures["all"] : json::object()}});
  }

 private:
  // A lone live event is saved within about a second, not at the next item,
  // which may not come for hours. Run's thread holds state_mu_ while it
  // handles an item, so this thread sees the state only between two.
  void SaveWhenDue() {
    std::unique_lock<std::mutex> lock(state_mu_);
    while (!saver_done_) {
      saver_wake_.wait_for(lock, std::chrono::milliseconds(200));
      if (!saver_done_ && Overdue()) Save();
    }
  }

  // Something applied and not saved for a second.
  bool Overdue() const {
    return unsaved_ > 0 && Clock::now() - saved_at_ >= std::chrono::seconds(1);
  }

  bool stopping() {
    std::lock_guard<std::mutex> lock(mu_);
    return stopping_;
  }

  void Advance(int64_t to) { position_ = std::max(position_, to); }

  void Handle(const v1::StreamEventsResponse& item) {
    switch (item.item_case()) {
      case v1::StreamEventsResponse::kEvent:
        Apply(item.event());
        Advance(item.event().position());
        ++unsaved_;
        break;
      case v1::StreamEventsResponse::kCustomerErased:
        counts_["erasures"] = counts_["erasures"].get<int64_t>() + 1;
        rows_.erase(item.customer_erased().customer_id());
        Advance(item.customer_erased().position());
        Save();  // their rows leave the disk now
        break;
      case v1::StreamEventsResponse::kCheckpoint:
        counts_["checkpoints"] = counts_["checkpoints"].get<int64_t>() + 1;
        Advance(item.checkpoint().position());
        Save();  // the point of a checkpoint: a restart starts after it
        break;
      case v1::StreamEventsResponse::kCaughtUp:
        Advance(item.caught_up().head_position());
        Save();
        Emit({{"step", "caught_up"},
              {"head_position", std::to_string(item.caught_up().head_position())}});
        break;
      default:
        break;  // an item kind added later, ignored as the proto asks
    }
    if (unsaved_ >= save_every_ || Overdue()) Save();
  }

  void Count(const char* what) { counts_[what] = counts_[what].get<int64_t>() + 1; }

  Row& RowOf(const v1::StoredEvent& e) {
    std::time_t seconds = e.created_at().seconds();
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char month[16];
    std::strftime(month, sizeof month, "%Y-%m", &utc);
    const std::string campaign = e.campaign_id().empty() ? kNoCampaign : e.campaign_id();
    return rows_[e.customer_id()][campaign][month];
  }

  void Apply(const v1::StoredEvent& e) {
    Count("events");
    if (e.redacted()) {  // an erased customer's event keeps its position only
      Count("redacted");
      return;
    }
    switch (e.payload_case()) {
      case v1::StoredEvent::kBalanceChanged: {
        Decimal amount = Decimal::Parse(e.balance_changed().amount().value());
        Row& row = RowOf(e);
        if (amount.Sign() > 0) row.issued = row.issued.Plus(amount);
        if (amount.Sign() < 0) row.redeemed = row.redeemed.Plus(amount.Negated());
        break;
      }
      case v1::StoredEvent::kRewardRedeemed:
        ++RowOf(e).redemptions;
        break;
      case v1::StoredEvent::kRewardRefunded:
        ++RowOf(e).refunds;
        break;
      case v1::StoredEvent::PAYLOAD_NOT_SET:
        // No payload: a type this build (or the service) does not know, or
        // properties the service could not read (payload_error says why).
        Count(e.payload_error().empty() ? "unknown" : "invalid");
        break;
      default:
        break;  // a known type this projection does not use
    }
  }

  std::string target_ = "127.0.0.1:50051", state_path_;
  std::map<std::string, std::string> tls_;  // ca, cert, key, server-name
  std::vector<v1::EventType> types_;
  std::vector<std::string> type_names_;
  bool follow_ = false;
  int save_every_ = 1000;
  int64_t position_ = 0;
  int unsaved_ = 0;
  Clock::time_point saved_at_ = Clock::now();
  Rows rows_;
  json counts_ = {{"events", 0}, {"checkpoints", 0}, {"erasures", 0},
                  {"redacted", 0}, {"unknown", 0},     {"invalid", 0}};
  std::mutex state_mu_;  // the rows, position and save figures: Run and the saver
  std::condition_variable saver_wake_;
  bool saver_done_ = false;
  std::mutex mu_;
  bool stopping_ = false;
  grpc::ClientContext* call_ = nullptr;
};

}  // namespace

int main(int argc, char** argv) {
  // SIGINT and SIGTERM are blocked in every thread (gRPC's too) and taken by
  // one thread with sigwait, which cancels the stream: main then saves,
  // prints `done` and exits 0.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Consumer consumer;
  consumer.Parse(argc, argv);
  consumer.Load();
  Emit({{"step", "resumed"}, {"after", std::to_string(consumer.position())}});
  std::thread([&consumer, signals] {
    int signal = 0;
    sigwait(&signals, &signal);
    consumer.Stop();
  }).detach();

  auto events = v1::EventService::NewStub(consumer.Connect());
  grpc::Status status = consumer.Run(*events);
  if (!status.ok()) {
    Emit({{"step", "error"}, {"code", status.error_code()}, {"message", status.error_message()}});
    return 1;
  }
  consumer.Done();
  return 0;
}
