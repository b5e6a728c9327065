// HTTP details of pli-linkd's answers that must not let message content through:
// header values built from untrusted text (RFC 6266 / RFC 5987 file names, media
// types), the security headers every response carries, and per-client rate limits.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pli::linkd {

using Headers = std::vector<std::pair<std::string, std::string>>;

// `attachment; filename="ASCII"; filename*=UTF-8''PERCENT-ENCODED` (RFC 6266, RFC 5987).
// The name is first reduced to its last path component; the ASCII fallback has every
// byte outside printable ASCII and each of " \ % ; / < > : | ? * replaced by '_'.
// No CR/LF can pass.
std::string content_disposition(std::string_view name);

// `type/subtype` when `declared` is a plain media type (RFC 6838 restricted names,
// parameters dropped), else application/octet-stream. Lower-cased.
std::string safe_media_type(std::string_view declared);

// Makes any text safe as a header value (and to store: a request's User-Agent): valid UTF-8
// (util::clean_line: ill-formed bytes become U+FFFD, C0/C1 controls such as CR, LF, NUL
// become spaces), cut to at most `max` bytes at a character boundary.
std::string header_safe(std::string_view text, std::size_t max = 512);

enum class Framing
{
  none, // frame-ancestors 'none' (every page)
  self, // the HTML body, shown in an iframe of our own content page
};

// Cache-Control no-store, Referrer-Policy no-referrer, nosniff, the page CSP, framing.
void add_security_headers(Headers& h, Framing framing = Framing::none);

// Fixed windows (one minute unless told) of failures per client address; blocked() once `limit`
// failures were counted in the current window. Sharded by address (one small lock per
// shard), bounded memory: old windows are dropped when a shard grows past its share of
// `max_clients`.
class FailureLimiter
{
public:
  explicit FailureLimiter(std::uint64_t limit, std::size_t max_clients = 100000,
                          std::int64_t window_micros = 60LL * 1000000LL)
      : m_limit(limit), m_max_per_shard(max_clients / k_shards + 1), m_window(window_micros)
  {
  }
  bool blocked(const std::string& client, std::int64_t now_micros);
  void failure(const std::string& client, std::int64_t now_micros);

private:
  static constexpr std::size_t k_shards = 16;
  struct Window
  {
    std::int64_t start = 0;
    std::uint64_t count = 0;
  };
  struct Shard
  {
    std::mutex mutex;
    std::map<std::string, Window> windows;
  };
  Shard& shard(const std::string& client);

  std::uint64_t m_limit;
  std::size_t m_max_per_shard;
  std::int64_t m_window;
  std::array<Shard, k_shards> m_shards;
};

// The value of cookie `name` in a Cookie header (RFC 6265 section 5.4), "" when absent.
std::string cookie_value(std::string_view cookie_header, std::string_view name);

// Percent-encodes a query-string value (RFC 3986 unreserved characters kept).
std::string url_encode(std::string_view value);

// Equal strings, compared in time independent of where they differ (secrets).
bool equal_secret(std::string_view a, std::string_view b);

} // namespace pli::linkd
