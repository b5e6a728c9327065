#include "core/cli/export.hpp"

#include "core/cli/views.hpp"

#include <nlohmann/json.hpp>

#include <string_view>

namespace pli::cli {

namespace {

std::string iso(util::Micros t, const std::string& tz)
{
  return t == 0 ? std::string() : util::format_iso(t, tz);
}

} // namespace

std::string csv_field(const std::string& raw)
{
  // A cell a spreadsheet would take as a formula (OWASP "CSV injection") starts with a quote.
  const std::string value =
      !raw.empty() && std::string_view("=+-@\t\r").find(raw.front()) != std::string_view::npos
          ? "'" + raw
          : raw;
  if (value.find_first_of(",\"\r\n;") == std::string::npos) {
    return value;
  }
  std::string out = "\"";
  for (char c : value) {
    if (c == '"') {
      out += "\"\"";
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

std::string csv_header()
{
  return "delivery_id,message_id,message_id_header,sent_at,sender,recipient,type,subject,"
         "consultation,status,delivered_at,read_at,replied_at,failed_at,revoked,"
         "original_sha256,attachments\r\n";
}

std::string csv_row(const store::ListItem& item, const std::string& tz)
{
  const auto& d = item.delivery;
  const auto& m = item.message;
  std::string attachments;
  for (const auto& a : m.attachments()) {
    attachments += (attachments.empty() ? "" : " | ") + a.name() + " " + a.sha256();
  }
  const std::vector<std::string> cells = {
      d.id(),
      m.id(),
      m.message_id(),
      iso(m.sent_at(), tz),
      m.sender(),
      d.recipient(),
      std::string(model::code(static_cast<model::MessageType>(m.type()))),
      m.subject(),
      m.consultation(),
      std::string(model::code(static_cast<model::Status>(d.status()))),
      iso(d.delivered_at(), tz),
      iso(d.read_at(), tz),
      iso(d.replied_at(), tz),
      iso(d.failed_at(), tz),
      d.revoked() ? "yes" : "no",
      m.original_sha256(),
      attachments,
  };
  std::string line;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    line += (i == 0 ? "" : ",") + csv_field(cells[i]);
  }
  return line + "\r\n";
}

nlohmann::json export_item(const store::ListItem& item, const std::vector<store::pb::Event>& events,
                           const std::string& tz)
{
  const auto& m = item.message;
  auto j = delivery_json(item.delivery, events, tz);
  j["message_id"] = m.message_id();
  j["subject"] = m.subject();
  j["type"] = std::string(model::code(static_cast<model::MessageType>(m.type())));
  j["mode"] = std::string(model::code(static_cast<model::Mode>(m.mode())));
  j["consultation"] =
      m.consultation().empty() ? nlohmann::json(nullptr) : nlohmann::json(m.consultation());
  j["sender"] = m.sender();
  j["sent_at"] = util::format_iso(m.sent_at(), tz);
  j["original_sha256"] = m.original_sha256();
  j["revoked"] = item.delivery.revoked();
  nlohmann::json atts = nlohmann::json::array();
  for (const auto& a : m.attachments()) {
    atts.push_back({{"name", a.name()}, {"size", a.size()}, {"sha256", a.sha256()}});
  }
  j["attachments"] = atts;
  return j;
}

} // namespace pli::cli
