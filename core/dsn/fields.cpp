// The by-hand reader of RFC 3464 / RFC 6533 delivery-status bodies.
//
// GMime has no DSN class and treats message/delivery-status as an opaque part, so the
// field groups are read here: CRLF/LF/CR line ends,
// whitespace-only lines are blank, SP/HT lines continue a field, a blank run ends a
// group. Address types (RFC 3464 section 2.1.2) and diagnostic types are stripped;
// RFC 6533 utf-8 addresses have their \x{HHHH} escapes decoded.
#include "core/dsn/detail.hpp"
#include "core/util/encoding.hpp"
#include "core/util/gobject_ptr.hpp"
#include "core/util/text.hpp"

#include <glib.h>

#include <cstdint>

namespace pli::dsn::detail {

namespace {

bool is_blank_char(char c)
{
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

std::string_view trim_view(std::string_view s)
{
  return util::trim(s, " \t\r\n\f\v");
}

std::string lower(std::string_view s)
{
  return util::ascii_lower(s);
}

bool is_field_name_char(char c)
{
  auto u = static_cast<unsigned char>(c);
  return u > 32 && u < 127 && c != ':';
}

// A type token before ';': a short run of letters, digits and "-_.+" (e.g. "rfc822",
// "utf-8", "dns", "smtp", "X-Postfix", "X-LOCAL").
bool is_type_token(std::string_view s)
{
  if (s.empty() || s.size() > 40) {
    return false;
  }
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == '+' || c == '/';
    if (!ok) {
      return false;
    }
  }
  return true;
}

// Returns {type (lower-cased, may be empty), rest (trimmed)}.
std::pair<std::string, std::string_view> split_type(std::string_view value)
{
  value = trim_view(value);
  auto semi = value.find(';');
  if (semi != std::string_view::npos) {
    std::string_view type = trim_view(value.substr(0, semi));
    if (is_type_token(type)) {
      return {lower(type), trim_view(value.substr(semi + 1))};
    }
  }
  return {std::string(), value};
}

void append_utf8(std::string& out, std::uint32_t cp)
{
  char buf[8];
  int n = g_unichar_to_utf8(static_cast<gunichar>(cp), buf);
  out.append(buf, static_cast<std::size_t>(n));
}

bool has_field(const FieldGroup& g, std::string_view name)
{
  for (const auto& f : g.fields) {
    if (f.name == name) {
      return true;
    }
  }
  return false;
}

bool is_recipient_group(const FieldGroup& g)
{
  return has_field(g, "final-recipient") || has_field(g, "original-recipient") ||
         has_field(g, "action") || has_field(g, "status");
}

// Reads the per-message fields of a group into `ds` (first value wins).
void read_per_message(const FieldGroup& g, DeliveryStatus& ds)
{
  for (const auto& f : g.fields) {
    if (f.name == "reporting-mta" && ds.reporting_mta.empty()) {
      ds.reporting_mta = strip_type(f.value);
    } else if (f.name == "original-envelope-id" && ds.original_envelope_id.empty()) {
      ds.original_envelope_id = f.value;
    } else if (f.name == "arrival-date" && ds.arrival_date.empty()) {
      ds.arrival_date = f.value;
    }
  }
}

// Reads the recipient fields of one group; a repeated Final-/Original-Recipient starts
// the next recipient (for DSNs written without blank lines between recipients).
void read_recipients(const FieldGroup& g, std::vector<RecipientReport>& out)
{
  RecipientReport cur;
  bool started = false;
  bool have_final = false;
  bool have_original = false;
  auto flush = [&] {
    if (started) {
      out.push_back(std::move(cur));
    }
    cur = RecipientReport{};
    started = false;
    have_final = false;
    have_original = false;
  };
  for (const auto& f : g.fields) {
    const std::string& n = f.name;
    if (n == "final-recipient") {
      if (have_final) {
        flush();
      }
      cur.final_recipient = clean_address(f.value);
      have_final = true;
      started = true;
    } else if (n == "original-recipient") {
      if (have_original) {
        flush();
      }
      cur.original_recipient = clean_address(f.value);
      have_original = true;
      started = true;
    } else if (n == "action") {
      cur.action_raw = lower(trim_view(f.value));
      cur.action = action_from(f.value);
      started = true;
    } else if (n == "status") {
      std::string_view v = trim_view(f.value);
      std::size_t end = 0;
      while (end < v.size() && !is_blank_char(v[end]) && v[end] != '(' && v[end] != ';') {
        ++end;
      }
      cur.status = std::string(v.substr(0, end));
      started = true;
    } else if (n == "remote-mta") {
      cur.remote_mta = strip_type(f.value);
    } else if (n == "diagnostic-code") {
      cur.diagnostic_code = strip_type(f.value);
      cur.reply_code = leading_reply_code(cur.diagnostic_code);
    } else if (n == "last-attempt-date") {
      cur.last_attempt_date = f.value;
    } else if (n == "will-retry-until") {
      cur.will_retry_until = f.value;
    }
  }
  flush();
}

// RFC 3464 fields are ASCII; a global DSN is UTF-8. Anything else is garbage we keep
// readable: invalid bytes become U+FFFD and control characters become spaces.
std::string clean_text(std::string_view s)
{
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    out.push_back((u < 32 || u == 127) ? ' ' : c);
  }
  if (g_utf8_validate(out.data(), static_cast<gssize>(out.size()), nullptr) == FALSE) {
    const util::GCharPtr valid(g_utf8_make_valid(out.data(), static_cast<gssize>(out.size())));
    out = valid.get();
  }
  return out;
}

} // namespace

