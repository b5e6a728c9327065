// pli-milter's counters: one per outcome of the decision table (core/milter/outcome.hpp),
// rendered in Prometheus's text exposition format 0.0.4 for the loopback /metrics
// listener (milter.metrics_listen). Relaxed atomics: no lock on a callback's path.
#pragma once

#include "core/milter/outcome.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

namespace pli::milter {

class Counters
{
public:
  // Counts one decision.
  void add(Outcome o) noexcept;
  // How many times `o` was decided since start.
  std::uint64_t value(Outcome o) const noexcept;
  // Every outcome's counter (zeros included, so that a rate is defined from the start),
  // one HELP and TYPE line per counter name.
  std::string render() const;

private:
  std::array<std::atomic<std::uint64_t>, k_outcomes.size()> m_counts{};
};

} // namespace pli::milter
