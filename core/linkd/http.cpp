#include "core/linkd/http.hpp"

#include "core/mime/names.hpp"
#include "core/util/encoding.hpp"
#include "core/util/text.hpp"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
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

FailureLimiter::Shard& FailureLimiter::shard(const std::string& key)
{
  return m_shards[std::hash<std::string>{}(key) % k_shards];
}

std::string client_key(const std::string& client)
{
  if (client.find(':') == std::string::npos) {
    return client;
  }
  in6_addr a{};
  if (inet_pton(AF_INET6, client.c_str(), &a) != 1) {
    return client;
  }
  if (IN6_IS_ADDR_V4MAPPED(&a)) {
    char v4[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &a.s6_addr[12], v4, sizeof v4);
    return v4;
  }
  std::fill(a.s6_addr + 8, a.s6_addr + 16, 0);
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, &a, buf, sizeof buf);
  return std::string(buf) + "/64";
}

bool FailureLimiter::blocked(const std::string& client, std::int64_t now)
{
  const std::string key = client_key(client);
  Shard& s = shard(key);
  std::lock_guard lock(s.mutex);
  auto it = s.windows.find(key);
  const Window* w = it != s.windows.end() ? &it->second : &s.overflow;
  if (now - w->start >= m_window) {
    return false;
  }
  return w->count >= m_limit;
}

void FailureLimiter::failure(const std::string& client, std::int64_t now)
{
  const std::string key = client_key(client);
  Shard& s = shard(key);
  count_here(s, key, now);
  if (!m_shared) {
    return;
  }
  // The other replicas' failures: a shared count at the limit blocks the client here too.
  const std::int64_t start = now - ((now % m_window) + m_window) % m_window;
  const auto shared = m_shared(m_shared_name + ":" + key, start, start + m_window);
  if (!shared || *shared <= 1) {
    return;
  }
  std::lock_guard lock(s.mutex);
  auto it = s.windows.find(key);
  Window& w = it != s.windows.end() ? it->second : s.overflow;
  if (now - w.start < m_window && w.count < *shared) {
    w.count = std::min<std::uint64_t>(*shared, m_limit);
  }
}

void FailureLimiter::count_here(Shard& s, const std::string& key, std::int64_t now)
{
  std::lock_guard lock(s.mutex);
  auto it = s.windows.find(key);
  if (it == s.windows.end() && s.windows.size() >= m_max_per_shard) {
    // Room for a new client: expired windows first, then the clients not blocked (they
    // lose a count below the limit); never a blocked one.
    for (auto i = s.windows.begin(); i != s.windows.end();) {
      i = now - i->second.start >= m_window ? s.windows.erase(i) : std::next(i);
    }
    for (auto i = s.windows.begin(); i != s.windows.end() && s.windows.size() >= m_max_per_shard;) {
      i = i->second.count < m_limit ? s.windows.erase(i) : std::next(i);
    }
  }
  Window* w = nullptr;
  if (it != s.windows.end()) {
    w = &it->second;
  } else if (s.windows.size() < m_max_per_shard) {
    w = &s.windows[key];
  } else {
    w = &s.overflow; // the shard holds only blocked clients: the newcomers share a window
  }
  if (now - w->start >= m_window) {
    w->start = now;
    w->count = 0;
  }
  ++w->count;
}

std::optional<std::uint64_t> RepeatCounter::take(const std::string& key, std::int64_t now,
                                                 bool force)
{
  std::lock_guard lock(m_mutex);
  auto it = m_entries.find(key);
  if (it == m_entries.end()) {
    if (m_entries.size() >= m_max_keys) {
      for (auto i = m_entries.begin(); i != m_entries.end();) {
        i = now - i->second.last >= m_interval && i->second.repeats == 0 ? m_entries.erase(i)
                                                                         : std::next(i);
      }
      while (m_entries.size() >= m_max_keys) {
        auto oldest =
            std::min_element(m_entries.begin(), m_entries.end(), [](const auto& a, const auto& b) {
              return a.second.last < b.second.last;
            });
        m_entries.erase(oldest);
      }
    }
    m_entries[key] = Entry{now, 0};
    return 0;
  }
  Entry& e = it->second;
  if (!force && m_interval > 0 && now - e.last < m_interval) {
    ++e.repeats;
    return std::nullopt;
  }
  const std::uint64_t repeats = e.repeats;
  e = Entry{now, 0};
  return repeats;
}

void RepeatCounter::failed(const std::string& key, std::uint64_t repeats)
{
  std::lock_guard lock(m_mutex);
  Entry& e = m_entries[key];
  e.last = 0;
  e.repeats += repeats;
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