std::vector<FieldGroup> split_field_groups(std::string_view text)
{
  std::vector<FieldGroup> groups;
  FieldGroup cur;
  bool in_group = false;
  bool last_was_field = false;
  std::size_t pos = 0;
  auto close_group = [&](std::size_t end) {
    if (in_group) {
      cur.end_offset = end;
      groups.push_back(std::move(cur));
      cur = FieldGroup{};
    }
    in_group = false;
    last_was_field = false;
  };
  std::size_t group_end = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find_first_of("\r\n", pos);
    std::size_t next = text.size();
    std::string_view line;
    if (eol == std::string_view::npos) {
      line = text.substr(pos);
    } else {
      line = text.substr(pos, eol - pos);
      next = eol + 1;
      if (text[eol] == '\r' && next < text.size() && text[next] == '\n') {
        ++next;
      }
    }
    pos = next;
    if (trim_view(line).empty()) {
      close_group(group_end);
      continue;
    }
    in_group = true;
    group_end = next;
    if ((line.front() == ' ' || line.front() == '\t') && last_was_field) {
      std::string_view more = trim_view(line);
      std::string& value = cur.fields.back().value;
      if (!value.empty()) {
        value.push_back(' ');
      }
      value.append(more);
      continue;
    }
    std::size_t colon = line.find(':');
    std::string_view name =
        colon == std::string_view::npos ? std::string_view{} : trim_view(line.substr(0, colon));
    bool valid_name = !name.empty();
    for (char c : name) {
      valid_name = valid_name && is_field_name_char(c);
    }
    if (valid_name) {
      cur.fields.push_back(Field{lower(name), std::string(trim_view(line.substr(colon + 1)))});
      last_was_field = true;
    } else {
      cur.has_other_lines = true;
      last_was_field = false;
    }
  }
  close_group(group_end);
  return groups;
}

DeliveryStatus parse_delivery_status(std::string_view body)
{
  DeliveryStatus ds;
  std::vector<FieldGroup> groups = split_field_groups(body);
  if (groups.empty()) {
    return ds;
  }
  for (const auto& g : groups) {
    ds.has_fields = ds.has_fields || !g.fields.empty();
  }
  read_per_message(groups.front(), ds);
  bool first_is_recipient = has_field(groups.front(), "final-recipient") ||
                            has_field(groups.front(), "original-recipient");
  for (std::size_t i = 0; i < groups.size(); ++i) {
    if ((i == 0 && first_is_recipient) || (i > 0 && is_recipient_group(groups[i]))) {
      read_recipients(groups[i], ds.recipients);
    }
  }
  // Quirk (MimeKit bounce.txt, Postfix via Exchange): a Content-Transfer-Encoding field
  // in the per-message group, and the recipient groups base64-encoded after it.
  if (ds.recipients.empty()) {
    for (const auto& f : groups.front().fields) {
      if (f.name == "content-transfer-encoding" && lower(trim_view(f.value)) == "base64") {
        std::string rest(body.substr(groups.front().end_offset));
        gsize len = 0;
        const util::GCharPtr decoded(reinterpret_cast<char*>(g_base64_decode(rest.c_str(), &len)));
        std::string_view inner(decoded.get(), len);
        for (const auto& g : split_field_groups(inner)) {
          if (is_recipient_group(g)) {
            read_recipients(g, ds.recipients);
          }
        }
        break;
      }
    }
  }
  for (auto& r : ds.recipients) {
    for (std::string* s :
         {&r.final_recipient, &r.original_recipient, &r.action_raw, &r.status, &r.remote_mta,
          &r.diagnostic_code, &r.last_attempt_date, &r.will_retry_until}) {
      *s = clean_text(*s);
    }
  }
  ds.reporting_mta = clean_text(ds.reporting_mta);
  ds.original_envelope_id = clean_text(ds.original_envelope_id);
  ds.arrival_date = clean_text(ds.arrival_date);
  return ds;
}

