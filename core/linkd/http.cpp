#include "core/linkd/http.hpp"

#include "core/mime/names.hpp"
#include "core/util/encoding.hpp"
#include "core/util/text.hpp"

#include <fmt/format.h>

#include <functional>

namespace pli::linkd {

namespace {

bool restricted_name_char(char c)
{
  // RFC 6838 section 4.2 restricted-name-chars
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '!' || c == '#' || c == '$' ||
         c == '&' || c == '-' || c == '^' || c == '_' || c == '.' || c == '+';
}

} // namespace

std::string content_disposition(std::string_view declared)
{
  std::string name = mime::sanitize_file_name(declared);
  if (name.empty()) {
    name = "piece-jointe";
  }
  name = mime::limit_file_name(name, 200);
  std::string ascii, encoded;
  for (unsigned char c : name) {
    const bool attr_char = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                           (c >= '0' && c <= '9') || c == '!' || c == '#' || c == '$' || c == '&' ||
                           c == '+' || c == '-' || c == '.' || c == '^' || c == '_' || c == '`' ||
                           c == '|' || c == '~';
    // printable ASCII, without quoting troubles nor characters Windows refuses in names
    const bool ascii_ok =
        c >= 0x20 && c < 0x7f &&
        std::string_view("\"\\%;/<>:|?*").find(static_cast<char>(c)) == std::string_view::npos;
    ascii.push_back(ascii_ok ? static_cast<char>(c) : '_');
    if (attr_char) {
      encoded.push_back(static_cast<char>(c));
    } else {
      encoded += fmt::format("%{:02X}", c);
    }
  }
  return fmt::format("attachment; filename=\"{}\"; filename*=UTF-8''{}", ascii, encoded);
}

std::string safe_media_type(std::string_view declared)
{
  const std::string fallback = "application/octet-stream";
  std::string t = util::ascii_lower(util::trim(declared.substr(0, declared.find(';'))));
  auto slash = t.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == t.size() || t.size() > 127 ||
      t.find('/', slash + 1) != std::string::npos) {
    return fallback;
  }
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (i != slash && !restricted_name_char(t[i])) {
      return fallback;
    }
  }
  return t;
}

std::string header_safe(std::string_view text, std::size_t max)
{
  return util::clean_line(text, max);
}

void add_security_headers(Headers& h, Framing framing)
{
  h.emplace_back("Cache-Control", "no-store");
  h.emplace_back("Referrer-Policy", "no-referrer");
  h.emplace_back("X-Content-Type-Options", "nosniff");
  if (framing == Framing::none) {
    h.emplace_back("X-Frame-Options", "DENY");
    h.emplace_back("Content-Security-Policy",
                   "default-src 'none'; style-src 'self'; img-src 'self'; frame-src 'self'; "
                   "form-action 'self'; base-uri 'none'; frame-ancestors 'none'");
  } else {
    // The message's own HTML: no script, no form, no network, framed only by our page.
    h.emplace_back("X-Frame-Options", "SAMEORIGIN");
    h.emplace_back("Content-Security-Policy",
                   "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                   "form-action 'none'; base-uri 'none'; frame-ancestors 'self'");
  }
  h.emplace_back("Cross-Origin-Resource-Policy", "same-origin");
}

FailureLimiter::Shard& FailureLimiter::shard(const std::string& client)
{
  return m_shards[std::hash<std::string>{}(client) % k_shards];
}

bool FailureLimiter::blocked(const std::string& client, std::int64_t now)
{
  Shard& s = shard(client);
  std::lock_guard lock(s.mutex);
  if (s.windows.empty()) {
    return false;
  }
  auto it = s.windows.find(client);
  if (it == s.windows.end() || now - it->second.start >= m_window) {
    return false;
  }
  return it->second.count >= m_limit;
}

void FailureLimiter::failure(const std::string& client, std::int64_t now)
{
  Shard& s = shard(client);
  std::lock_guard lock(s.mutex);
  if (s.windows.size() >= m_max_per_shard) {
    for (auto it = s.windows.begin(); it != s.windows.end();) {
      it = now - it->second.start >= m_window ? s.windows.erase(it) : std::next(it);
    }
    if (s.windows.size() >= m_max_per_shard) {
      s.windows.clear(); // XXX: a flood from this many addresses resets the windows
    }
  }
  auto& w = s.windows[client];
  if (now - w.start >= m_window) {
    w.start = now;
    w.count = 0;
  }
  ++w.count;
}

std::string cookie_value(std::string_view header, std::string_view name)
{
  std::size_t pos = 0;
  while (pos < header.size()) {
    auto end = header.find(';', pos);
    if (end == std::string_view::npos) {
      end = header.size();
    }
    std::string_view pair = header.substr(pos, end - pos);
    while (!pair.empty() && pair.front() == ' ') {
      pair.remove_prefix(1);
    }
    auto eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
      std::string_view v = pair.substr(eq + 1);
      while (!v.empty() && v.back() == ' ') {
        v.remove_suffix(1);
      }
      return std::string(v);
    }
    pos = end + 1;
  }
  return "";
}

std::string url_encode(std::string_view value)
{
  static constexpr char k_hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(k_hex[c >> 4]);
      out.push_back(k_hex[c & 15]);
    }
  }
  return out;
}

bool equal_secret(std::string_view a, std::string_view b)
{
  if (a.size() != b.size()) {
    return false;
  }
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

} // namespace pli::linkd
