#include "core/cli/views.hpp"

#include <nlohmann/json.hpp>

namespace pli::cli {

using nlohmann::json;

json delivery_json(const store::pb::Delivery& d, const std::vector<store::pb::Event>& events,
                   const std::string& timezone)
{
  json evs = json::array();
  for (const auto& e : events) {
    if (e.delivery() != d.id()) {
      continue;
    }
    json detail = json::object();
    for (const auto& [k, v] : e.detail()) {
      detail[k] = v;
    }
    json ev = {{"kind", std::string(model::code(static_cast<model::EventKind>(e.kind())))},
               {"at", util::format_iso(e.at(), timezone)},
               {"detail", detail}};
    if (!e.damaged_record().empty()) {
      ev["repaired"] = true; // stored with text that was not UTF-8, read as U+FFFD
    }
    evs.push_back(std::move(ev));
  }
  return {{"id", d.id()},
          {"message", d.message()},
          {"recipient", d.recipient()},
          {"status", std::string(model::code(static_cast<model::Status>(d.status())))},
          {"events", evs}};
}

json message_json(const store::pb::Message& m, const std::vector<store::pb::Delivery>& deliveries,
                  const std::vector<store::pb::Event>& events, const std::string& timezone)
{
  json atts = json::array();
  for (const auto& a : m.attachments()) {
    atts.push_back({{"name", a.name()},
                    {"size", a.size()},
                    {"sha256", a.sha256()},
                    {"media_type", a.media_type()}});
  }
  json ds = json::array();
  for (const auto& d : deliveries) {
    ds.push_back(delivery_json(d, events, timezone));
  }
  return {{"format_version", k_format_version},
          {"id", m.id()},
          {"message_id", m.message_id()},
          {"subject", m.subject()},
          {"type", std::string(model::code(static_cast<model::MessageType>(m.type())))},
          {"mode", std::string(model::code(static_cast<model::Mode>(m.mode())))},
          {"reply_allowed", m.reply_allowed()},
          {"consultation", m.consultation().empty() ? json(nullptr) : json(m.consultation())},
          {"sender", m.sender()},
          {"sent_at", util::format_iso(m.sent_at(), timezone)},
          {"original_sha256", m.original_sha256()},
          {"attachments", atts},
          {"deliveries", ds}};
}

} // namespace pli::cli
