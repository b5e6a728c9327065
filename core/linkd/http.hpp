// HTTP details of pli-linkd's answers that must not let message content through:
// header values built from untrusted text (RFC 6266 / RFC 5987 file names, media
// types), the security headers every response carries, and per-client rate limits.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
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

// Fixed windows (one minute unless told) of failures per client; blocked() once `limit`
// failures were counted in the current window. A client that is an IPv6 address counts for
// its /64 (one host or one customer: rotating its addresses gains nothing); anything else
// (IPv4, an e-mail address) for itself. Sharded (one small lock per shard), bounded memory:
// when a shard is past its share of `max_clients`, expired windows go first, then the
// clients not blocked; when only blocked clients are left, new ones share one overflow
// window per shard (counted together, never reset by the flood itself).
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

  // Counts shared with other processes (pli-linkd's replicas on one PostgreSQL store): each
  // failure is also added to the shared window of `name` + client, aligned on multiples of
  // the window, and a shared count at the limit blocks the client here too. So a client
  // that spreads its failures over N replicas gets at most the limit plus N - 1 in a window.
  // `count` returns the shared window's count with this failure, or nullopt (the store
  // failed: this process's own count still holds).
  using SharedCount = std::function<std::optional<std::uint64_t>(
      const std::string& key, std::int64_t window_start, std::int64_t window_end)>;
  void share(std::string name, SharedCount count)
  {
    m_shared_name = std::move(name);
    m_shared = std::move(count);
  }

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
    Window overflow; // the clients that found the shard full of blocked ones
  };
  Shard& shard(const std::string& key);
  void count_here(Shard& s, const std::string& key, std::int64_t now); // one failure

  std::uint64_t m_limit;
  std::size_t m_max_per_shard;
  std::int64_t m_window;
  std::string m_shared_name;
  SharedCount m_shared; // empty: this process only
  std::array<Shard, k_shards> m_shards;
};

// The key a client address is counted under: "2001:db8:1:2::/64" for any IPv6 address of
// that /64 (IPv4-mapped addresses give their IPv4 address), else `client` itself.
std::string client_key(const std::string& client);

// Repeated events of one kind (reads of a delivery, downloads of one of its files): after
// one is recorded, those of the next `interval` are only counted; the first one after it is
// recorded again and carries the count (App puts it in the event's detail "repeats"). The
// count lives in memory: a restart loses at most one interval's count, never an event that
// had to be recorded. Bounded: past `max_keys`, the keys whose interval ended are dropped
// (their counts go with them only when they are zero), and beyond that the oldest.
class RepeatCounter
{
public:
  explicit RepeatCounter(std::int64_t interval_micros, std::size_t max_keys = 100000)
      : m_interval(interval_micros), m_max_keys(max_keys)
  {
  }
  // nullopt: an event for `key` was recorded less than `interval` ago, this one is counted.
  // Else this one must be recorded, with the returned number of repeats since the last one
  // recorded (0 when none); `force` records it whatever the interval (a first read).
  std::optional<std::uint64_t> take(const std::string& key, std::int64_t now_micros,
                                    bool force = false);
  // The event take() asked for could not be recorded: its repeats are counted again and
  // the next one is recorded.
  void failed(const std::string& key, std::uint64_t repeats);

private:
  struct Entry
  {
    std::int64_t last = 0;
    std::uint64_t repeats = 0;
  };
  std::mutex m_mutex;
  std::map<std::string, Entry> m_entries;
  std::int64_t m_interval;
  std::size_t m_max_keys;
};

// The value of cookie `name` in a Cookie header (RFC 6265 section 5.4), "" when absent.
std::string cookie_value(std::string_view cookie_header, std::string_view name);

// Percent-encodes a query-string value (RFC 3986 unreserved characters kept).
std::string url_encode(std::string_view value);

// Equal strings, compared in time independent of where they differ (secrets).
bool equal_secret(std::string_view a, std::string_view b);

} // namespace pli::linkd
