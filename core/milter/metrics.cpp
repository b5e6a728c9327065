#include "core/milter/metrics.hpp"

#include <fmt/format.h>

#include <set>

namespace pli::milter {

void Counters::add(Outcome o) noexcept
{
  m_counts[static_cast<std::size_t>(o)].fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t Counters::value(Outcome o) const noexcept
{
  return m_counts[static_cast<std::size_t>(o)].load(std::memory_order_relaxed);
}

std::string Counters::render() const
{
  std::string out;
  std::set<std::string_view> done;
  for (const auto& row : k_outcomes) {
    if (!done.insert(row.counter).second) {
      continue;
    }
    out += fmt::format("# HELP {} pli-milter's decisions since start, by outcome.\n"
                       "# TYPE {} counter\n",
                       row.counter, row.counter);
    for (const auto& r : k_outcomes) {
      if (r.counter == row.counter) {
        out += fmt::format("{}{{outcome=\"{}\"}} {}\n", r.counter, r.name, value(r.outcome));
      }
    }
  }
  return out;
}

} // namespace pli::milter
