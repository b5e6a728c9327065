#include "core/milter/options.hpp"

#include "core/util/encoding.hpp"
#include "core/util/text.hpp"

namespace pli::milter {

bool valid_reference(const std::string& reference)
{
  if (reference.empty() || reference.size() > 64) {
    return false;
  }
  for (char c : reference) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '/' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

namespace {

// Applies one option (from a tag or the header). Returns false if `name` is not ours.
bool apply(ClientOptions& o, const std::string& name, const std::string& value, bool has_value,
           const char* source)
{
  auto warn = [&](const std::string& what) {
    o.warnings.push_back(std::string(source) + ": " + what);
  };
  if (name == "ar" && !has_value) {
    o.mode = model::Mode::ar;
  } else if (name == "simple" && !has_value) {
    o.mode = model::Mode::simple;
  } else if (name == "reponse" && !has_value) {
    o.reply = true;
  } else if (name == "mode" && has_value) {
    if (auto m = model::parse_mode(value)) {
      o.mode = m;
    } else {
      warn("unknown mode '" + value + "', default kept");
    }
  } else if ((name == "reply" || name == "reponse") && has_value) {
    std::string v = util::ascii_lower(value);
    if (v == "yes" || v == "oui" || v == "true" || v == "1") {
      o.reply = true;
    } else if (v == "no" || v == "non" || v == "false" || v == "0") {
      o.reply = false;
    } else {
      warn("reply must be yes or no, not '" + value + "', default kept");
    }
  } else if (name == "ref" && has_value) {
    if (valid_reference(value)) {
      o.reference = value;
    } else {
      warn("malformed consultation reference '" + value + "', ignored");
    }
  } else if (name == "type" && has_value) {
    if (auto t = model::parse_message_type(util::fold(value))) {
      o.type = t;
    } else {
      warn("unknown message type '" + value + "', default kept");
    }
  } else {
    return false;
  }
  return true;
}

} // namespace

ClientOptions parse_client_options(const std::string& subject, const std::string& header)
{
  ClientOptions o;
  std::string out;
  std::size_t pos = 0;
  while (pos < subject.size()) {
    auto open = subject.find('[', pos);
    if (open == std::string::npos) {
      out.append(subject, pos, std::string::npos);
      break;
    }
    auto close = subject.find(']', open + 1);
    if (close == std::string::npos) {
      out.append(subject, pos, std::string::npos);
      break;
    }
    std::string inner = subject.substr(open + 1, close - open - 1);
    auto colon = inner.find(':');
    std::string name = util::fold(std::string(util::trim(inner.substr(0, colon))));
    std::string value = colon == std::string::npos
                            ? std::string()
                            : std::string(util::trim(inner.substr(colon + 1)));
    out.append(subject, pos, open - pos);
    bool known = name.find_first_of(" [") == std::string::npos &&
                 apply(o, name, value, colon != std::string::npos, "subject tag");
    if (!known) {
      out.append(subject, open, close - open + 1);
    } else {
      o.subject_changed = true;
    }
    pos = close + 1;
  }
  if (o.subject_changed) {
    // Collapse the spaces the removed tags leave behind.
    std::string collapsed;
    for (char c : out) {
      if (c == ' ' && (collapsed.empty() || collapsed.back() == ' ')) {
        continue;
      }
      collapsed.push_back(c);
    }
    while (!collapsed.empty() && collapsed.back() == ' ') {
      collapsed.pop_back();
    }
    o.subject = collapsed;
  } else {
    o.subject = subject;
  }

  // X-Pli-Options: mode=ar; reply=yes; ref=2022AK_014; type=rejet (wins over tags)
  std::size_t start = 0;
  while (start < header.size()) {
    auto end = header.find(';', start);
    std::string item(util::trim(
        header.substr(start, end == std::string::npos ? std::string::npos : end - start)));
    start = end == std::string::npos ? header.size() : end + 1;
    if (item.empty()) {
      continue;
    }
    auto eq = item.find('=');
    std::string name = util::ascii_lower(util::trim(item.substr(0, eq)));
    std::string value = eq == std::string::npos ? "" : std::string(util::trim(item.substr(eq + 1)));
    if (eq == std::string::npos || !apply(o, name, value, true, "X-Pli-Options")) {
      o.warnings.push_back("X-Pli-Options: unknown option '" + item + "', ignored");
    }
  }
  return o;
}

} // namespace pli::milter
