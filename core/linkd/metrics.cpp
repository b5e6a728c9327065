#include "core/linkd/metrics.hpp"

#include <fmt/format.h>

namespace pli::linkd {

namespace {

constexpr auto k_relaxed = std::memory_order_relaxed;

std::string_view counter_name(Counter c)
{
  switch (c) {
  case Counter::fetched:
    return "fetched";
  case Counter::read:
    return "read";
  case Counter::download:
    return "download";
  case Counter::reply:
    return "reply";
  case Counter::reply_read:
    return "reply_read";
  case Counter::unknown_token:
    return "unknown_token";
  case Counter::rate_limited:
    return "rate_limited";
  case Counter::too_large:
    return "too_large";
  case Counter::count_:
    break;
  }
  return "?";
}

std::string_view error_name(ErrorKind e)
{
  switch (e) {
  case ErrorKind::store:
    return "store";
  case ErrorKind::notify:
    return "notify";
  case ErrorKind::internal:
    return "internal";
  case ErrorKind::overloaded:
    return "overloaded";
  case ErrorKind::count_:
    break;
  }
  return "?";
}

} // namespace

std::string_view name(Route r)
{
  switch (r) {
  case Route::landing:
    return "landing";
  case Route::open:
    return "open";
  case Route::html:
    return "html";
  case Route::download:
    return "download";
  case Route::reply_form:
    return "reply_form";
  case Route::reply:
    return "reply";
  case Route::reply_landing:
    return "reply_landing";
  case Route::reply_open:
    return "reply_open";
  case Route::reply_download:
    return "reply_download";
  case Route::suivi:
    return "suivi";
  case Route::static_file:
    return "static";
  case Route::healthz:
    return "healthz";
  case Route::metrics:
    return "metrics";
  case Route::other:
  case Route::count_:
    break;
  }
  return "other";
}

std::size_t Metrics::status_index(int status) noexcept
{
  for (std::size_t i = 0; i + 1 < k_statuses.size(); ++i) {
    if (k_statuses[i] == status) {
      return i;
    }
  }
  return k_statuses.size() - 1; // "other"
}

void Metrics::request(Route route, int status, double seconds) noexcept
{
  auto r = static_cast<std::size_t>(route);
  if (r >= m_requests.size()) {
    r = static_cast<std::size_t>(Route::other);
  }
  m_requests[r][status_index(status)].fetch_add(1, k_relaxed);
  std::size_t b = 0;
  while (b < k_buckets.size() && seconds > k_buckets[b]) {
    ++b;
  }
  m_latency[b].fetch_add(1, k_relaxed);
  m_latency_sum_us.fetch_add(static_cast<std::uint64_t>(seconds * 1e6), k_relaxed);
}

void Metrics::count(Counter c) noexcept
{
  m_counters[static_cast<std::size_t>(c)].fetch_add(1, k_relaxed);
}

void Metrics::error(ErrorKind e) noexcept
{
  m_errors[static_cast<std::size_t>(e)].fetch_add(1, k_relaxed);
}

std::uint64_t Metrics::requests(Route route, int status) const noexcept
{
  return m_requests[static_cast<std::size_t>(route)][status_index(status)].load(k_relaxed);
}

std::uint64_t Metrics::counter(Counter c) const noexcept
{
  return m_counters[static_cast<std::size_t>(c)].load(k_relaxed);
}

std::string Metrics::render() const
{
  std::string out;
  out += "# HELP pli_linkd_requests_total HTTP requests answered, by route and status.\n"
         "# TYPE pli_linkd_requests_total counter\n";
  for (std::size_t r = 0; r < m_requests.size(); ++r) {
    for (std::size_t s = 0; s < k_statuses.size(); ++s) {
      auto n = m_requests[r][s].load(k_relaxed);
      if (n == 0) {
        continue;
      }
      out +=
          fmt::format("pli_linkd_requests_total{{route=\"{}\",status=\"{}\"}} {}\n",
                      name(static_cast<Route>(r)),
                      k_statuses[s] == 0 ? std::string("other") : std::to_string(k_statuses[s]), n);
    }
  }
  out += "# HELP pli_linkd_events_total Events recorded or refused by pli-linkd, by kind.\n"
         "# TYPE pli_linkd_events_total counter\n";
  for (std::size_t c = 0; c < m_counters.size(); ++c) {
    out += fmt::format("pli_linkd_events_total{{kind=\"{}\"}} {}\n",
                       counter_name(static_cast<Counter>(c)), m_counters[c].load(k_relaxed));
  }
  const auto named = [&](std::string_view metric, Counter c, std::string_view help) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} counter\n{0} {2}\n", metric, help,
                       m_counters[static_cast<std::size_t>(c)].load(k_relaxed));
  };
  named("pli_linkd_reads_total", Counter::read, "Reads recorded (POST of a landing page).");
  named("pli_linkd_downloads_total", Counter::download, "Attachment downloads recorded.");
  named("pli_linkd_replies_total", Counter::reply, "Replies recorded.");
  out += "# HELP pli_linkd_errors_total Errors, by kind.\n"
         "# TYPE pli_linkd_errors_total counter\n";
  for (std::size_t e = 0; e < m_errors.size(); ++e) {
    out += fmt::format("pli_linkd_errors_total{{kind=\"{}\"}} {}\n",
                       error_name(static_cast<ErrorKind>(e)), m_errors[e].load(k_relaxed));
  }
  out += "# HELP pli_linkd_request_duration_seconds Time to answer a request.\n"
         "# TYPE pli_linkd_request_duration_seconds histogram\n";
  std::uint64_t cumulative = 0;
  for (std::size_t b = 0; b < m_latency.size(); ++b) {
    cumulative += m_latency[b].load(k_relaxed);
    out += fmt::format("pli_linkd_request_duration_seconds_bucket{{le=\"{}\"}} {}\n",
                       b < k_buckets.size() ? fmt::format("{}", k_buckets[b]) : "+Inf", cumulative);
  }
  out += fmt::format("pli_linkd_request_duration_seconds_sum {:.6f}\n",
                     static_cast<double>(m_latency_sum_us.load(k_relaxed)) / 1e6);
  out += fmt::format("pli_linkd_request_duration_seconds_count {}\n", cumulative);
  return out;
}

} // namespace pli::linkd
