#include "core/store/evidence.hpp"

#include "core/model/model.hpp"
#include "core/util/crypto.hpp"

#include <nlohmann/json.hpp>

namespace pli::store {

std::string canonical_event_json(const pb::Event& e)
{
  nlohmann::json detail = nlohmann::json::object();
  for (const auto& [k, v] : e.detail()) {
    detail[k] = v;
  }
  nlohmann::json j = {
      {"message", e.message()},
      {"delivery", e.delivery()},
      {"seq", e.seq()},
      {"kind", std::string(model::code(static_cast<model::EventKind>(e.kind())))},
      {"at", e.at()},
      {"detail", detail},
      {"prev_hash", e.prev_hash()},
  };
  // nlohmann::json objects keep keys sorted; invalid UTF-8 is replaced, never thrown.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string event_hash(const pb::Event& e)
{
  return util::sha256_hex(e.prev_hash() + canonical_event_json(e));
}

bool verify_chain(const std::vector<pb::Event>& events)
{
  std::string prev;
  for (const auto& e : events) {
    if (e.prev_hash() != prev || event_hash(e) != e.hash()) {
      return false;
    }
    prev = e.hash();
  }
  return true;
}

} // namespace pli::store
