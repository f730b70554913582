// The C++ consumer's rows (consumer.cc) and their JSON, as the state file
// and the `done` line hold them.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "decimal.h"

struct Row {
  Decimal issued, redeemed;
  int64_t redemptions = 0, refunds = 0;

  void Add(const Row& o) {
    issued = issued.Plus(o.issued);
    redeemed = redeemed.Plus(o.redeemed);
    redemptions += o.redemptions;
    refunds += o.refunds;
  }
  nlohmann::json Json() const {
    return {{"issued", issued.ToString()},
            {"redeemed", redeemed.ToString()},
            {"redemptions", redemptions},
            {"refunds", refunds}};
  }
};

// customer id -> campaign id -> month "YYYY-MM" -> row
using Rows = std::map<std::string, std::map<std::string, std::map<std::string, Row>>>;

inline nlohmann::json RowsJson(const Rows& rows) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [id, campaigns] : rows)
    for (const auto& [campaign, months] : campaigns)
      for (const auto& [month, row] : months) out[id][campaign][month] = row.Json();
  return out;
}