DeliveryStatus parse_embedded_fields(std::string_view text)
{
  DeliveryStatus ds;
  for (const auto& g : split_field_groups(text)) {
    if (has_field(g, "reporting-mta")) {
      read_per_message(g, ds);
    }
    if (has_field(g, "final-recipient") && (has_field(g, "action") || has_field(g, "status"))) {
      read_recipients(g, ds.recipients);
    }
  }
  std::erase_if(ds.recipients, [](const RecipientReport& r) {
    return r.final_recipient.empty() || (r.action != Action::failed && r.action != Action::delayed);
  });
  for (auto& r : ds.recipients) {
    for (std::string* s :
         {&r.final_recipient, &r.original_recipient, &r.action_raw, &r.status, &r.remote_mta,
          &r.diagnostic_code, &r.last_attempt_date, &r.will_retry_until}) {
      *s = clean_text(*s);
    }
  }
  ds.has_fields = !ds.recipients.empty();
  ds.reporting_mta = clean_text(ds.reporting_mta);
  ds.original_envelope_id = clean_text(ds.original_envelope_id);
  ds.arrival_date = clean_text(ds.arrival_date);
  return ds;
}

std::string clean_address(std::string_view value)
{
  auto [type, rest] = split_type(value);
  if (!rest.empty() && rest.front() == '<') {
    auto close = rest.find('>');
    rest = close == std::string_view::npos ? rest.substr(1) : rest.substr(1, close - 1);
    rest = trim_view(rest);
  }
  if (type == "utf-8") {
    return decode_utf8_escapes(rest);
  }
  return std::string(rest);
}

std::string strip_type(std::string_view value)
{
  return std::string(split_type(value).second);
}

std::string decode_utf8_escapes(std::string_view text)
{
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "\\x{") == 0) {
      std::size_t j = i + 3;
      std::uint32_t cp = 0;
      std::size_t digits = 0;
      while (j < text.size() && digits <= 6 && util::hex_value(text[j]) >= 0) {
        cp = cp * 16 + static_cast<std::uint32_t>(util::hex_value(text[j]));
        ++j;
        ++digits;
      }
      bool scalar = cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF) && cp != 0;
      if (digits >= 1 && digits <= 6 && j < text.size() && text[j] == '}' && scalar) {
        append_utf8(out, cp);
        i = j + 1;
        continue;
      }
    }
    out.push_back(text[i]);
    ++i;
  }
  return out;
}

Action action_from(std::string_view value)
{
  std::string_view v = trim_view(value);
  std::size_t end = 0;
  while (end < v.size() && !is_blank_char(v[end]) && v[end] != '(' && v[end] != ';') {
    ++end;
  }
  std::string a = lower(v.substr(0, end));
  if (a == "failed") {
    return Action::failed;
  }
  if (a == "delayed") {
    return Action::delayed;
  }
  if (a == "delivered") {
    return Action::delivered;
  }
  if (a == "relayed") {
    return Action::relayed;
  }
  if (a == "expanded") {
    return Action::expanded;
  }
  return Action::unknown;
}

std::string leading_reply_code(std::string_view diagnostic)
{
  std::string_view v = trim_view(diagnostic);
  if (v.size() >= 3 && v[0] >= '2' && v[0] <= '5' && v[1] >= '0' && v[1] <= '5' && v[2] >= '0' &&
      v[2] <= '9' && (v.size() == 3 || v[3] == ' ' || v[3] == '-' || v[3] == '\t')) {
    return std::string(v.substr(0, 3));
  }
  return {};
}

} // namespace pli::dsn::detail
