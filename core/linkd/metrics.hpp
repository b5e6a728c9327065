// pli-linkd's counters for /metrics (Prometheus text exposition format 0.0.4):
// requests by route and status, events recorded (reads, downloads, replies ...),
// errors by kind, and a latency histogram. Relaxed atomics only: no lock on the hot path.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace pli::linkd {

enum class Route : std::uint8_t
{
  landing,        // GET /m/{token}
  open,           // POST /m/{token}
  html,           // GET /m/{token}/html
  download,       // GET /m/{token}/a/{n}
  reply_form,     // GET /m/{token}/reply
  reply,          // POST /m/{token}/reply
  reply_landing,  // GET /r/{token}
  reply_open,     // POST /r/{token}
  reply_download, // GET /r/{token}/a/{n}
  suivi,          // the buyers' area, /suivi/...
  static_file,    // GET /static/...
  healthz,
  metrics,
  other,
  count_
};

enum class Counter : std::uint8_t
{
  fetched,
  read,
  download,
  reply,
  reply_read,
  unknown_token,
  rate_limited,
  too_large,
  count_
};

enum class ErrorKind : std::uint8_t
{
  store,      // a store read or write failed
  notify,     // the mail to the sender could not be handed to Postfix
  internal,   // an exception reached the server
  overloaded, // the upload buffer budget was exhausted
  count_
};

std::string_view name(Route r);

class Metrics
{
public:
  // One finished request: its route, HTTP status and duration in seconds.
  void request(Route route, int status, double seconds) noexcept;
  void count(Counter c) noexcept;
  void error(ErrorKind e) noexcept;
  // The Prometheus text exposition of every counter.
  std::string render() const;

  std::uint64_t requests(Route route, int status) const noexcept;
  std::uint64_t counter(Counter c) const noexcept;

private:
  static constexpr std::array<int, 15> k_statuses = {200, 206, 303, 304, 400, 403, 404, 405,
                                                     410, 413, 429, 431, 500, 503, 0};
  static constexpr std::array<double, 13> k_buckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0};
  static std::size_t status_index(int status) noexcept;

  std::array<std::array<std::atomic<std::uint64_t>, k_statuses.size()>,
             static_cast<std::size_t>(Route::count_)>
      m_requests{};
  std::array<std::atomic<std::uint64_t>, k_buckets.size() + 1> m_latency{}; // last: +Inf
  std::atomic<std::uint64_t> m_latency_sum_us{0};
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(Counter::count_)> m_counters{};
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(ErrorKind::count_)> m_errors{};
};

} // namespace pli::linkd
