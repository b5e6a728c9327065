// The JSON shapes of `pli show --json` and `pli list --json` (pli(1)), shared by
// the CLI and the web pages.
#pragma once

#include "core/config/config.hpp"
#include "core/store/store.hpp"

#include <nlohmann/json_fwd.hpp>

namespace pli::cli {

constexpr int k_format_version = 1;

// DELIVERY: {"id", "message", "recipient", "status", "events": [{"kind", "at", "detail"}]}
nlohmann::json delivery_json(const store::pb::Delivery& d,
                             const std::vector<store::pb::Event>& events,
                             const std::string& timezone);
// The whole exchange of one message (`pli show ID --json`).
nlohmann::json message_json(const store::pb::Message& m,
                            const std::vector<store::pb::Delivery>& deliveries,
                            const std::vector<store::pb::Event>& events,
                            const std::string& timezone);

} // namespace pli::cli
